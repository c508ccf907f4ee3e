"""Evaluations, execution_metrics, comparison with production and between executions, on the
sample: the oracle scores 100%; an agent changed on one turn is caught at that turn."""

import json

import pytest
from agents_lib import CHANGED
from cli_helpers import assert_one_line_error, replay

from models.settings import SAMPLES_DIR
from models.simulate import RunOptions


@pytest.fixture
def scen(settings, ingest):
    from tasks import scenario
    from tasks.scenario import replays
    from tasks.store import catalog

    ingest([SAMPLES_DIR / "otlp"])
    with catalog.writer(settings) as con:
        rs = replays.create(con, "support-agent", "session", select_all=True)
        res = scenario.generate(con, settings, rs["replay_id"], "bot", "s", rows=12)
    return res["scenario_id"]


def run(settings, scenario_id, agent, evaluators=None, **opts):
    from stages import run_local

    return run_local(settings, scenario_id, agent, RunOptions(**opts), progress=False, evaluators=evaluators)


def test_oracle_scores_100_and_metrics_are_in_sql(settings, scen, query):
    info = run(settings, scen, "examples.support_agent:oracle")
    m = info.metrics
    assert m["avg_ground_truth_match"] == 100.0 and m["avg_tool_call_match"] == 100.0
    assert m["total_chats"] == 12 and m["completed_chats"] == 12 and m["completion_pct"] == 100.0
    row = query(f"select * from execution_metrics where execution_id = '{info.execution_id}'")[0]
    for k, v in m.items():
        assert row[k] == pytest.approx(v) if isinstance(v, float) else row[k] == v
    per_eval = {r["evaluator"]: r for r in query(
        f"select evaluator, count(*) n, count(*) filter (where error is not null) errors, bool_and(passed) ok "
        f"from eval_scores where execution_id = '{info.execution_id}' group by 1")}
    assert per_eval["ground_truth_match"]["n"] == 38 and per_eval["ground_truth_match"]["ok"]
    assert per_eval["tool_call_match"]["ok"] and per_eval["csat"]["n"] == 12
    assert all(r["errors"] == 0 for r in per_eval.values())


def test_a_change_on_one_turn_is_caught_at_that_turn(settings, scen, query):
    info = run(settings, scen, "agents_lib:changed_one_turn")
    bad = query(f"select c.origin_id, s.turn_index, s.evaluator from eval_scores s join chats c using (chat_id) "
                f"where s.execution_id = '{info.execution_id}' and s.passed = false and s.turn_index is not null")
    assert {(b["origin_id"], b["turn_index"]) for b in bad} == {CHANGED}
    assert {b["evaluator"] for b in bad} == {"ground_truth_match", "tool_call_match", "tool_name_match"}
    from tasks import compare
    from tasks.store import catalog
    with catalog.reader(settings) as con:
        vs = compare.vs_production(con, info.execution_id)
    chat = next(c for c in vs["chats"] if c["origin_id"] == CHANGED[0])
    assert chat["divergence_turn"] == CHANGED[1] and vs["first_divergent_turn"] == CHANGED[1]
    t = chat["turns"][CHANGED[1]]
    assert t["production_tools"] and t["replayed_tools"] == [] and t["similarity"] < 0.58
    assert chat["metrics"]["turn_count"]["delta"] == 0 and chat["metrics"]["tool_calls"]["delta"] < 0


def test_evaluating_twice_gives_the_same_rows_and_custom_evaluators(settings, scen, query):
    from tasks import evaluate
    from tasks.store import catalog

    info = run(settings, scen, "examples.support_agent:oracle", evaluators=["agents_lib:ShortAnswers"])
    q = (f"select chat_id, turn_index, evaluator, evaluator_version, value, passed from eval_scores "
         f"where execution_id = '{info.execution_id}' order by all")
    first = query(q)
    with catalog.writer(settings) as con:
        evaluate.evaluate(con, settings, info.execution_id, ["agents_lib:ShortAnswers"])
    assert query(q) == first
    short = [r for r in first if r["evaluator"] == "short_answers"]
    assert len(short) == 38 and {r["evaluator_version"] for r in short} == {"2"}
    assert "avg_short_answers" in query(f"select * from execution_metrics where execution_id = '{info.execution_id}'")[0]


def test_compare_two_executions_with_repeats_and_the_ci_gate(settings, scen, tmp_path):
    a = run(settings, scen, "examples.support_agent:oracle", repeat=3)
    a2 = run(settings, scen, "examples.support_agent:oracle", repeat=3)
    b = run(settings, scen, "agents_lib:sync_echo", repeat=3)
    from tasks import compare
    from tasks.store import catalog
    with catalog.reader(settings) as con:
        aa = compare.between(con, a.execution_id, a2.execution_id)
        ab = compare.between(con, a.execution_id, b.execution_id)
    assert aa["significant_regressions"] == [] and aa["flaky_rows"] == []
    gt = next(m for m in aa["metrics"] if m["metric"] == "ground_truth_match")
    assert gt["delta"] == 0 and gt["noise_floor"] == 0
    assert "ground_truth_match" in ab["significant_regressions"]
    gtb = next(m for m in ab["metrics"] if m["metric"] == "ground_truth_match")
    assert gtb["ci"][1] < 0 and len(gtb["rows"]) == 12 and all(r["change"] == "regression" for r in gtb["rows"])
    # the CLI gate
    d = settings.data_dir
    r = replay(d, "compare", b.execution_id, a.execution_id, "--fail-on-regression")
    assert "significant regression" in assert_one_line_error(r)
    ok = replay(d, "--json", "compare", a2.execution_id, a.execution_id, "--fail-on-regression")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["baseline"] == a.execution_id
    prod = replay(d, "--json", "compare", b.execution_id)
    assert json.loads(prod.stdout)["diverged_chats"] == 36
