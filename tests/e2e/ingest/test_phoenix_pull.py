"""`replay ingest --phoenix` against a real Phoenix server fed by the real OpenTelemetry SDK:
auth, incremental pulls (no gaps, no duplicates), updates of the touched session only,
and one-line failures (bad key, dead server) that lose nothing."""

import json
import os
import subprocess
import sys
import time

import pytest
from phoenix_server import agent_trace_specs, free_port, send_spans, wait_for_spans

pytestmark = pytest.mark.slow
PROJECT = "weather-bot"


def replay(data_dir, *args, api_key=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPLAY_")}
    if api_key:
        env["REPLAY_PHOENIX_API_KEY"] = api_key
    return subprocess.run([sys.executable, "-m", "replay.cli", "--data-dir", str(data_dir), *args],
                          capture_output=True, text=True, env=env, timeout=300)


def sql(data_dir, q):
    r = replay(data_dir, "sql", q, "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def turn(session, n, t0, **kw):
    return agent_trace_specs(session_id=session, user_id=f"u-{session}", question=f"{session} question {n}",
                             answer=f"{session} answer {n}", prefix=f"{session}-{n}",
                             start_ns=t0 + n * 10_000_000_000, **kw)


def test_pull_is_incremental_authenticated_and_resumable(phoenix, tmp_path):
    data = tmp_path / "data"
    t0 = time.time_ns() - 3600 * 10**9
    specs = turn("s-a", 0, t0) + turn("s-a", 1, t0, tool_error=True) + turn("s-b", 0, t0)
    send_spans(phoenix.base_url, phoenix.api_key, specs, PROJECT)
    wait_for_spans(phoenix.base_url, phoenix.api_key, PROJECT, len(specs))

    # no key: refused in one line, nothing written, non-zero exit
    r = replay(data, "ingest", "--phoenix", phoenix.base_url, "--project", PROJECT)
    assert r.returncode != 0 and "refused" in r.stderr.lower() and len(r.stderr.strip().splitlines()) == 1
    # wrong key: the same
    r = replay(data, "ingest", "--phoenix", phoenix.base_url, "--project", PROJECT, api_key="not-a-key")
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1 and "not-a-key" not in r.stderr

    r = replay(data, "--json", "ingest", "--phoenix", phoenix.base_url, "--project", PROJECT, api_key=phoenix.api_key)
    assert r.returncode == 0, r.stderr
    first = json.loads(r.stdout)
    assert (first["read"], first["ingested"], first["rejected"], first["duplicates"]) == (12, 12, 0, 0)
    sessions = {s["session_id"]: s for s in sql(data, "select * from sessions")}
    assert set(sessions) == {"s-a", "s-b"} and sessions["s-a"]["turn_count"] == 2
    assert sessions["s-a"]["project"] == PROJECT and sessions["s-a"]["error_count"] == 1
    turns = sql(data, "select * from turns where session_id = 's-a' order by turn_index")
    assert [t["user_message"] for t in turns] == ["s-a question 0", "s-a question 1"]
    assert turns[0]["tool_calls"][0]["name"] == "get_weather" and turns[1]["tool_calls"][0]["status"] == "error"

    # nothing new: one span re-read (inclusive cursor) and dropped as a duplicate
    r = replay(data, "--json", "ingest", "--phoenix", phoenix.base_url, "--project", PROJECT, api_key=phoenix.api_key)
    again = json.loads(r.stdout)
    assert again["ingested"] == 0 and again["read"] == again["duplicates"] <= 1

    # a new turn of s-a arrives: only s-a is rebuilt, s-b untouched
    before_b = sessions["s-b"]["sessionized_at"]
    more = turn("s-a", 2, t0)
    send_spans(phoenix.base_url, phoenix.api_key, more, PROJECT)
    wait_for_spans(phoenix.base_url, phoenix.api_key, PROJECT, len(specs) + len(more))
    r = replay(data, "--json", "ingest", "--phoenix", phoenix.base_url, "--project", PROJECT, api_key=phoenix.api_key)
    third = json.loads(r.stdout)
    assert third["ingested"] == 4 and third["read"] == third["ingested"] + third["duplicates"]
    assert third["sessionize"]["sessions_touched"] == ["s-a"]
    sessions = {s["session_id"]: s for s in sql(data, "select * from sessions")}
    assert sessions["s-a"]["turn_count"] == 3 and sessions["s-b"]["sessionized_at"] == before_b
    counts = sql(data, "select count(*) as n, count(distinct (trace_id, span_id)) as d from spans")[0]
    assert counts["n"] == counts["d"] == 16


def test_dead_phoenix_is_one_line_and_a_later_pull_has_no_gap(phoenix, tmp_path):
    data = tmp_path / "data"
    dead = f"http://127.0.0.1:{free_port()}"
    r = replay(data, "ingest", "--phoenix", dead, "--project", PROJECT, api_key="k")
    assert r.returncode != 0 and "cannot reach phoenix" in r.stderr.lower()
    assert len(r.stderr.strip().splitlines()) == 1
    r = replay(data, "--json", "ingest", "--phoenix", phoenix.base_url, "--project", PROJECT, api_key=phoenix.api_key)
    assert r.returncode == 0, r.stderr
    spans = wait_for_spans(phoenix.base_url, phoenix.api_key, PROJECT, 1)
    assert sql(data, "select count(*) as n from spans")[0]["n"] == len(spans)
