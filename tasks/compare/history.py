"""An execution against the previous execution of the same run-test name (the nightly's
"since last night"): paired by row when both ran the same scenario, else the KPI deltas of
``execution_metrics``. Against production too: how many chats diverged."""

from __future__ import annotations

from typing import Any

from models.nightly import Comparison, MetricDelta
from models.settings import Settings
from tasks.compare.executions import LOWER_IS_BETTER, between, vs_production
from tasks.store import catalog

# execution_metrics columns that are not KPIs to compare between two different scenarios
NOT_KPIS = {"execution_id", "evaluated_at", "total_chats", "completed_chats"}


def lower_is_better(metric: str) -> bool:
    name = metric.removeprefix("avg_")
    return name in LOWER_IS_BETTER or name == "chat_latency_ms"


def change(a: float | None, b: float | None, lower_better: bool) -> str:
    """better / worse / same (within 1% of the larger value: timings jitter) / n/a."""
    if a is None or b is None:
        return "n/a"
    if abs(b - a) <= max(1e-9, 0.01 * max(abs(a), abs(b))):
        return "same"
    return "better" if (b < a) == lower_better else "worse"


def kpi_deltas(baseline: dict[str, Any], tonight: dict[str, Any]) -> list[MetricDelta]:
    """execution_metrics of two executions (of different scenarios): tonight - baseline per KPI."""
    out = []
    for k in sorted((set(baseline) | set(tonight)) - NOT_KPIS):
        a, b = baseline.get(k), tonight.get(k)
        delta = None if a is None or b is None else b - a
        out.append(MetricDelta(metric=k, baseline=a, tonight=b, delta=delta, change=change(a, b, lower_is_better(k))))
    return out


def compare_with_previous(settings: Settings, run_name: str, execution_id: str) -> Comparison:
    """``execution_id`` against production, and against the latest earlier execution of the same
    run-test name: paired (bootstrap CIs, noise floor, flaky rows) when it ran the same scenario,
    else KPI deltas. No baseline the first time."""
    with catalog.reader(settings) as con:
        prod = vs_production(con, execution_id)
        out = Comparison(diverged_chats=prod["diverged_chats"], first_divergent_turn=prod["first_divergent_turn"])
        prev = catalog.one(con, "previous_execution", {"name": run_name, "execution_id": execution_id})
        if prev is None:
            return out
        out.baseline_execution_id, out.baseline_started_at = prev["execution_id"], prev["started_at"].isoformat()
        metrics = {eid: catalog.one(con, "get_execution_metrics", {"execution_id": eid})
                   for eid in (prev["execution_id"], execution_id)}
        out.kind, out.kpis = "kpi", kpi_deltas(metrics[prev["execution_id"]], metrics[execution_id])
        if prev["scenario_id"] == catalog.one(con, "get_execution", {"execution_id": execution_id})["scenario_id"]:
            cmp = between(con, prev["execution_id"], execution_id)
            out.kind, out.significant_regressions, out.flaky_rows = ("paired", cmp["significant_regressions"],
                                                                      cmp["flaky_rows"])
            out.paired = [MetricDelta(metric=m["metric"], baseline=m["a"], tonight=m["b"], delta=m["b"] - m["a"],
                                      change=change(m["a"], m["b"], m["metric"] in LOWER_IS_BETTER),
                                      significant=bool(m.get("significant"))) for m in cmp["metrics"]]
    return out


__all__ = ["compare_with_previous", "kpi_deltas"]
