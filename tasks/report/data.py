"""Load what the HTML report of an execution shows (tasks.report.render.ReportData) from the catalog.

Every number comes from compare (:func:`tasks.compare.between`, its per-conversation values
:func:`tasks.compare.executions.execution_metrics_of`, :func:`tasks.compare.verdict_lines`,
:func:`tasks.compare.regression_gate`, :func:`tasks.compare.repeatability`) or from
``execution_metrics``: the report computes none of its own.
"""

from __future__ import annotations

from typing import Any

from tasks.evaluate.metrics import DIGITS
from tasks.store import catalog


def _metrics(con, execution_id: str) -> dict[str, Any]:
    row = catalog.one(con, "get_execution_metrics", {"execution_id": execution_id})
    if row is None:
        raise catalog.CatalogError(f"execution {execution_id} has no metrics yet: replay evaluate {execution_id}")
    return {k: v for k, v in row.items() if k not in ("execution_id", "evaluated_at")}


def _side(con, execution_id: str) -> tuple[dict[str, Any], list[dict], list[dict], dict[int, Any]]:
    """(execution, chats, turns, scenario rows by index) of one execution."""
    from tasks.evaluate.stage import load_execution_data

    ex, chats, turns_by_chat, rows_by_index = load_execution_data(con, execution_id)
    turns = [t for c in chats for t in turns_by_chat.get(c["chat_id"], [])]
    return ex, chats, turns, rows_by_index


def _production(rows_by_index: dict[int, Any]) -> dict[int, dict[str, Any]]:
    """Each scenario row: the production conversation it replays (its turns) and who is in it."""
    return {i: {"origin_id": r.origin_id, "persona_name": r.persona.name, "branch_category": r.branch_category,
                "turns": [{"turn_index": n, "user_message": t.user_message, "assistant_message": t.assistant_message,
                           "tool_calls": [c.model_dump(mode="json") for c in t.tool_calls]}
                          for n, t in enumerate(r.expected_turns)]}
            for i, r in rows_by_index.items()}


def _units(metrics_b: dict[str, Any], metrics_a: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Per metric, per production conversation: its chats' values on each side and the unit's
    value (the numbers compare tests), and B - A as ``compare.unit_changes`` computes it."""
    out = []
    for name, mb in metrics_b.items():
        ma = (metrics_a or {}).get(name)
        units = {}
        for origin in sorted(set(mb.units) | set(ma.units if ma else ())):
            ub, ua = mb.units.get(origin), ma.units.get(origin) if ma else None
            b, a = (ub.value if ub else None), (ua.value if ua else None)
            units[origin] = {
                "rows": sorted(set(ub.rows if ub else ()) | set(ua.rows if ua else ())),
                "b": None if b is None else round(b, DIGITS), "b_values": list(ub.values) if ub else [],
                "a": None if a is None else round(a, DIGITS), "a_values": list(ua.values) if ua else [],
                "delta": None if a is None or b is None else round(b - a, DIGITS)}
        out.append({"metric": name, "spec": mb.spec.model_dump(), "units": units})
    return out


def _execution(con, ex: dict[str, Any]) -> dict[str, Any]:
    from tasks import scenario

    try:
        sc, _rows_, _agent = scenario.get_scenario(con, ex["scenario_id"])
        scenario_name = sc["scenario_name"]
    except scenario.ScenarioError:
        scenario_name = None
    return {"execution_id": ex["execution_id"], "run_test_id": ex["run_test_id"], "name": ex["name"],
            "scenario_id": ex["scenario_id"], "scenario_name": scenario_name, "agent_ref": ex["agent_ref"],
            "mode": ex["mode"], "tool_mode": ex["tool_mode"], "status": ex["status"],
            "started_at": ex["started_at"], "ended_at": ex["ended_at"]}


def _baseline(con, baseline_id: str, execution_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The baseline's part of the data, and its metrics by name (for the per-conversation values)."""
    from tasks import compare, simulate
    from tasks.compare.executions import execution_metrics_of

    simulate.load_execution(con, baseline_id)  # a one-line error when it does not exist
    cmp = compare.between(con, baseline_id, execution_id)
    ex, chats, turns, _rows = _side(con, baseline_id)
    metrics_a, _ = execution_metrics_of(con, baseline_id)
    part = {
        "execution_id": baseline_id, "name": ex["name"], "agent_ref": ex["agent_ref"],
        "metrics": _metrics(con, baseline_id),
        "deltas": [{"metric": m.metric, "column": cmp.specs[m.metric].metric_column, "label": m.label,
                    "a": m.a, "b": m.b, "delta": m.delta, "lo": m.ci[0] if m.ci else None,
                    "hi": m.ci[1] if m.ci else None, "significant": m.significant, "direction": m.direction,
                    "n_units": m.n_units, "n_rows": m.n_rows, "note": m.note, "min_effect": m.min_effect}
                   for m in cmp.metrics],
        "verdicts": compare.verdict_lines(cmp),
        "gate": compare.regression_gate(cmp),
        "changes": {m.metric: [u.model_dump(mode="json") for u in m.rows] for m in cmp.metrics},
        "row_regressions": [{"metric": m.metric, "label": m.label,
                             "rows": sorted(r for u in m.rows if u.change == "regression" and u.significant
                                            for r in u.rows)}
                            for m in cmp.metrics if any(u.change == "regression" and u.significant for u in m.rows)],
        "chats": chats, "turns": turns,
        "scores": catalog.rows(con, "execution_scores", {"execution_id": baseline_id})}
    return part, metrics_a


def load(con, execution_id: str, baseline_id: str | None = None) -> dict[str, Any]:
    from tasks import compare
    from tasks.compare.executions import execution_metrics_of
    from tasks.compare.history import column_specs

    ex, chats, turns, rows_by_index = _side(con, execution_id)
    for c in chats:
        row = rows_by_index.get(c["row_index"])
        c["branch_category"] = row.branch_category if row else None
        c["persona_name"] = row.persona.name if row else None
    specs = column_specs(con)
    metrics_b, _ = execution_metrics_of(con, execution_id)
    data: dict[str, Any] = {"execution": _execution(con, ex), "metrics": _metrics(con, execution_id), "chats": chats,
                            "turns": turns, "scores": catalog.rows(con, "execution_scores", {"execution_id": execution_id}),
                            "baseline": None, "specs": {k: v.model_dump() for k, v in specs.items()},
                            "repeatability": compare.repeatability(con, execution_id),
                            "production": _production(rows_by_index)}
    metrics_a = None
    if baseline_id:
        data["baseline"], metrics_a = _baseline(con, baseline_id, execution_id)
    else:
        vs = compare.vs_production(con, execution_id)
        data["vs_production"] = {"diverged_chats": vs["diverged_chats"], "chats": len(vs["chats"]),
                                 "summary": vs["summary"]}
    data["units"] = _units(metrics_b, metrics_a)
    return data
