"""The nightly's KPI deltas: a change that rounds to zero where it is shown is unchanged, and
KPIs of two different scenarios are not called better or worse."""

from models.evals import MetricSpec
from models.nightly import Comparison, NightlyParams, NightlyResult, NightlyRun
from tasks.compare.history import NOT_COMPARABLE, UNCHANGED, change, kpi_deltas
from tasks.evaluate.metrics import builtin_specs
from tasks.report.summary import nightly_markdown

# a custom evaluator's inferred spec: no minimum effect, 2 digits
CUSTOM = MetricSpec(name="politeness", label="Politeness", digits=2)


def test_a_delta_that_rounds_to_zero_is_unchanged_not_worse():
    assert change(CUSTOM, 0.5, 0.4996) == UNCHANGED  # -0.0004: written -0.00
    assert change(CUSTOM, 0.5, 0.49) == "worse"
    assert change(CUSTOM, 0.5, 0.51) == "better"
    assert change(CUSTOM, None, 0.5) == "n/a"
    gt = builtin_specs()["avg_ground_truth_match"]  # 5 points of minimum effect
    assert change(gt, 50.0, 47.0) == UNCHANGED and change(gt, 50.0, 40.0) == "worse"


def test_kpis_of_different_scenarios_are_labelled_not_comparable():
    specs = {"avg_politeness": CUSTOM, **builtin_specs()}
    a = {"avg_politeness": 0.5, "avg_ground_truth_match": 50.0}
    b = {"avg_politeness": 0.3, "avg_ground_truth_match": 80.0}
    assert {d.metric: d.change for d in kpi_deltas(a, b, specs, comparable=False)} == {
        "avg_politeness": NOT_COMPARABLE, "avg_ground_truth_match": NOT_COMPARABLE}
    assert {d.metric: d.change for d in kpi_deltas(a, b, specs)} == {"avg_politeness": "worse",
                                                                     "avg_ground_truth_match": "better"}


def test_the_summary_says_so():
    params = NightlyParams(project="p", agent="m:f")
    metrics = {"avg_ground_truth_match": 50.0, "avg_csat": 7.0}
    base = {"avg_ground_truth_match": 60.0, "avg_csat": 7.0}

    def night(same: bool) -> str:
        cmp = Comparison(baseline_execution_id="ex_a", baseline_started_at="2026-11-20T02:00:00", kind="kpi",
                         kpis=kpi_deltas(base, metrics, builtin_specs(), comparable=same))
        run = NightlyRun(kind="selection", run_name="nightly: p", scenario_id="scn_b", execution_id="ex_b",
                         status="completed", metrics=metrics, comparison=cmp, report_path="/r.html")
        return nightly_markdown(NightlyResult(project="p", night="2026-11-21", data_dir="/d", runs=[run]), params)

    other = night(False)
    assert "| Ground truth match (`avg_ground_truth_match`) | 50.0% | 60.0% | -10.0% | " \
           "different scenario, not comparable |" in other
    assert "worse" not in other and "better" not in other
    same = night(True)
    assert "-10.0% | worse |" in same and "| +0.00/10 | unchanged |" in same
