"""Properties of ingest on the bundled sample (real SDK spans), each example a real ingest
into a fresh data dir:

- how the spans arrive does not matter: any order, any cut into lines and files, spec or
  proto-JSON form, .gz or not, exporter retries (repeated batches) -> the same turns and
  sessions as the sample as shipped;
- ingest is idempotent: the same file again, or a renamed copy, changes no row;
- ingest is incremental: the sample in two runs gives the same turns and sessions as one
  run, the second run rewrites only the sessions it touches, and a trace whose spans arrive
  in two runs is one turn, in its session.
"""

from __future__ import annotations

import base64
import json
import random
import shutil
import tempfile
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from otlp_helpers import read_otlp_file, request_to_line, write_otlp_file

from models.settings import SAMPLES_DIR, load_settings

SAMPLE = SAMPLES_DIR / "otlp"
EXPECTED = json.loads((SAMPLES_DIR / "expected.json").read_text())
N_SPANS = EXPECTED["summary"]["spans"]

TURNS_Q = ("select * exclude (sessionized_at, tool_calls), to_json(tool_calls)::varchar as tool_calls "
           "from turns order by trace_id")
SESSIONS_Q = "select * exclude (sessionized_at) from sessions order by session_id"
# each example is one or two real ingests (~0.3 s each): few examples, no deadline, no database
PROPS = hsettings(max_examples=10, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

_KIND = {0: "SPAN_KIND_UNSPECIFIED", 1: "SPAN_KIND_INTERNAL", 2: "SPAN_KIND_SERVER", 3: "SPAN_KIND_CLIENT",
         4: "SPAN_KIND_PRODUCER", 5: "SPAN_KIND_CONSUMER"}
_CODE = {0: "STATUS_CODE_UNSET", 1: "STATUS_CODE_OK", 2: "STATUS_CODE_ERROR"}


# --------------------------------------------------------------------------- the sample as spans
def _b64(hex_id: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_id)).decode()


def spec_span_to_proto(span: dict) -> dict:
    """The inverse of otlp_helpers.proto_dict_to_spec for one span: hex ids -> base64, enums -> names."""
    out = dict(span)
    for k in ("traceId", "spanId", "parentSpanId"):
        if out.get(k):
            out[k] = _b64(out[k])
    if isinstance(out.get("kind"), int):
        out["kind"] = _KIND[out["kind"]]
    if isinstance((out.get("status") or {}).get("code"), int):
        out["status"] = dict(out["status"], code=_CODE[out["status"]["code"]])
    return out


def _is_spec(span: dict) -> bool:
    tid = span["traceId"]
    return len(tid) == 32 and all(c in "0123456789abcdef" for c in tid)


def sample_spans() -> list[tuple[str, str, dict]]:
    """Every span of the sample, both file forms read, as (resource JSON, scope JSON, proto-form span)."""
    out = []
    for f in sorted(SAMPLE.iterdir()):
        for req in read_otlp_file(f):
            for rs in req["resourceSpans"]:
                res = json.dumps(rs.get("resource") or {}, sort_keys=True)
                for ss in rs["scopeSpans"]:
                    scope = json.dumps(ss.get("scope") or {}, sort_keys=True)
                    for sp in ss["spans"]:
                        out.append((res, scope, spec_span_to_proto(sp) if _is_spec(sp) else sp))
    return out


SPANS = sample_spans()


def hex_of(b64: str) -> str:
    return base64.b64decode(b64).hex()


def trace_of(item) -> str:
    return hex_of(item[2]["traceId"])


def make_request(items) -> dict:
    """One proto-form ExportTraceServiceRequest holding ``items``, grouped by resource and scope."""
    groups: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for res, scope, sp in items:
        groups[res][scope].append(sp)
    return {"resourceSpans": [
        {"resource": json.loads(res), "scopeSpans": [{"scope": json.loads(sc), "spans": sps}
                                                     for sc, sps in scopes.items()]}
        for res, scopes in groups.items()]}


