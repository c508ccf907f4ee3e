"""Numbers out of range never stop an ingest (issue 11, finding 2).

- an attribute integer beyond 64 bits is kept losslessly (its decimal text) with a note on the
  span, and the spans around it are ingested;
- token counts whose sums overflow 64 bits saturate (turns and sessions), and a later ingest of
  other files works;
- a session that sessionize cannot rebuild is one reject row (source ``sessionize``), never a
  failure of the lake: the other sessions are rebuilt, the watermark moves on;
- a property test puts extreme numbers (+-2^63, 2^64, 1e308, NaN/Inf, huge negatives) in every
  numeric attribute the conventions read (tokens, times, ids): the ingest completes and
  read = ingested + rejected + duplicates.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from otlp_helpers import make_line, make_span

T0 = 1_795_000_000_000_000_000  # 2026-11-21, ns
RES = {"service.name": "extreme-svc"}
I64_MAX = (1 << 63) - 1


def chat_trace(trace: int, session: str | None, prompt_tokens=5, completion_tokens=7, **extra) -> list[dict]:
    """An OpenInference turn: a CHAIN root and one LLM call under it."""
    start = T0 + trace * 10_000_000_000
    root, llm = trace * 100 + 1, trace * 100 + 2
    common = {"session.id": session} if session is not None else {}
    root_attrs = {"openinference.span.kind": "CHAIN", "input.value": f"question {trace}",
                  "output.value": f"answer {trace}", **common}
    llm_attrs = {"openinference.span.kind": "LLM", "llm.model_name": "gpt-test",
                 "llm.token_count.prompt": prompt_tokens, "llm.token_count.completion": completion_tokens,
                 "llm.input_messages.0.message.role": "user",
                 "llm.input_messages.0.message.content": f"question {trace}",
                 "llm.output_messages.0.message.role": "assistant",
                 "llm.output_messages.0.message.content": f"answer {trace}", **common, **extra}
    return [make_span(trace, root, None, "chain", start, start + 3_000_000, root_attrs),
            make_span(trace, llm, root, "llm", start + 1_000, start + 2_000_000, llm_attrs)]


def write(path: Path, requests: list[list[dict]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(make_line(RES, spans) + "\n" for spans in requests))
    return path


def check_counts(info) -> None:
    assert info.read == info.ingested + info.rejected + info.duplicates, info


# --------------------------------------------------------------------------- an integer beyond 64 bits
def test_integer_beyond_64_bits_is_kept_as_text_and_the_file_is_ingested(tmp_path, ingest, query):
    big = 1 << 64
    lines = [[span] for t in range(1, 31) for span in chat_trace(t, f"s{t % 3}")]  # 60 spans
    trace = lines[8][0]["traceId"]
    lines[8][0]["attributes"].append({"key": "huge", "value": {"intValue": str(big)}})
    path = write(tmp_path / "big.jsonl", lines)
    info = ingest([path])  # before: TypeError: Integer exceeds 64-bit range, 0 spans kept
    check_counts(info)
    assert (info.read, info.ingested, info.rejected) == (60, 60, 0)
    (row,) = query(f"select attributes->>'huge' as huge, notes from spans where trace_id = '{trace}' "
                   "and parent_span_id is null")
    assert row["huge"] == str(big)  # every digit
    assert "huge" in row["notes"] and "64" in row["notes"]
    assert query("select count(*) as n from turns")[0]["n"] == 30


def test_token_counts_beyond_64_bits_are_kept_in_attributes_not_in_facts(tmp_path, ingest, query):
    path = write(tmp_path / "t.jsonl", [chat_trace(1, "s1", prompt_tokens=1 << 64, completion_tokens=-(1 << 64))])
    info = ingest([path])
    check_counts(info)
    assert info.ingested == 2
    (row,) = query("select input_tokens, output_tokens, notes, attributes->>'llm.token_count.prompt' as raw "
                   "from spans where kind = 'LLM'")
    assert (row["input_tokens"], row["output_tokens"], row["raw"]) == (None, None, str(1 << 64))
    assert "input_tokens" in row["notes"] and "output_tokens" in row["notes"]


# --------------------------------------------------------------------------- sums that overflow
def test_token_sums_saturate_and_later_ingests_work(tmp_path, ingest, query):
    """Two turns of one session with 2^63-1 tokens each: before, sessionize failed with
    OverflowError after the spans were published, and so did every later ingest."""
    first = write(tmp_path / "a.jsonl", [chat_trace(1, "big", I64_MAX, I64_MAX),
                                         chat_trace(2, "big", I64_MAX, 3),
                                         chat_trace(3, "small")])
    info = ingest([first])
    check_counts(info)
    (s,) = query("select input_tokens, output_tokens, turn_count from sessions where session_id = 'big'")
    assert s == {"input_tokens": I64_MAX, "output_tokens": I64_MAX, "turn_count": 2}
    # a turn with two model calls of 2^63-1 tokens saturates too
    two_calls = chat_trace(4, "big", I64_MAX, 1) + [
        make_span(4, 403, 401, "llm2", T0 + 4 * 10_000_000_000 + 5_000, T0 + 4 * 10_000_000_000 + 9_000,
                  {"openinference.span.kind": "LLM", "llm.token_count.prompt": I64_MAX, "session.id": "big"})]
    second = write(tmp_path / "b.jsonl", [two_calls, chat_trace(5, "other")])
    info2 = ingest([second])
    check_counts(info2)
    assert info2.ingested == 5
    (t,) = query("select input_tokens, llm_calls from turns where trace_id = "
                 f"'{two_calls[0]['traceId']}'")
    assert t == {"input_tokens": I64_MAX, "llm_calls": 2}
    assert query("select turn_count from sessions where session_id = 'big'") == [{"turn_count": 3}]
    assert query("select count(*) as n from sessions")[0]["n"] == 3
    assert query("select count(*) as n from rejects")[0]["n"] == 0


# --------------------------------------------------------------------------- a session that cannot be rebuilt
def test_a_session_that_cannot_be_rebuilt_is_one_reject(tmp_path, settings, ingest, query):
    """A span part that extract would never write (a hand-made part with no start time) breaks
    the rebuild of its session: that session is a reject row, the others are rebuilt."""
    path = write(tmp_path / "a.jsonl", [chat_trace(1, "good"), chat_trace(2, "good2")])
    ingest([path])
    (part,) = [p for p in (settings.lake_dir / "spans").rglob("*.parquet")]
    table = pq.read_table(part)
    broken = table.slice(0, 1).to_pylist()[0]
    broken.update(trace_id="f" * 32, span_id="e" * 16, parent_span_id=None, session_id="broken",
                  start_time=None, ingested_at=broken["ingested_at"] + timedelta(microseconds=1))
    hand = part.parent / "hand-made.parquet"
    pq.write_table(pa.Table.from_pylist([broken], schema=table.schema), hand)
    more = write(tmp_path / "b.jsonl", [chat_trace(3, "good3")])
    info = ingest([more])  # the hand-made part is new to sessionize too (ingested after the watermark)
    check_counts(info)
    assert info.sessionize.sessions_rejected == 1
    rej = query("select source, location, reason from rejects")
    assert len(rej) == 1 and rej[0]["source"] == "sessionize" and rej[0]["location"] == "session broken"
    assert "\n" not in rej[0]["reason"]
    sessions = {r["session_id"] for r in query("select session_id from sessions")}
    assert sessions == {"good", "good2", "good3"}
    # the watermark moved on: the next ingest neither fails nor repeats the reject
    info3 = ingest([write(tmp_path / "c.jsonl", [chat_trace(4, "good4")])])
    assert info3.sessionize.sessions_rejected == 0
    assert query("select count(*) as n from rejects")[0]["n"] == 1


# --------------------------------------------------------------------------- the property
EXTREME_INTS = [1 << 63, -(1 << 63), (1 << 63) - 1, -(1 << 63) - 1, 1 << 64, (1 << 64) - 1, -(1 << 64),
                10 ** 30, -(10 ** 30), 0, -1]
EXTREME_VALUES = st.one_of(
    st.sampled_from(EXTREME_INTS).map(lambda v: {"intValue": str(v)}),
    st.sampled_from(EXTREME_INTS).map(lambda v: {"intValue": v}),  # a JSON number, not a string
    st.sampled_from([1e308, -1e308, 5e-324, 1.5, -0.0]).map(lambda v: {"doubleValue": v}),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e308"]).map(
        lambda v: {"doubleValue": v}),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "inf", "18446744073709551616", "1e308", "-1e308",
                     "99999999999999999999999999999", "", " "]).map(lambda v: {"stringValue": v}),
    st.sampled_from(["NaN", "1e400", "Infinity", "x"]).map(lambda v: {"intValue": v}),
)
# every numeric attribute the conventions read: tokens, ids (session, user, tool call)
NUMERIC_KEYS = ["llm.token_count.prompt", "llm.token_count.completion", "gen_ai.usage.input_tokens",
                "gen_ai.usage.output_tokens", "gen_ai.usage.prompt_tokens", "gen_ai.usage.completion_tokens",
                "session.id", "gen_ai.conversation.id", "user.id", "tool_call.id", "gen_ai.tool.call.id"]
EXTREME_TIMES = st.sampled_from([str(1 << 63), str((1 << 63) - 1), str(1 << 64), "-9223372036854775808",
                                 "1e308", "NaN", "Infinity", 1e308, (1 << 64), str(T0), 1])
PROPS = hsettings(max_examples=12, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@PROPS
@given(values=st.lists(st.tuples(st.integers(0, 2), st.sampled_from(NUMERIC_KEYS), EXTREME_VALUES),
                       min_size=1, max_size=8),
       times=st.lists(st.tuples(st.integers(0, 5), st.sampled_from(["startTimeUnixNano", "endTimeUnixNano"]),
                                EXTREME_TIMES), max_size=3),
       events=st.lists(EXTREME_VALUES, max_size=2))
def test_extreme_numbers_never_stop_an_ingest(tmp_path_factory, values, times, events):
    from models.settings import load_settings
    from tasks.ingest import run_ingest
    from tasks.store import catalog

    data = tmp_path_factory.mktemp("extreme")
    settings = load_settings(data_dir=data / "data")
    traces = [chat_trace(t, f"s{t % 2}") for t in range(1, 4)]
    spans = [s for tr in traces for s in tr]
    for trace, key, value in values:
        for s in traces[trace]:
            s.setdefault("attributes", []).append({"key": key, "value": value})
    for i, key, value in times:
        spans[i][key] = value
    for value in events:
        spans[1].setdefault("events", []).append(
            {"name": "gen_ai.choice", "timeUnixNano": str(T0), "attributes": [{"key": "n", "value": value}]})
    lines = [json.dumps({"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "x"}}, {"key": "n", "value": v}]},
        "scopeSpans": [{"spans": tr}]}]}) for tr, v in zip(traces, [events[0] if events else {}, {}, {}],
                                                          strict=True)]
    path = data / "x.jsonl"
    path.write_text("\n".join(lines) + "\n")
    info = run_ingest(settings, paths=[str(path)])
    assert info.read == info.ingested + info.rejected + info.duplicates, info
    assert info.read == 6 or info.rejected >= 1  # a line orjson cannot read is one reject
    with catalog.reader(settings) as con:
        n_spans = con.execute("select count(*) from spans").fetchone()[0]
        n_rejects = con.execute("select count(*) from rejects where source <> 'sessionize'").fetchone()[0]
        n_turns = con.execute("select count(*) from turns").fetchone()[0]
        tokens = con.execute("select max(input_tokens), max(output_tokens) from turns").fetchone()
    assert (n_spans, n_rejects) == (info.ingested, info.rejected)
    assert n_turns == len({s["traceId"] for s in spans}) - _traces_without_spans(info, spans)
    assert all(t is None or 0 <= t <= I64_MAX for t in tokens)


def _traces_without_spans(info, spans) -> int:
    """Traces all of whose spans were rejected (a bad time) have no turn."""
    del info
    bad = set()
    for s in spans:
        try:
            ok = all(0 < int(s[k]) < (1 << 63) for k in ("startTimeUnixNano", "endTimeUnixNano")) and \
                int(s["endTimeUnixNano"]) >= int(s["startTimeUnixNano"])
        except (TypeError, ValueError, OverflowError):
            ok = False
        if not ok:
            bad.add(s["spanId"])
    by_trace: dict[str, list[bool]] = {}
    for s in spans:
        by_trace.setdefault(s["traceId"], []).append(s["spanId"] in bad)
    return sum(all(v) for v in by_trace.values())
