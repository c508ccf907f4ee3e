"""build_sessions.sql (the sessions of a batch, in an in-memory DuckDB) against the rules as
Python states them (what sessionize computed in Python before the statement replaced it):
the same values, exactly, for any batch of turns."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.ingest.sessionize import build_sessions
from tasks.store import lake

T0 = datetime(2026, 11, 20, 9, 0, 0)


def reference_session(session_id: str, turns: list[dict]) -> dict:
    """A session's row from all its turns, the rules in Python."""
    turns = sorted(turns, key=lambda t: t["turn_index"])
    projects = Counter(t["project"] for t in turns if t["project"])
    users = [t["user_id"] for t in turns if t["user_id"]]
    started = min(t["started_at"] for t in turns)
    ended = max(t["ended_at"] for t in turns)
    return {
        "session_id": session_id,
        "project": projects.most_common(1)[0][0] if projects else None,
        "user_id": users[0] if users else None,
        "started_at": started,
        "ended_at": ended,
        "duration_ms": (ended - started).total_seconds() * 1000.0,
        "turn_count": len(turns),
        "input_tokens": sum(t["input_tokens"] for t in turns),
        "output_tokens": sum(t["output_tokens"] for t in turns),
        "tool_call_count": sum(len(t["tool_calls"]) for t in turns),
        "error_count": sum(t["error_count"] for t in turns),
        "first_user_message": next((t["user_message"] for t in turns if t["user_message"]), None),
        "last_assistant_message": next((t["assistant_message"] for t in reversed(turns)
                                        if t["assistant_message"]), None),
    }


def reference_sessions(turns: list[dict]) -> list[dict]:
    by_session: dict[str, list[dict]] = defaultdict(list)
    for t in turns:
        if t["session_id"]:
            by_session[t["session_id"]].append(t)
    return [reference_session(sid, ts) for sid, ts in sorted(by_session.items())]


RULE_COLUMNS = ("session_id", "project", "user_id", "started_at", "ended_at", "duration_ms", "turn_count",
                "input_tokens", "output_tokens", "tool_call_count", "error_count", "first_user_message",
                "last_assistant_message")


def sql_sessions(turns: list[dict]) -> list[dict]:
    """build_sessions' rows, the columns the rules above compute (a column added to sessions
    later is the declaration's and the statement's business, not this test's)."""
    out = lake.conform(build_sessions(pa.Table.from_pylist(turns, schema=lake.TURNS)), lake.SESSIONS,
                       version=1, sessionized_at=T0, deleted=False)
    return [{k: r[k] for k in RULE_COLUMNS} for r in out.to_pylist()]


_text = st.sampled_from([None, "", "a", "b", "c"])
_call = {"id": "c", "name": "f", "arguments": "{}", "result": None, "status": "ok"}


@st.composite
def turn_batches(draw) -> list[dict]:
    turns = []
    for sid in draw(st.lists(st.sampled_from([None, "", "s1", "s2", "s3", "é"]), min_size=1, max_size=6)):
        n = draw(st.integers(1, 6))
        for i in draw(st.permutations(range(n))):
            start = T0 + timedelta(microseconds=draw(st.integers(0, 10**11)))
            turns.append({
                "session_id": sid, "turn_index": i, "trace_id": f"t{len(turns)}",
                "project": draw(_text), "user_id": draw(_text),
                "started_at": start, "ended_at": start + timedelta(microseconds=draw(st.integers(0, 10**10))),
                "latency_ms": 0.0, "user_message": draw(_text), "assistant_message": draw(_text),
                "tool_calls": [_call] * draw(st.integers(0, 3)), "llm_calls": 1,
                "input_tokens": draw(st.integers(0, 10**6)), "output_tokens": draw(st.integers(0, 10**6)),
                "error_count": draw(st.integers(0, 3)), "status": "ok"})
    # a session split over two items of the list above is still one session: renumber its turns
    by_session = defaultdict(list)
    for t in turns:
        by_session[t["session_id"]].append(t)
    for ts in by_session.values():
        for i, t in enumerate(sorted(ts, key=lambda t: (t["turn_index"], t["trace_id"]))):
            t["turn_index"] = i
    return turns


@settings(max_examples=100, deadline=None)
@given(turns=turn_batches())
def test_build_sessions_sql_follows_the_python_rules(turns):
    assert sql_sessions(turns) == reference_sessions(turns)


def turn(**kw) -> dict:
    row = dict.fromkeys(lake.TURNS.names)
    row.update(started_at=T0, ended_at=T0, tool_calls=[], input_tokens=0, output_tokens=0, error_count=0)
    row.update(kw)
    return row


def test_project_tie_goes_to_the_one_met_first():
    turns = [turn(session_id="s", turn_index=i, trace_id=f"t{i}", project=p)
             for i, p in enumerate(["b", "a", "a", "b", None, ""])]
    (s,) = sql_sessions(turns)
    assert s["project"] == "b" == reference_sessions(turns)[0]["project"]


def test_no_session_no_row():
    turns = [turn(session_id=None, turn_index=0, trace_id="t"), turn(session_id="", turn_index=0, trace_id="u")]
    assert sql_sessions(turns) == [] == reference_sessions(turns)


def _sessions_in_child(turns: list[dict]) -> None:
    assert sql_sessions(turns) == reference_sessions(turns)


def test_a_forked_worker_builds_sessions_after_its_parent_did():
    # the parent's in-memory DuckDB is copied into the child: the child makes its own and must
    # never drop the copy (its destructor waited forever for threads the child does not have)
    import multiprocessing

    turns = [turn(session_id="s", turn_index=0, trace_id="t", project="p")]
    assert sql_sessions(turns) == reference_sessions(turns)  # the parent's DuckDB exists now
    child = multiprocessing.get_context("fork").Process(target=_sessions_in_child, args=(turns,))
    child.start()
    child.join(60)
    if child.is_alive():
        child.kill()
    assert child.exitcode == 0
