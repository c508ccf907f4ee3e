"""User code that misbehaves, in real `replay` processes: an agent or an evaluator that never
returns or that calls sys.exit. Each is an error row with its reason; the run goes on, the
process exits when it is done (rc 0, one JSON object), and the writer lock is free meanwhile."""

import json
import time

import pytest
from cli_helpers import ROOT, finish, replay, replay_env, sample_scenario, start

from models.settings import SAMPLES_DIR


@pytest.fixture(scope="module")
def scen(tmp_path_factory):
    """A data dir with the sample and a scenario of its 12 sessions (row 0 has 2+ turns)."""
    d = tmp_path_factory.mktemp("user-code") / "d"
    sc = sample_scenario(d)
    return d, sc["scenario_id"]


def env(**extra):
    return replay_env(PYTHONPATH=str(ROOT / "tests" / "support"), **extra)


def run_args(scenario_id: str, agent: str, *more: str) -> list[str]:
    return ["--json", "run", "--scenario", scenario_id, "--agent", agent, "--max-failure-rate", "0.5", *more]


def chats_of(d, execution_id: str) -> list[dict]:
    r = replay(d, "sql", f"select row_index, status, ended_reason, error from chats "
                         f"where execution_id = '{execution_id}' order by row_index", "--format", "json")
    return json.loads(r.stdout)


def scores_of(d, execution_id: str, evaluator: str) -> list[dict]:
    r = replay(d, "sql", f"select c.row_index, s.value, s.passed, s.error from eval_scores s join chats c "
                         f"using (chat_id) where s.execution_id = '{execution_id}' and s.evaluator = '{evaluator}' "
                         f"order by c.row_index", "--format", "json")
    return json.loads(r.stdout)


def test_a_sync_agent_that_never_returns_fails_its_chat_and_the_process_exits(scen):
    d, scenario_id = scen
    t0 = time.monotonic()
    r = replay(d, *run_args(scenario_id, "agents_lib:sync_hangs", "--turn-timeout", "1", "--retries", "1"),
               env=env(), timeout=90)
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    assert time.monotonic() - t0 < 60
    info = json.loads(r.stdout)
    assert (info["completed_chats"], info["failed_chats"]) == (11, 1)
    failed = [c for c in chats_of(d, info["execution_id"]) if c["status"] == "failed"]
    assert [(c["row_index"], c["ended_reason"]) for c in failed] == [(0, "timeout")]
    assert "did not answer within 1 s" in failed[0]["error"]


@pytest.mark.parametrize("agent, code", [("agents_lib:sync_exits", "0"), ("agents_lib:async_exits", "3")])
def test_an_agent_calling_sys_exit_fails_its_chat_only(scen, agent, code):
    d, scenario_id = scen
    r = replay(d, *run_args(scenario_id, agent), env=env(), timeout=90)
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    info = json.loads(r.stdout)
    assert (info["completed_chats"], info["failed_chats"]) == (11, 1)
    failed = [c for c in chats_of(d, info["execution_id"]) if c["status"] == "failed"]
    assert [(c["row_index"], c["ended_reason"]) for c in failed] == [(0, "error")]
    assert failed[0]["error"] == f"AgentExit: the agent called sys.exit({code})"


def test_a_hanging_evaluator_times_out_and_holds_no_lock(scen, tmp_path):
    d, scenario_id = scen
    p = start(d, run_args(scenario_id, "agents_lib:sync_echo", "--evaluator", "agents_lib:HangingEvaluator"),
              env=env(MARK_DIR=str(tmp_path), REPLAY_EVALUATOR_TIMEOUT_S="4"))
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "evaluator-hangs").exists() and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (tmp_path / "evaluator-hangs").exists()
        # while the evaluator hangs, another writer gets the catalog
        other = replay(d, "--json", "ingest", SAMPLES_DIR / "otlp", timeout=30)
        assert other.returncode == 0, other.stderr[-2000:]
    finally:
        r = finish(p, timeout=60)  # killed when it is still there by then
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    info = json.loads(r.stdout)
    scores = scores_of(d, info["execution_id"], "hangs")
    assert len(scores) == 12 and [s["passed"] for s in scores[1:]] == [True] * 11
    assert scores[0]["value"] is None and scores[0]["error"].startswith("TimeoutError: hangs did not finish")


def test_an_evaluator_calling_sys_exit_is_an_error_row(scen):
    d, scenario_id = scen
    r = replay(d, *run_args(scenario_id, "agents_lib:sync_echo", "--evaluator", "agents_lib:ExitingEvaluator"),
               env=env(), timeout=90)
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    info = json.loads(r.stdout)
    scores = scores_of(d, info["execution_id"], "exits")
    assert len(scores) == 12 and scores[0]["error"] == "evaluator 'exits' called sys.exit(0)"
    # and when an execution is scored again
    r = replay(d, "--json", "evaluate", info["execution_id"], "--evaluator", "agents_lib:ExitingEvaluator", env=env())
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    assert json.loads(r.stdout)["execution_id"] == info["execution_id"]


def test_50_mb_answers_are_scored_within_duckdbs_memory_limit(scen):
    """Six answers of 50 MB in one batch, DuckDB at its default 512 MB: the execution is scored
    (each judge read the first REPLAY_EVAL_TEXT_CHARS characters, and the score says so)."""
    d, scenario_id = scen
    r = replay(d, *run_args(scenario_id, "agents_lib:huge_answers"), env=env(HUGE_ANSWER_ROWS="6"), timeout=180)
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    info = json.loads(r.stdout)
    assert info["status"] == "completed" and info["completed_chats"] == 12
    assert info["metrics"]["avg_ground_truth_match"] is not None
    r = replay(d, "sql", f"select c.row_index, length(t.assistant_message) n, s.evaluator, s.error, "
                         f"s.detail->>'truncated' note from eval_scores s join chats c using (chat_id) "
                         f"join chat_turns t using (chat_id) where s.execution_id = '{info['execution_id']}' "
                         f"and s.turn_index = 0 and t.turn_index = 0 and s.evaluator = 'ground_truth_match' "
                         f"order by c.row_index", "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [x["n"] for x in rows[:6]] == [50_000_000] * 6  # kept whole in the lake
    assert all(x["error"] is None for x in rows)
    assert [x["note"] for x in rows[:6]] == ["judged on the first 100,000 characters of: "
                                             "turn 0 assistant_message (50,000,000 chars)"] * 6
    assert all(x["note"] is None for x in rows[6:])