def write_files(folder: Path, items, rnd: random.Random, n_files: int, max_per_line: int,
                retries: int, gz_share: float, proto_share: float) -> int:
    """Cut ``items`` into lines and files (random forms, some .gz), repeat ``retries`` random
    lines (an exporter retrying a batch), write them. Returns the number of span records written."""
    lines: list[tuple[list, str]] = []
    i = 0
    while i < len(items):
        n = rnd.randint(1, max_per_line)
        lines.append((items[i:i + n], "proto" if rnd.random() < proto_share else "spec"))
        i += n
    for _ in range(retries):  # the same batch again, maybe in another form, anywhere later
        batch, _form = rnd.choice(lines)
        lines.insert(rnd.randint(0, len(lines)), (batch, rnd.choice(["spec", "proto"])))
    files: list[list[str]] = [[] for _ in range(n_files)]
    for batch, form in lines:
        files[rnd.randrange(n_files)].append(request_to_line(make_request(batch), form))
    for k, file_lines in enumerate(files):
        if file_lines:
            name = f"part-{k:02d}.jsonl" + (".gz" if rnd.random() < gz_share else "")
            write_otlp_file(folder / name, file_lines)
    return sum(len(b) for b, _ in lines)


# --------------------------------------------------------------------------- ingest + read back
def ingest(s, paths):
    from tasks.ingest import run_ingest

    return run_ingest(s, paths=[str(p) for p in paths])


def rows(s, q: str) -> list[tuple]:
    from tasks.store import catalog

    with catalog.reader(s) as con:
        return con.execute(q).fetchall()


def as_dicts(s, q: str) -> list[dict]:
    from tasks.store import catalog

    with catalog.reader(s) as con:
        cur = con.execute(q)
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=False)) for r in cur.fetchall()]


def snapshot(s) -> dict[str, list[tuple]]:
    """Every row of the four views, all columns (times included)."""
    return {
        "spans": rows(s, "select * exclude (attributes, resource, events, tool_calls, tool_results, tools), "
                         "attributes::varchar, resource::varchar, events::varchar, tool_calls::varchar, "
                         "tool_results::varchar, tools::varchar from spans order by trace_id, span_id"),
        "turns": rows(s, "select * exclude (tool_calls), to_json(tool_calls)::varchar from turns order by trace_id"),
        "sessions": rows(s, "select * from sessions order by session_id"),
        "rejects": rows(s, "select * from rejects order by reject_id"),
    }


