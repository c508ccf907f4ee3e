"""An execution against the previous execution of the same run-test name (the nightly's
"since last night"): paired by row when both ran the same scenario, else the KPI deltas of
``execution_metrics``. Against production too: how many chats diverged."""

from __future__ import annotations

from typing import Any

from models.evals import MetricSpec
from models.nightly import Comparison, MetricDelta
from models.settings import Settings
from tasks.compare.executions import between, vs_production
from tasks.store import catalog


def column_specs(con) -> dict[str, MetricSpec]:
    """Every execution_metrics column that holds a metric, with its spec (the chat metrics, the
    built-in evaluators, and the evaluators the catalog has seen)."""
    from tasks.evaluate.evaluators import BUILTINS
    from tasks.evaluate.metrics import CHAT_METRICS
    from tasks.evaluate.stage import load_specs

    names = set(BUILTINS) | {r["name"] for r in catalog.rows(con, "evaluator_specs")}
    specs = [*CHAT_METRICS, *load_specs(con, sorted(names)).values()]
    return {s.metric_column: s for s in specs}


UNCHANGED = "unchanged"
NOT_COMPARABLE = "different scenario, not comparable"


def change(spec: MetricSpec, a: float | None, b: float | None) -> str:
    """better / worse / unchanged / n/a: unchanged when the change is below the metric's minimum
    effect, or rounds to zero at the digits every surface shows (``spec.digits``): a delta
    written 0.00 is never better or worse."""
    if a is None or b is None:
        return "n/a"
    if abs(b - a) < max(spec.effect_floor(a), 1e-9) or round(b - a, spec.digits) == 0:
        return UNCHANGED
    return "better" if (b > a) == spec.higher_is_better else "worse"


def kpi_deltas(baseline: dict[str, Any], tonight: dict[str, Any], specs: dict[str, MetricSpec],
               comparable: bool = True) -> list[MetricDelta]:
    """execution_metrics of two executions: tonight - baseline per metric. Of two different
    scenarios (``comparable`` False: other conversations, other rows) a delta is no better or
    worse, and says so (:data:`NOT_COMPARABLE`)."""
    out = []
    for col, spec in sorted(specs.items(), key=lambda kv: (kv[1].rank, kv[0])):
        if col not in baseline and col not in tonight:
            continue
        a, b = baseline.get(col), tonight.get(col)
        delta = None if a is None or b is None else round(b - a, 4)
        out.append(MetricDelta(metric=col, baseline=a, tonight=b, delta=delta,
                               change=change(spec, a, b) if comparable else NOT_COMPARABLE))
    return out


def compare_with_previous(settings: Settings, run_name: str, execution_id: str) -> Comparison:
    """``execution_id`` against production, and against the latest earlier execution of the same
    run-test name: paired by production conversation (bootstrap CIs, noise floor, flaky rows) when
    it ran the same scenario, else the metric deltas. No baseline the first time."""
    with catalog.reader(settings) as con:
        prod = vs_production(con, execution_id, reasons=False)
        out = Comparison(diverged_chats=prod["diverged_chats"], first_divergent_turn=prod["first_divergent_turn"])
        prev = catalog.one(con, "previous_execution", {"name": run_name, "execution_id": execution_id})
        if prev is None:
            return out
        out.baseline_execution_id, out.baseline_started_at = prev["execution_id"], prev["started_at"].isoformat()
        metrics = {eid: catalog.one(con, "get_execution_metrics", {"execution_id": eid})
                   for eid in (prev["execution_id"], execution_id)}
        specs = column_specs(con)
        same = prev["scenario_id"] == catalog.one(con, "get_execution", {"execution_id": execution_id})["scenario_id"]
        out.kind, out.kpis = "kpi", kpi_deltas(metrics[prev["execution_id"]], metrics[execution_id], specs, same)
        if same:
            cmp = between(con, prev["execution_id"], execution_id)
            out.kind, out.significant_regressions, out.flaky_rows = ("paired", cmp.significant_regressions,
                                                                      cmp.flaky_rows)
            out.paired = [MetricDelta(metric=m.metric, baseline=m.a, tonight=m.b, delta=m.delta,
                                      change=change(cmp.specs[m.metric], m.a, m.b), significant=m.significant)
                          for m in cmp.metrics]
    return out


__all__ = ["NOT_COMPARABLE", "UNCHANGED", "change", "column_specs", "compare_with_previous", "kpi_deltas"]
