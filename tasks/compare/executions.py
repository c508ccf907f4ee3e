"""Compare: an execution against production, or against another execution of the same scenario.

Against production, like is compared with like: a replayed turn's latency with production's
turn latency, the agent time of a chat (the sum of its turn latencies) with production's agent
time for that conversation (not the session's wall time, which includes the user's thinking);
turns, tokens and tool calls per chat; the first divergent turn and a turn-by-turn diff.

Against another execution (A = baseline, B = candidate): per scenario row, every score and
metric is averaged over repetitions; B - A is tested with a paired bootstrap (``tasks.stats``);
with repetitions, the A/A noise floor of each metric is measured from them and rows whose
repetitions disagree are flagged flaky. A metric regresses significantly when its confidence
interval excludes 0 in the bad direction and the drop exceeds the noise floor.
"""

from __future__ import annotations

from collections import defaultdict
from statistics import mean
from typing import Any

from tasks.store import catalog

# direction of "better" for metrics that are not scores (scores: higher is better)
LOWER_IS_BETTER = {"latency", "avg_latency_ms", "input_tokens", "output_tokens", "turn_count", "failed"}
# measurements that vary run to run by nature: compared, never called flaky
MEASUREMENTS = {"latency", "input_tokens", "output_tokens", "turn_count"}


def _avg(xs: list[float | None]) -> float | None:
    xs = [x for x in xs if x is not None]
    return mean(xs) if xs else None


def vs_production(con, execution_id: str) -> dict[str, Any]:
    """Each chat against the production conversation it replays."""
    from tasks.evaluate.stage import load_execution_data

    ex, chats, turns_by_chat, rows_by_index = load_execution_data(con, execution_id)
    out = []
    for c in chats:
        row = rows_by_index.get(c["row_index"])
        turns = turns_by_chat.get(c["chat_id"], [])
        prod = row.expected_turns if row else []
        prod_lat = [t.latency_ms for t in prod if t.latency_ms is not None]
        rep_lat = [t["latency_ms"] for t in turns if t["latency_ms"] is not None]
        prod_tools = sum(len(t.tool_calls) for t in prod)
        rep_tools = sum(len(t["tool_calls"]) for t in turns)
        diff = []
        for i in range(max(len(turns), len(prod))):
            t = turns[i] if i < len(turns) else None
            p = prod[i] if i < len(prod) else None
            diff.append({
                "turn_index": i,
                "user_message": t["user_message"] if t else (p.user_message if p else None),
                "replayed": t["assistant_message"] if t else None,
                "production": p.assistant_message if p else None,
                "similarity": t["similarity"] if t else None,
                "replayed_tools": [x["name"] for x in t["tool_calls"]] if t else [],
                "production_tools": [x.name for x in p.tool_calls] if p else [],
            })

        def delta(a, b):
            return None if a is None or b is None else b - a

        metrics = {
            "turn_latency_ms": (_avg(prod_lat), _avg(rep_lat)),
            "agent_time_ms": (sum(prod_lat) if prod_lat else None, sum(rep_lat) if rep_lat else None),
            "turn_count": (len(prod), len(turns)),
            "input_tokens": (sum(t.input_tokens for t in prod), c["input_tokens"]),
            "output_tokens": (sum(t.output_tokens for t in prod), c["output_tokens"]),
            "tool_calls": (prod_tools, rep_tools),
        }
        out.append({"chat_id": c["chat_id"], "row_index": c["row_index"], "repetition": c["repetition"],
                    "origin_id": c["origin_id"], "status": c["status"], "divergence_turn": c["divergence_turn"],
                    "metrics": {k: {"production": a, "replay": b, "delta": delta(a, b)} for k, (a, b) in metrics.items()},
                    "turns": diff})
    summary = {k: {"production": _avg([o["metrics"][k]["production"] for o in out]),
                   "replay": _avg([o["metrics"][k]["replay"] for o in out])}
               for k in ("turn_latency_ms", "agent_time_ms", "turn_count", "input_tokens", "output_tokens", "tool_calls")}
    for v in summary.values():
        v["delta"] = None if v["production"] is None or v["replay"] is None else v["replay"] - v["production"]
    diverged = [o["divergence_turn"] for o in out if o["divergence_turn"] is not None]
    return {"execution_id": execution_id, "against": "production", "chats": out, "summary": summary,
            "diverged_chats": len(diverged), "first_divergent_turn": min(diverged) if diverged else None}


def per_row_values(con, execution_id: str) -> dict[str, dict[int, list[float]]]:
    """{metric: {row_index: [value per repetition]}}: every evaluator on the scale of its
    ``avg_<evaluator>`` metric (tasks.metrics.row_values), plus ``failed`` (1 per failed chat)."""
    from models.evals import EvalScore
    from tasks.evaluate.metrics import row_values

    chats = catalog.rows(con, "execution_chats", {"execution_id": execution_id})
    scores = [EvalScore(execution_id=execution_id, **s)
              for s in catalog.rows(con, "execution_scores", {"execution_id": execution_id})]
    out = {ev: row_values(chats, scores, ev) for ev in sorted({s.evaluator for s in scores})}
    failed: dict[int, list[float]] = defaultdict(list)
    for c in sorted(chats, key=lambda c: (c["row_index"], c["repetition"])):
        failed[c["row_index"]].append(1.0 if c["status"] == "failed" else 0.0)
    out["failed"] = dict(failed)
    return {k: v for k, v in out.items() if v}


def between(con, a_id: str, b_id: str) -> dict[str, Any]:
    """Execution B against execution A (the baseline) on the same scenario."""
    from tasks import simulate
    from tasks.compare import stats

    a, b = simulate.load_execution(con, a_id), simulate.load_execution(con, b_id)
    if a["scenario_id"] != b["scenario_id"]:
        raise simulate.RunError(f"{a_id} and {b_id} ran different scenarios ({a['scenario_id']} vs "
                                f"{b['scenario_id']}); compare executions of one scenario")
    va, vb = per_row_values(con, a_id), per_row_values(con, b_id)
    metrics = []
    flaky: set[int] = set()
    for m in sorted(set(va) & set(vb)):
        rows = sorted(set(va[m]) & set(vb[m]))
        if not rows:
            continue
        higher = m not in LOWER_IS_BETTER
        a_rows, b_rows = {r: va[m][r] for r in rows}, {r: vb[m][r] for r in rows}
        res = stats.compare_metric(a_rows, b_rows, higher_is_better=higher)
        spread = 1.0 if m == "csat" else 0.1  # csat is 1..10, scores 0..100 or 0..1
        for reps in (a_rows, b_rows) if m not in MEASUREMENTS else ():
            flaky |= set(stats.flaky_rows({r: v for r, v in reps.items() if len(v) > 1}, spread))
        per_row = []
        for r in rows:
            d = mean(b_rows[r]) - mean(a_rows[r])
            if abs(d) > 1e-12:
                worse = d < 0 if higher else d > 0
                per_row.append({"row_index": r, "a": mean(a_rows[r]), "b": mean(b_rows[r]), "delta": d,
                                "change": "regression" if worse else "improvement"})
        metrics.append({"metric": m, "a": mean(mean(v) for v in a_rows.values()),
                        "b": mean(mean(v) for v in b_rows.values()), **res, "rows": per_row})
    regressions = [m["metric"] for m in metrics if m.get("significant") and m.get("direction") == "regression"]
    return {"execution_id": b_id, "baseline": a_id, "against": "execution", "metrics": metrics,
            "significant_regressions": regressions, "flaky_rows": sorted(flaky)}
