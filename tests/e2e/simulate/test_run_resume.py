"""Kill a running `replay run` (SIGKILL), then `replay runs resume`: no chat lost, none twice."""

import json
import os
import signal
import time

from cli_helpers import ROOT, replay, replay_env, start

from models.settings import SAMPLES_DIR


def test_kill_then_resume(tmp_path):
    d = tmp_path / "d"
    assert replay(d, "ingest", SAMPLES_DIR / "otlp").returncode == 0
    rs = json.loads(replay(d, "--json", "replays", "create", "--project", "support-agent", "--type", "session",
                           "--all").stdout)
    sc = json.loads(replay(d, "--json", "scenarios", "generate", rs["replay_id"], "--agent-name", "a",
                           "--scenario-name", "s", "--rows", "12").stdout)
    env = replay_env(PYTHONPATH=str(ROOT / "tests" / "support"), SLOW_AGENT_S="0.15")
    p = start(d, ["--json", "run", "--scenario", sc["scenario_id"], "--agent", "agents_lib:slow", "--repeat", "10",
                  "--batch-size", "6", "--concurrency", "6"], env=env)
    chats_dir = d / "lake" / "chats"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(chats_dir.glob("*/*.parquet"))) < 3:
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    persisted = len(list(chats_dir.glob("*/*.parquet")))
    assert 3 <= persisted < 20  # killed mid-way: some batches persisted, not all
    execution_id = next(chats_dir.glob("exec=*")).name.removeprefix("exec=")
    ex = json.loads(replay(d, "sql", f"select * from executions where execution_id = '{execution_id}'",
                           "--format", "json").stdout)[0]
    assert ex["status"] == "running"  # the kill left no chance to finish it
    r = replay(d, "--json", "runs", "resume", execution_id, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["status"] == "completed" and info["completed_chats"] == info["total_chats"] == 120
    assert info["ran_now"] == 120 - persisted * 6
    counts = json.loads(replay(d, "sql", "select count(*) n, count(distinct chat_id) d, "
                                         "count(distinct (row_index, repetition)) k from chats", "--format",
                               "json").stdout)[0]
    assert counts == {"n": 120, "d": 120, "k": 120}
    turns = json.loads(replay(d, "sql", "select count(*) n, count(distinct (chat_id, turn_index)) d from chat_turns",
                              "--format", "json").stdout)[0]
    assert turns["n"] == turns["d"] == 38 * 10
    # resuming a finished execution runs nothing
    again = json.loads(replay(d, "--json", "runs", "resume", execution_id, env=env).stdout)
    assert again["ran_now"] == 0 and again["completed_chats"] == 120
