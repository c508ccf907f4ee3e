"""Turn and session rebuilding on facts rows (pure functions, no catalog)."""

import json
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.ingest.sessionize import build_session, build_turns, fill_results, match_tool_calls, plain_text

T0 = datetime(2026, 11, 20, 9, 0, 0)


def fact(trace, span, parent=None, kind="UNKNOWN", start=0, end=1, **kw):
    row = {"trace_id": trace, "span_id": span, "parent_span_id": parent, "name": kw.pop("name", kind.lower()),
           "kind": kind, "start_time": T0 + timedelta(seconds=start), "end_time": T0 + timedelta(seconds=end),
           "status": "unset", "status_message": None, "session_id": None, "user_id": None, "project": "p",
           "convention": "openinference", "model": None, "input_tokens": None, "output_tokens": None,
           "input_text": None, "output_text": None, "user_message": None, "assistant_text": None,
           "system_prompt": None, "tool_calls": None, "tool_results": None, "tool_name": None,
           "tool_call_id": None, "tool_arguments": None, "tool_result": None}
    row.update(kw)
    return row


def test_tool_results_match_by_id_then_order_with_reused_ids():
    requested = [{"id": "c1", "name": "a", "arguments": "{1}"}, {"id": "c1", "name": "b", "arguments": "{2}"},
                 {"id": None, "name": "a", "arguments": "{3}"}]
    executed = [{"id": "c1", "name": "a", "arguments": None, "result": "r1", "status": "ok"},
                {"id": "c1", "name": "b", "arguments": None, "result": "r2", "status": "ok"},
                {"id": None, "name": "a", "arguments": None, "result": "r3", "status": "error"}]
    out = match_tool_calls(requested, executed)
    assert [(c["name"], c["arguments"], c["result"]) for c in out] == [("a", "{1}", "r1"), ("b", "{2}", "r2"),
                                                                     ("a", "{3}", "r3")]


def test_requested_but_never_run_tool_call_is_kept_unset():
    out = match_tool_calls([{"id": "x", "name": "a", "arguments": "{}"}], [])
    assert out == [{"id": "x", "name": "a", "arguments": "{}", "result": None, "status": "unset"}]


def test_plain_text():
    assert plain_text("hello") == "hello"
    assert plain_text('{"input": "hi"}') == "hi"
    assert plain_text('{"messages": [{"role": "user", "content": "yo"}]}') == "yo"
    assert plain_text('{"foo": 1}') is None
    assert plain_text(None) is None


def test_session_only_on_llm_span_and_turn_order_by_root_start():
    rows = []
    for trace, start in [("t2", 100), ("t1", 10)]:
        rows += [fact(trace, f"{trace}r", kind="AGENT", start=start, end=start + 5, input_text=f"q{trace}",
                      output_text=f"a{trace}"),
                 fact(trace, f"{trace}l", parent=f"{trace}r", kind="LLM", start=start + 1, end=start + 2,
                      session_id="S", input_tokens=10, output_tokens=2, user_message=f"q{trace}")]
    turns = build_turns(rows)
    assert [(t["trace_id"], t["turn_index"], t["session_id"]) for t in turns] == [("t1", 0, "S"), ("t2", 1, "S")]
    s = build_session("S", turns)
    assert s["turn_count"] == 2 and s["input_tokens"] == 20 and s["first_user_message"] == "qt1"
    assert s["last_assistant_message"] == "at2"


