"""``replay evaluate`` as a user runs it: by default it re-runs the evaluators the execution was
scored with, custom ones included (it used to drop their scores silently); ``--only NAME``
re-runs one evaluator and leaves every other score as it is."""

from __future__ import annotations

import json

import duckdb
import pytest
from cli_helpers import ROOT, assert_one_line_error, replay, replay_env, sample_scenario

ENV = replay_env(PYTHONPATH=str(ROOT / "tests" / "support"))
CUSTOM = "agents_lib:ShortAnswers"  # scores as short_answers


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """The sample, a scenario of 4 sessions, one run scored with the built-ins and a custom evaluator."""
    d = tmp_path_factory.mktemp("evaluate") / "data"
    sc = sample_scenario(d, 4)
    r = replay(d, "--json", "run", "--scenario", sc["scenario_id"], "--agent", "examples.support_agent:agent",
               "--evaluator", CUSTOM, env=ENV, timeout=120)
    assert r.returncode == 0, r.stderr
    return d, json.loads(r.stdout)


def scores(d, execution_id) -> dict[str, list[tuple]]:
    r = replay(d, "sql", f"select evaluator, chat_id, turn_index, value, passed, evaluated_at::varchar scored_at "
                         f"from eval_scores where execution_id = '{execution_id}' order by all", "--format", "json")
    out: dict[str, list[tuple]] = {}
    for s in json.loads(r.stdout):
        out.setdefault(s["evaluator"], []).append((s["chat_id"], s["turn_index"], s["value"], s["passed"], s["scored_at"]))
    return out


def test_evaluate_reruns_the_custom_evaluators_it_was_scored_with(scored):
    d, run = scored
    eid = run["execution_id"]
    assert run["metrics"]["avg_short_answers"] is not None
    before = scores(d, eid)
    r = replay(d, "--json", "evaluate", eid, env=ENV)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["avg_short_answers"] == run["metrics"]["avg_short_answers"]
    assert out["evaluation"]["refs"] == [CUSTOM] and out["evaluation"]["recorded"] is True
    after = scores(d, eid)
    assert set(after) == set(before) and len(after["short_answers"]) == len(before["short_answers"])
    text = replay(d, "evaluate", eid, env=ENV)
    assert f"custom evaluators: {CUSTOM} (as recorded on the execution)" in text.stdout
    assert "short_answers" in text.stdout and "Ground truth match" in text.stdout
    # runs resume (nothing left to run) scores it the same way
    again = json.loads(replay(d, "--json", "runs", "resume", eid, env=ENV).stdout)
    assert again["metrics"]["avg_short_answers"] == run["metrics"]["avg_short_answers"]


def test_only_reruns_one_evaluator_and_keeps_the_other_scores(scored):
    d, run = scored
    eid = run["execution_id"]
    before = scores(d, eid)
    r = replay(d, "--json", "evaluate", eid, "--only", "ground_truth_match", env=ENV)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["evaluation"]["only"] == "ground_truth_match" and "short_answers" in out["evaluation"]["keep"]
    after = scores(d, eid)
    assert {k: v for k, v in after.items() if k != "ground_truth_match"} == {
        k: v for k, v in before.items() if k != "ground_truth_match"}  # as they were, evaluated_at too
    assert [x[:4] for x in after["ground_truth_match"]] == [x[:4] for x in before["ground_truth_match"]]
    assert after["ground_truth_match"][0][4] != before["ground_truth_match"][0][4]  # re-run: scored again
    assert out["avg_short_answers"] == run["metrics"]["avg_short_answers"]
    assert out["avg_ground_truth_match"] == run["metrics"]["avg_ground_truth_match"]
    # a custom one by its name
    assert replay(d, "--json", "evaluate", eid, "--only", "short_answers", env=ENV).returncode == 0
    line = assert_one_line_error(replay(d, "evaluate", eid, "--only", "nope", env=ENV))
    assert "--only nope" in line and "ground_truth_match" in line and "short_answers" in line


def test_an_execution_scored_before_the_refs_were_recorded_keeps_its_custom_scores(scored):
    d, run = scored
    eid = run["execution_id"]
    con = duckdb.connect(str(d / "replay.duckdb"))  # as an earlier Replay left it: no refs recorded
    con.execute("UPDATE executions SET evaluator_refs = NULL WHERE execution_id = ?", [eid])
    con.close()
    before = scores(d, eid)["short_answers"]
    r = replay(d, "evaluate", eid, env=ENV)
    assert r.returncode == 0, r.stderr
    assert "kept the scores of short_answers" in r.stderr and "--evaluator module:Class" in r.stderr
    assert scores(d, eid)["short_answers"] == before
    # naming the evaluators says otherwise: only the built-ins now, and that is recorded
    r = replay(d, "--json", "evaluate", eid, "--evaluator", CUSTOM, env=ENV)
    assert json.loads(r.stdout)["evaluation"]["refs"] == [CUSTOM]
