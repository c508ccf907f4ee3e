"""One execution as ``replay runs show`` tells it: what it is, where it stands, its KPIs (as
every surface formats them: :func:`tasks.evaluate.metrics.described` / ``format_value``), why
its chats failed, and the next command to run."""

from __future__ import annotations

from typing import Any

from tasks.compare.history import column_specs
from tasks.evaluate.metrics import described, format_value
from tasks.simulate.executor import RunError
from tasks.simulate.runs import execution_errors, execution_rows
from tasks.store import catalog


def baseline_for(con, lake_dir, ex: dict[str, Any]) -> str | None:
    """The execution to compare ``ex`` with: the latest other scored execution of its scenario
    that started before it (else the latest after it); None when it has none."""
    scored = {r["execution_id"] for r in catalog.rows(con, "scored_executions")}
    others = [r for r in execution_rows(con, lake_dir, scenario_id=ex["scenario_id"])
              if r["execution_id"] != ex["execution_id"] and r["execution_id"] in scored]
    before = [r for r in others if r["started_at"] <= ex["started_at"]]
    return (before or others)[0]["execution_id"] if (before or others) else None


def next_steps(ex: dict[str, Any], scored: bool, baseline: str | None) -> list[str]:
    """What to run next on an execution, most useful first."""
    eid = ex["execution_id"]
    if ex["status"] == "running":
        return [f"replay runs show {eid}   (again, to follow it)"]
    if ex["status"] == "interrupted":  # the resume scores it
        return [f"replay runs resume {eid}"]
    if not scored:
        return [f"replay evaluate {eid}"]
    steps = []
    steps.append(f"replay compare {eid}   (against production)")
    if baseline:
        steps.append(f"replay compare {eid} {baseline}   (against {baseline}, same scenario)")
    steps.append(f"replay report {eid} " + (f"--baseline {baseline} " if baseline else "") + f"--out {eid}.html")
    return steps


def execution_overview(con, lake_dir, execution_id: str, max_errors: int = 5) -> dict[str, Any]:
    """``{execution, kpis: [{metric, label, value, text}], errors: [{reason, count,
    example_chat_id}], baseline, next: [command, ...]}`` of one execution."""
    found = execution_rows(con, lake_dir, execution_id=execution_id)
    if not found:
        raise RunError(f"no execution {execution_id}; list them with `replay runs list`")
    ex = found[0]
    row = catalog.one(con, "get_execution_metrics", {"execution_id": execution_id})
    kpis = []
    if row is not None:
        for spec, value in described({k: v for k, v in row.items() if k not in ("execution_id", "evaluated_at")},
                                     column_specs(con)):
            kpis.append({"metric": spec.metric_column, "label": spec.label or spec.name, "value": value,
                         "text": format_value(spec, value)})
    baseline = baseline_for(con, lake_dir, ex) if row is not None else None
    return {"execution": ex, "scored": row is not None, "evaluated_at": row and row.get("evaluated_at"), "kpis": kpis,
            "errors": execution_errors(con, execution_id, max_errors), "baseline": baseline,
            "next": next_steps(ex, row is not None, baseline)}


__all__ = ["baseline_for", "execution_overview", "next_steps"]
