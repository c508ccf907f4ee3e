"""``replay nightly`` as a user runs it without a Prefect server: the nightly flow's night in
this process, its summary printed (``--json``: the manifest and the summary); a second night
compares with the first (another scenario: not comparable), a regression scenario run twice is
compared paired; a night whose execution failed exits 1 after its summary."""

from __future__ import annotations

import json

import pytest
from cli_helpers import ROOT, assert_one_line_error, replay, replay_env

from models.settings import SAMPLES_DIR

ENV = replay_env(PYTHONPATH=str(ROOT / "tests" / "support"))


@pytest.fixture(scope="module")
def first_night(tmp_path_factory):
    d = tmp_path_factory.mktemp("nightly") / "data"
    r = replay(d, "--json", "nightly", "--sample", "--rows", "3", timeout=180)
    assert r.returncode == 0, r.stderr
    assert "replay nightly: selected 2 sessions" in r.stderr  # the steps, on stderr
    return d, json.loads(r.stdout)


def test_a_night_in_process_prints_its_summary(first_night):
    d, night = first_night
    assert night["ingest"]["ingested"] > 0 and night["selected_sessions"] == 2
    [run] = night["runs"]
    assert run["status"] == "completed" and run["total_chats"] == 3 and run["comparison"]["kind"] == "none"
    assert night["summary"].startswith("# Nightly replay: support-agent") and run["execution_id"] in night["summary"]
    assert (d / "reports" / "nightly").is_dir() and run["report_path"].startswith(str(d / "reports" / "nightly"))
    assert night["artifact_key"] is None  # no Prefect: nothing published

    # night 2, the same options as PARAMS_JSON: another scenario (each night selects its own)
    params = json.dumps({"project": "support-agent", "agent": "examples.support_agent:agent",
                         "paths": [str(SAMPLES_DIR / "otlp")], "select_where": "error_count > 0", "rows": 3})
    r = replay(d, "nightly", params, timeout=180)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("# Nightly replay: support-agent")
    assert f"Previous night: `{run['execution_id']}`" in r.stdout and "another scenario" in r.stdout
    assert "| different scenario, not comparable |" in r.stdout
    assert "| worse |" not in r.stdout and "| better |" not in r.stdout


def test_a_regression_scenario_run_twice_is_compared_paired(first_night):
    d, night = first_night
    scenario_id = night["runs"][0]["scenario_id"]
    args = ["--json", "nightly", "--sample", "--select-where", "error_count > 1000", "--regression-scenario",
            scenario_id]
    one = json.loads(replay(d, *args, timeout=180).stdout)
    assert "nothing new to replay" in one["skipped"] and [r["kind"] for r in one["runs"]] == ["regression"]
    two = json.loads(replay(d, *args, timeout=180).stdout)
    cmp = two["runs"][0]["comparison"]
    assert cmp["kind"] == "paired" and cmp["baseline_execution_id"] == one["runs"][0]["execution_id"]
    gt = next(k for k in cmp["kpis"] if k["metric"] == "avg_ground_truth_match")
    assert gt["delta"] == 0 and gt["change"] == "unchanged"  # the same deterministic agent
    assert "| unchanged |" in two["summary"]


def test_a_failed_night_exits_1_after_its_summary(first_night):
    d, _ = first_night
    r = replay(d, "nightly", "--sample", "--rows", "3", "--agent", "cli_agents:explodes_on_second_turn",
               env=ENV, timeout=180)
    assert r.returncode == 1
    assert "**failed**" in r.stdout  # the summary first
    line = r.stderr.splitlines()[-1]
    assert line.startswith("replay: error: execution ex_") and "chats failed" in line


def test_nightly_mistakes_are_one_line(tmp_path):
    d = tmp_path / "d"
    assert "--project P --agent REF" in assert_one_line_error(replay(d, "nightly", "--project", "p"))
    assert "--mode" in assert_one_line_error(replay(d, "nightly", "--sample", "--mode", "nope"))
    assert "--rows" in assert_one_line_error(replay(d, "nightly", "--sample", "--rows", "0"))
    assert "PARAMS_JSON" in assert_one_line_error(replay(d, "nightly", "{not json"))
    r = replay(d, "nightly", '{"project": "p", "agent": "m:f", "agent_api_key_block": "key"}')
    assert "need a Prefect server" in assert_one_line_error(r)
    assert not (d / "lake").exists()  # nothing was written