class Fresh:
    """A fresh data dir (and an input folder) for one hypothesis example."""

    def __enter__(self):
        self.root = Path(tempfile.mkdtemp(prefix="replay-prop-"))
        self.settings = load_settings(data_dir=self.root / "data")
        self.inp = self.root / "in"
        self.inp.mkdir()
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The sample as shipped, in one run: its turns and sessions (all columns but sessionized_at)."""
    s = load_settings(data_dir=tmp_path_factory.mktemp("reference") / "data")
    info = ingest(s, [SAMPLE])
    assert (info.ingested, info.rejected, info.duplicates) == (N_SPANS, 0, 0)
    turns, sessions = rows(s, TURNS_Q), rows(s, SESSIONS_Q)
    assert len(turns) == EXPECTED["summary"]["traces"] and len(sessions) == EXPECTED["summary"]["sessions"]
    return {"settings": s, "turns": turns, "sessions": sessions,
            "session_of": dict(rows(s, "select trace_id, session_id from turns")),
            "started": dict(rows(s, "select trace_id, started_at from turns"))}


def test_sample_spans_cover_the_sample():
    assert len(SPANS) == N_SPANS
    assert len({(hex_of(sp["traceId"]), hex_of(sp["spanId"])) for _, _, sp in SPANS}) == N_SPANS
    assert len({trace_of(x) for x in SPANS}) == EXPECTED["summary"]["traces"]


# --------------------------------------------------------------------------- arrival does not matter
@PROPS
@given(rnd=st.randoms(use_true_random=False), n_files=st.integers(1, 5), max_per_line=st.integers(1, 60),
       retries=st.integers(0, 4), gz_share=st.sampled_from([0.0, 0.5, 1.0]),
       proto_share=st.sampled_from([0.0, 0.5, 1.0]))
def test_any_order_cut_form_and_retries_give_the_same_turns_and_sessions(
        reference, rnd, n_files, max_per_line, retries, gz_share, proto_share):
    items = list(SPANS)
    rnd.shuffle(items)
    with Fresh() as f:
        written = write_files(f.inp, items, rnd, n_files, max_per_line, retries, gz_share, proto_share)
        info = ingest(f.settings, [f.inp])
        assert (info.read, info.ingested, info.rejected) == (written, N_SPANS, 0)
        assert info.duplicates == written - N_SPANS
        assert rows(f.settings, TURNS_Q) == reference["turns"]
        assert rows(f.settings, SESSIONS_Q) == reference["sessions"]


# --------------------------------------------------------------------------- idempotent
def _one_file_with_a_reject(folder: Path, gz: bool) -> Path:
    """The whole sample in one file (spec form, 20 spans a line) plus one broken line."""
    lines = [request_to_line(make_request(SPANS[i:i + 20]), "spec") for i in range(0, len(SPANS), 20)]
    lines.insert(2, '{"resourceSpans": [ this line was cut')
    return write_otlp_file(folder / ("all.jsonl.gz" if gz else "all.jsonl"), lines)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_same_file_twice_or_a_renamed_copy_changes_nothing(reference, gz):
    with Fresh() as f:
        path = _one_file_with_a_reject(f.inp, gz)
        first = ingest(f.settings, [path])
        assert (first.ingested, first.rejected, first.duplicates) == (N_SPANS, 1, 0)
        before = snapshot(f.settings)
        assert len(before["rejects"]) == 1 and len(before["spans"]) == N_SPANS
        assert rows(f.settings, TURNS_Q) == reference["turns"]

        copy = f.root / "elsewhere" / ("renamed-copy.jsonl" + (".gz" if gz else ""))
        copy.parent.mkdir()
        shutil.copyfile(path, copy)
        for again in ([path], [copy]):
            info = ingest(f.settings, again)
            n = len(again)
            assert info.ingested == 0, again
            assert info.read == n * (N_SPANS + 1) and info.duplicates == n * N_SPANS
            assert info.read == info.ingested + info.rejected + info.duplicates
            assert info.sessionize.turns_written == 0 and info.sessionize.sessions_touched == []
            assert snapshot(f.settings) == before, again


def test_the_same_file_twice_in_one_run_is_ingested_once(reference):
    with Fresh() as f:
        path = _one_file_with_a_reject(f.inp, gz=False)
        copy = f.inp / "copy.jsonl"
        shutil.copyfile(path, copy)
        info = ingest(f.settings, [path, path, copy])
        assert (info.ingested, info.duplicates) == (N_SPANS, 2 * N_SPANS)
        assert info.read == info.ingested + info.rejected + info.duplicates
        assert len(rows(f.settings, "select * from rejects")) == 1
        assert rows(f.settings, TURNS_Q) == reference["turns"]
        assert rows(f.settings, SESSIONS_Q) == reference["sessions"]


# --------------------------------------------------------------------------- incremental
def _two_runs(f: Fresh, first, second, rnd: random.Random | None = None):
    """Ingest ``first`` then ``second`` (whole spans) in two runs; returns the infos and the
    turns/sessions (with sessionized_at) after run 1."""
    rnd = rnd or random.Random(0)
    (f.inp / "1").mkdir()
    (f.inp / "2").mkdir()
    write_files(f.inp / "1", first, rnd, 2, 20, 0, 0.5, 0.5)
    write_files(f.inp / "2", second, rnd, 2, 20, 0, 0.5, 0.5)
    info1 = ingest(f.settings, [f.inp / "1"])
    after1 = {"turns": {r["trace_id"]: r for r in as_dicts(f.settings, "select * exclude (tool_calls), "
                                                           "to_json(tool_calls)::varchar as tc from turns")},
              "sessions": {r["session_id"]: r for r in as_dicts(f.settings, "select * from sessions")}}
    info2 = ingest(f.settings, [f.inp / "2"])
    return info1, info2, after1


def _check_second_run(f: Fresh, reference, second_traces: set[str], info2, after1):
    s = f.settings
    assert rows(s, TURNS_Q) == reference["turns"]
    assert rows(s, SESSIONS_Q) == reference["sessions"]
    touched = {reference["session_of"][t] for t in second_traces} - {None}
    assert set(info2.sessionize.sessions_touched) == touched
    # what the second run did not touch was not rewritten: same rows, same sessionized_at
    now_turns = {r["trace_id"]: r for r in as_dicts(s, "select * exclude (tool_calls), "
                                                     "to_json(tool_calls)::varchar as tc from turns")}
    now_sessions = {r["session_id"]: r for r in as_dicts(s, "select * from sessions")}
    for sid, row in after1["sessions"].items():
        if sid not in touched:
            assert now_sessions[sid] == row, sid
    for tid, row in after1["turns"].items():
        if tid not in second_traces and row["session_id"] not in touched:
            assert now_turns[tid] == row, tid
    # and what it touched was rewritten
    for sid in touched & set(after1["sessions"]):
        assert now_sessions[sid]["sessionized_at"] > after1["sessions"][sid]["sessionized_at"]


def test_two_runs_split_by_time_equal_one_run_and_touch_only_their_sessions(reference):
    traces = sorted({trace_of(x) for x in SPANS}, key=lambda t: (reference["started"][t], t))
    first_half = set(traces[: len(traces) // 2])
    first = [x for x in SPANS if trace_of(x) in first_half]
    second = [x for x in SPANS if trace_of(x) not in first_half]
    second_traces = {trace_of(x) for x in second}
    # the premise: some sessions go on in the second half, some end in the first
    sess1 = {reference["session_of"][t] for t in first_half} - {None}
    sess2 = {reference["session_of"][t] for t in second_traces} - {None}
    assert sess1 & sess2 and sess1 - sess2
    with Fresh() as f:
        info1, info2, after1 = _two_runs(f, first, second)
        assert info1.ingested + info2.ingested == N_SPANS
        assert info2.sessionize.traces < len(traces)  # not a rebuild of everything
        _check_second_run(f, reference, second_traces, info2, after1)


@hsettings(PROPS, max_examples=6)
@given(rnd=st.randoms(use_true_random=False), share=st.floats(0.05, 0.95))
def test_two_runs_of_any_trace_split_equal_one_run(reference, rnd, share):
    traces = sorted({trace_of(x) for x in SPANS})
    second_traces = {t for t in traces if rnd.random() < share}
    first = [x for x in SPANS if trace_of(x) not in second_traces]
    second = [x for x in SPANS if trace_of(x) in second_traces]
    rnd.shuffle(first)
    rnd.shuffle(second)
    with Fresh() as f:
        info1, info2, after1 = _two_runs(f, first, second, rnd)
        assert (info1.ingested, info2.ingested) == (len(first), len(second))
        _check_second_run(f, reference, second_traces, info2, after1)


def _span_kind(sp: dict) -> str | None:
    for kv in sp.get("attributes") or ():
        if kv["key"] == "openinference.span.kind":
            return kv["value"].get("stringValue")
    return None


def _has_session_attr(sp: dict) -> bool:
    return any(kv["key"] in ("session.id", "gen_ai.conversation.id") for kv in sp.get("attributes") or ())


def test_a_trace_split_over_two_runs_joins_its_session_when_the_session_id_comes_last(reference):
    # a trace of a session whose id is only on the LLM spans, not its first turn
    by_trace = defaultdict(list)
    for x in SPANS:
        by_trace[trace_of(x)].append(x)
    index = dict(rows(reference["settings"], "select trace_id, turn_index from turns"))
    candidates = sorted(t for t, xs in by_trace.items()
                        if reference["session_of"][t] and index[t] > 0
                        and all(_span_kind(x[2]) == "LLM" for x in xs if _has_session_attr(x[2]))
                        and any(_span_kind(x[2]) != "LLM" for x in xs))
    assert candidates
    t = candidates[0]
    sid = reference["session_of"][t]
    late = [x for x in by_trace[t] if _has_session_attr(x[2])]  # the LLM spans: the only ones with the id
    first = [x for x in SPANS if not (trace_of(x) == t and _has_session_attr(x[2]))]
    with Fresh() as f:
        info1, info2, after1 = _two_runs(f, first, late)
        # after run 1 the trace is a lone turn: nothing says which session it belongs to
        assert after1["turns"][t]["session_id"] is None
        (ref_count,) = rows(reference["settings"], f"select turn_count from sessions where session_id = '{sid}'")[0]
        assert after1["sessions"][sid]["turn_count"] == ref_count - 1
        # after run 2 it is a turn of its session, once
        assert rows(f.settings, f"select session_id, turn_index from turns where trace_id = '{t}'") == \
            [(sid, index[t])]
        assert sid in info2.sessionize.sessions_touched
        assert rows(f.settings, TURNS_Q) == reference["turns"]
        assert rows(f.settings, SESSIONS_Q) == reference["sessions"]

