"""Kill a running `replay run` (SIGKILL), then `replay runs resume`: no chat lost, none twice;
a kill between a batch's two parts (chat_turns written, chats not) duplicates no turn."""

import json
import os
import signal
import time

from cli_helpers import ROOT, replay, replay_env, sample_scenario, start


def sql_rows(d, query: str) -> list[dict]:
    r = replay(d, "sql", query, "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_kill_then_resume(tmp_path):
    d = tmp_path / "d"
    sc = sample_scenario(d)
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


QUALITY = ("avg_ground_truth_match", "avg_tool_call_match", "avg_tool_name_match", "avg_task_completion", "avg_csat")


def scores_of(d, execution_id: str) -> list[dict]:
    return sql_rows(d, f"select c.row_index, c.repetition, s.turn_index, s.evaluator, s.value, s.passed "
                       f"from eval_scores s join chats c using (chat_id) where s.execution_id = '{execution_id}' "
                       f"and s.evaluator != 'latency' order by all")  # all but the clock's


def test_kill_between_a_batchs_chat_turns_and_chats_parts_then_resume(tmp_path):
    """REPLAY_TEST_CRASH_AFTER=chat_turns:3 kills the run (SIGKILL) right after the third batch's
    chat_turns part, before its chats part: the half batch is invisible, and resume runs it again
    without a duplicate turn; its scores equal those of an uninterrupted run."""
    d = tmp_path / "d"
    sc = sample_scenario(d)
    run = ["--json", "run", "--scenario", sc["scenario_id"], "--agent", "examples.support_agent:agent",
           "--repeat", "3", "--batch-size", "6", "--concurrency", "6"]
    r = replay(d, *run, env=replay_env(REPLAY_TEST_CRASH_AFTER="chat_turns:3"), timeout=120)
    assert r.returncode == -signal.SIGKILL and r.stdout == ""
    execution_id = next((d / "lake" / "chats").glob("exec=*")).name.removeprefix("exec=")
    turn_parts = {p.name for p in (d / "lake" / "chat_turns" / f"exec={execution_id}").glob("*.parquet")}
    chat_parts = {p.name for p in (d / "lake" / "chats" / f"exec={execution_id}").glob("*.parquet")}
    # the half batch (batches persist concurrently: another one may be half-written at the kill too)
    assert chat_parts < turn_parts and len(turn_parts - chat_parts) >= 1
    # scoring what is there (a writer: the views now read the parts) sees nothing of the half batch
    assert replay(d, "--json", "evaluate", execution_id).returncode == 0
    seen = sql_rows(d, "select (select count(*) from chats) chats, (select count(*) from chat_turns) turns, "
                       "(select count(*) from chat_turns where chat_id not in (select chat_id from chats)) orphans, "
                       "(select count(distinct chat_id) from eval_scores) scored")[0]
    assert seen["orphans"] == 0 and seen["chats"] == seen["scored"] == 6 * len(chat_parts)

    r = replay(d, "--json", "runs", "resume", execution_id, timeout=120)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["status"] == "completed" and info["completed_chats"] + info["failed_chats"] == 36
    turns = sql_rows(d, f"select count(*) n, count(distinct (chat_id, turn_index)) d from chat_turns "
                        f"where execution_id = '{execution_id}'")[0]
    assert turns == {"n": 38 * 3, "d": 38 * 3}

    # the same run, uninterrupted: the same scores, row by row, and the same metrics
    whole = json.loads(replay(d, *run, timeout=120).stdout)
    assert scores_of(d, execution_id) == scores_of(d, whole["execution_id"])
    assert {k: info["metrics"][k] for k in QUALITY} == {k: whole["metrics"][k] for k in QUALITY}
