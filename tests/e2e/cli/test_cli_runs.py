"""``replay runs list`` / ``replay runs show`` as a user runs them: executions newest first, a
run killed with -9 shown ``interrupted`` (not ``running``), the KPIs formatted by their specs,
the top error reasons of the failed chats, and the next command to run."""

from __future__ import annotations

import json
import os
import signal

import pytest
from cli_helpers import ROOT, assert_one_line_error, replay, replay_env, sample_scenario, start, wait_for

ENV = replay_env(PYTHONPATH=str(ROOT / "tests" / "support"), SLOW_AGENT_S="0.15")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    """A data dir with the sample ingested and a scenario of its 12 sessions."""
    d = tmp_path_factory.mktemp("runs") / "data"
    sc = sample_scenario(d)
    return d, sc["scenario_id"]


def listed(d, *args) -> list[dict]:
    r = replay(d, "--json", "runs", "list", *args, env=ENV)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["executions"]


def test_a_killed_run_is_listed_interrupted_then_resumed(scenario):
    d, scenario_id = scenario
    p = start(d, ["run", "--scenario", scenario_id, "--agent", "cli_agents:slow", "--repeat", "10",
                  "--batch-size", "6", "--concurrency", "6"], env=ENV)
    chats = d / "lake" / "chats"  # 120 chats of ~0.5 s, 6 at a time: ~10 s, time to look at it running
    assert wait_for(lambda: len(list(chats.glob("exec=*/*.parquet"))) >= 2, 60)
    [running] = listed(d, "--status", "running")
    assert running["owner_pid"] == p.pid and running["scenario_id"] == scenario_id
    assert running["agent_ref"] == "cli_agents:slow" and running["total_chats"] == 120
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    execution_id = running["execution_id"]
    persisted = len(list((chats / f"exec={execution_id}").glob("*.parquet")))

    [ex] = listed(d, "--status", "interrupted")
    assert ex["execution_id"] == execution_id and ex["stored_status"] == "running"  # the kill left it "running"
    assert ex["done_chats"] == ex["completed_chats"] == 6 * persisted < 120 and ex["seconds"] > 0
    assert listed(d, "--status", "running") == []
    table = replay(d, "runs", "list", env=ENV)
    assert table.returncode == 0, table.stderr
    line = next(ln for ln in table.stdout.splitlines() if execution_id in ln)
    assert "interrupted" in line and f"{6 * persisted}/120" in line and "cli_agents:slow" in line
    assert f"replay runs resume {execution_id}" in table.stdout
    show = replay(d, "runs", "show", execution_id, env=ENV)
    assert show.returncode == 0, show.stderr
    assert f"pid {p.pid}" in show.stdout and "is gone" in show.stdout
    assert f"next: replay runs resume {execution_id}" in show.stdout

    r = replay(d, "--json", "runs", "resume", execution_id, env=ENV, timeout=120)
    assert r.returncode == 0, r.stderr
    [done] = listed(d, "--scenario", scenario_id, "--status", "completed")
    assert done["execution_id"] == execution_id and done["done_chats"] == 120 and done["seconds"] > 0
    info = json.loads(replay(d, "--json", "runs", "show", execution_id, env=ENV).stdout)
    kpis = {k["metric"]: k for k in info["kpis"]}
    assert kpis["completion_pct"]["text"] == "100.0%" and kpis["avg_csat"]["text"].endswith("/10")
    assert info["next"][0] == f"replay compare {execution_id}   (against production)"


def test_show_groups_the_errors_of_failed_chats_and_lists_newest_first(scenario):
    d, scenario_id = scenario
    r = replay(d, "--json", "run", "--scenario", scenario_id, "--agent", "cli_agents:explodes_on_second_turn",
               "--max-failure-rate", "1", env=ENV, timeout=120)
    assert r.returncode == 0, r.stderr
    run = json.loads(r.stdout)
    assert run["failed_chats"] == run["total_chats"] == 12  # every session has a second turn
    execution_id = run["execution_id"]
    assert listed(d)[0]["execution_id"] == execution_id  # newest first

    info = json.loads(replay(d, "--json", "runs", "show", execution_id, env=ENV).stdout)
    [err] = info["errors"]
    assert err["reason"] == "RuntimeError: agent exploded on turn <n>" and err["count"] == run["failed_chats"]
    assert err["example_chat_id"].startswith(execution_id)
    text = replay(d, "runs", "show", execution_id, env=ENV)
    assert "why chats failed" in text.stdout and "agent exploded on turn <n>" in text.stdout
    assert f"{run['failed_chats']} failed" in text.stdout and "Ground truth match" in text.stdout
    # the other execution of the scenario is the baseline the hints name
    assert any(s.startswith(f"replay compare {execution_id} ex_") for s in info["next"])


def test_mistakes_are_one_line(scenario):
    d, _ = scenario
    assert "running, completed, failed, interrupted" in assert_one_line_error(
        replay(d, "runs", "list", "--status", "done", env=ENV))
    assert "replay runs list" in assert_one_line_error(replay(d, "runs", "show", "ex_nope", env=ENV))
    assert listed(d, "--scenario", "scn_nope") == []