def test_user_message_from_first_model_call_when_root_input_is_not_text():
    rows = [fact("t", "r", kind="CHAIN", start=0, end=9, input_text='{"config": {"x": 1}}'),
            fact("t", "l2", "r", kind="LLM", start=5, end=6, user_message="later", assistant_text="final"),
            fact("t", "l1", "r", kind="LLM", start=1, end=2, user_message="first", assistant_text=None,
                 tool_calls=json.dumps([{"id": "c", "name": "f", "arguments": "{}"}])),
            fact("t", "x", "r", kind="TOOL", start=3, end=4, tool_name="f", tool_result="42", status="error",
                 status_message="timeout", name="f")]
    (turn,) = build_turns(rows)
    assert turn["user_message"] == "first" and turn["assistant_message"] == "final"
    assert turn["session_id"] is None and turn["turn_index"] == 0
    assert turn["tool_calls"] == [{"id": "c", "name": "f", "arguments": "{}", "result": "42", "status": "error"}]
    # the tool failed but the agent answered: counted, not a failed turn
    assert turn["status"] == "ok" and turn["error"] is None and turn["error_count"] == 1
    assert turn["llm_calls"] == 2
    assert turn["latency_ms"] == 9000.0


def test_missing_root_uses_the_earliest_orphan():
    rows = [fact("t", "b", parent="gone", kind="LLM", start=2, end=3, user_message="u", assistant_text="a"),
            fact("t", "a", parent="gone", kind="LLM", start=1, end=4, user_message="u0")]
    (turn,) = build_turns(rows)
    assert turn["root_span_id"] == "a" and turn["user_message"] == "u0"


def test_a_turn_fails_when_its_root_fails():
    rows = [fact("t", "r", kind="AGENT", start=0, end=2, input_text="q", status="error", status_message="boom"),
            fact("t", "l", "r", kind="LLM", start=0, end=1, status="error", status_message="503")]
    (turn,) = build_turns(rows)
    assert turn["status"] == "error" and turn["error"] == "agent: boom" and turn["error_count"] == 2


def test_tool_spans_without_results_take_them_from_tool_messages():
    executed = [{"id": "a", "name": "f", "arguments": None, "result": None, "status": "ok"},
                {"id": None, "name": "g", "arguments": None, "result": None, "status": "ok"},
                {"id": "c", "name": "f", "arguments": None, "result": None, "status": "error"}]
    fill_results(executed, [{"id": None, "name": "g", "result": "G"}, {"id": "a", "name": None, "result": "A"},
                            {"id": "c", "name": None, "result": "C"}])
    assert [e["result"] for e in executed] == ["A", "G", None]


def test_a_session_that_cannot_be_rebuilt_is_a_reject_and_the_others_are_rebuilt():
    from tasks.ingest.sessionize import rebuild_sessions

    good = [fact("t1", "t1r", kind="AGENT", session_id="A", input_text="q", output_text="a"),
            fact("t2", "t2r", kind="AGENT", input_text="q2", output_text="a2")]
    bad = [fact("t3", "t3r", kind="AGENT", session_id="B"), fact("t4", "t4r", kind="AGENT", session_id="B")]
    bad[1]["start_time"] = None  # no time: a row extract never writes
    decided = {"t1": "A", "t2": None, "t3": "B", "t4": "B"}
    turns, sessions, rejects = rebuild_sessions(good + bad, decided, version=1, at=T0)
    assert sorted(turns.column("trace_id").to_pylist()) == ["t1", "t2"]
    assert sessions.column("session_id").to_pylist() == ["A"]
    (r,) = rejects
    assert r["location"] == "session B" and r["reason"].startswith("cannot rebuild the session: TypeError")
    assert json.loads(r["raw"]) == {"session": "B", "traces": ["t3", "t4"]}


def test_token_sums_saturate():
    big = (1 << 63) - 1
    rows = [fact("t1", "r", kind="AGENT"),
            fact("t1", "l1", parent="r", kind="LLM", input_tokens=big, output_tokens=1),
            fact("t1", "l2", parent="r", kind="LLM", input_tokens=big, output_tokens=2)]
    (turn,) = build_turns(rows)
    assert (turn["input_tokens"], turn["output_tokens"]) == (big, 3)


