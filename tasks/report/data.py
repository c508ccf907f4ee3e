"""Load what the HTML report of an execution shows (tasks.report.ReportData) from the catalog."""

from __future__ import annotations

from typing import Any

from tasks.store import catalog


def _metrics(con, execution_id: str) -> dict[str, Any]:
    row = catalog.one(con, "get_execution_metrics", {"execution_id": execution_id})
    if row is None:
        raise catalog.CatalogError(f"execution {execution_id} has no metrics yet: replay evaluate {execution_id}")
    return {k: v for k, v in row.items() if k not in ("execution_id", "evaluated_at")}


def load(con, execution_id: str, baseline_id: str | None = None) -> dict[str, Any]:
    from tasks import compare, scenario, simulate
    from tasks.evaluate.stage import load_execution_data

    ex, chats, turns_by_chat, rows_by_index = load_execution_data(con, execution_id)
    try:
        sc, _rows_, _agent = scenario.get_scenario(con, ex["scenario_id"])
        scenario_name = sc["scenario_name"]
    except scenario.ScenarioError:
        scenario_name = None
    execution = {"execution_id": execution_id, "run_test_id": ex["run_test_id"], "name": ex["name"],
                 "scenario_id": ex["scenario_id"], "scenario_name": scenario_name, "agent_ref": ex["agent_ref"],
                 "mode": ex["mode"], "tool_mode": ex["tool_mode"], "status": ex["status"],
                 "started_at": ex["started_at"], "ended_at": ex["ended_at"]}
    for c in chats:
        row = rows_by_index.get(c["row_index"])
        c["branch_category"] = row.branch_category if row else None
        c["persona_name"] = row.persona.name if row else None
    turns = [t for c in chats for t in turns_by_chat.get(c["chat_id"], [])]
    scores = catalog.rows(con, "execution_scores", {"execution_id": execution_id})
    from tasks.compare.history import column_specs

    specs = column_specs(con)
    data: dict[str, Any] = {"execution": execution, "metrics": _metrics(con, execution_id), "chats": chats,
                            "turns": turns, "scores": scores, "baseline": None,
                            "specs": {k: v.model_dump() for k, v in specs.items()},
                            "repeatability": compare.repeatability(con, execution_id)}
    if baseline_id:
        simulate.load_execution(con, baseline_id)  # a one-line error when it does not exist
        cmp = compare.between(con, baseline_id, execution_id)
        data["baseline"] = {"execution_id": baseline_id, "metrics": _metrics(con, baseline_id), "deltas": [
            {"metric": m.metric, "column": cmp.specs[m.metric].metric_column, "label": m.label,
             "a": m.a, "b": m.b, "delta": m.delta, "lo": m.ci[0] if m.ci else None, "hi": m.ci[1] if m.ci else None,
             "significant": m.significant, "direction": m.direction, "n_units": m.n_units, "n_rows": m.n_rows,
             "note": m.note} for m in cmp.metrics],
            "verdicts": compare.verdict_lines(cmp),
            "row_regressions": [{"metric": m.metric, "label": m.label,
                                 "rows": sorted(r for u in m.rows if u.change == "regression" and u.significant
                                                for r in u.rows)}
                                for m in cmp.metrics if any(u.change == "regression" and u.significant for u in m.rows)]}
    return data