# --------------------------------------------------------------------------- matching in linear time
def _reference_match(requested, executed):
    """match_tool_calls as it was first written (a scan of the requests for every call)."""
    used = [False] * len(requested)
    out = []
    for ex in executed:
        j = None
        if ex.get("id"):
            j = next((i for i, r in enumerate(requested) if not used[i] and r.get("id") == ex["id"]), None)
        if j is None:
            j = next((i for i, r in enumerate(requested)
                      if not used[i] and (not r.get("id") or not ex.get("id") or r.get("id") == ex.get("id"))
                      and (not ex.get("name") or not r.get("name") or r.get("name") == ex.get("name"))), None)
        call = dict(ex)
        if j is not None:
            used[j] = True
            req = requested[j]
            call["id"] = call.get("id") or req.get("id")
            call["name"] = call.get("name") or req.get("name")
            call["arguments"] = call.get("arguments") or req.get("arguments")
        out.append(call)
    for i, r in enumerate(requested):
        if not used[i]:
            out.append({"id": r.get("id"), "name": r.get("name"), "arguments": r.get("arguments"),
                        "result": None, "status": "unset"})
    return out


def _reference_fill(executed, received):
    for r in received:
        if r.get("result") is None:
            continue
        open_ = [e for e in executed if e["result"] is None and e["status"] != "error"]
        e = next((e for e in open_ if r.get("id") and e.get("id") == r["id"]), None)
        if e is None:
            e = next((e for e in open_ if not (r.get("id") and e.get("id"))
                      and (not r.get("name") or not e.get("name") or r["name"] == e["name"])), None)
        if e is not None:
            e["result"] = r["result"]


_IDS = st.sampled_from([None, "", "c1", "c2", "c3"])
_NAMES = st.sampled_from([None, "", "a", "b"])
_CALL = st.builds(lambda i, n, k: {"id": i, "name": n, "arguments": f"{{{k}}}"}, _IDS, _NAMES, st.integers(0, 9))
_RUN = st.builds(lambda i, n, r, err: {"id": i, "name": n, "arguments": None, "result": r,
                                       "status": "error" if err else "ok"},
                 _IDS, _NAMES, st.sampled_from([None, "r1", "r2"]), st.booleans())


@settings(max_examples=400, deadline=None, database=None)
@given(requested=st.lists(_CALL, max_size=8), executed=st.lists(_RUN, max_size=8),
       received=st.lists(_RUN, max_size=8))
def test_linear_matching_is_the_first_rule_exactly(requested, executed, received):
    import copy

    assert match_tool_calls(copy.deepcopy(requested), copy.deepcopy(executed)) == _reference_match(requested, executed)
    mine, ref = copy.deepcopy(executed), copy.deepcopy(executed)
    fill_results(mine, received)
    _reference_fill(ref, received)
    assert mine == ref



def test_a_facts_table_rebuilds_as_its_rows_do():
    import pyarrow as pa

    from tasks.ingest.sessionize import rebuild_sessions

    rows = []
    for trace, start, sid in [("t2", 100, "S"), ("t1", 10, "S"), ("t3", 50, None)]:
        rows += [fact(trace, f"{trace}r", kind="AGENT", start=start, end=start + 5, input_text=f"q{trace}",
                      output_text=f"a{trace}", session_id=sid),
                 fact(trace, f"{trace}l", parent=f"{trace}r", kind="LLM", start=start + 1, end=start + 2,
                      input_tokens=10, output_tokens=2, user_message=f"q{trace}", model="m",
                      tool_calls=json.dumps([{"id": "c", "name": "n", "arguments": "{}"}])),
                 fact(trace, f"{trace}t", parent=f"{trace}r", kind="TOOL", start=start + 3, end=start + 4,
                      tool_name="n", tool_call_id="c", tool_result="ok")]
    decided = {"t1": "S", "t2": "S", "t3": None}
    from_rows = rebuild_sessions(rows, decided, 1, T0)
    from_table = rebuild_sessions(pa.Table.from_pylist(rows), decided, 1, T0)
    key = [("trace_id", "ascending")]
    assert from_table[0].sort_by(key).equals(from_rows[0].sort_by(key))
    assert from_table[1].equals(from_rows[1]) and from_table[2] == from_rows[2] == []
    assert sorted(from_table[0].column("turn_index").to_pylist()) == [0, 0, 1]
