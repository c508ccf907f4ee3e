"""Compare: an execution against production, or against another execution of the same scenario.

Against production, like is compared with like: a replayed turn's latency with production's
turn latency, the agent time of a chat (the sum of its turn latencies) with production's agent
time for that conversation (not the session's wall time, which includes the user's thinking);
turns, tokens and tool calls per chat; the first divergent turn and a turn-by-turn diff.

Against another execution (A = baseline, B = candidate), metric by metric
(:mod:`tasks.evaluate.metrics` makes the numbers, the same ones ``execution_metrics`` holds):

- **The unit is the production conversation** (``origin_id``): rows that repeat a conversation
  and repetitions are averaged inside it, and the interval of B - A comes from a cluster
  bootstrap over the units both sides replayed (``n_units`` beside ``n_rows``). Cost metrics
  (latency, tokens, turns) are compared only on the conversations that every chat of both
  sides completed: a crash is not a saving.
- **Significant** = the 95 % interval excludes 0, AND ``|delta|`` is at least the metric's
  minimum meaningful effect (its spec: e.g. 5 points of a pass rate; for latency max(10 ms,
  5 % of A)), AND ``|delta|`` exceeds the noise floor when repetitions measured one (the mean
  difference between two replays of one conversation).
- **The conversations that moved** (``rows``): those whose own value changed by at least the
  minimum effect (and more than their own noise). Each is tested on its own: B's replays of it
  against A's (an exact permutation test), ``significant`` when it holds at a 5 % false
  discovery rate over the conversations (Benjamini-Hochberg). This is the claim about THESE rows ("row 6 broke"),
  and it needs repetitions (``--repeat 5``: 5 replays a side that all disagree give p = 0.008);
  the metric's own ``significant`` is the claim about conversations like these, and needs
  many conversations. A change in 2 of 12 conversations can be the first and not the second.
- **Flaky rows**: rows of conversations whose replays disagree on a quality metric.
"""

from __future__ import annotations

from collections import Counter
from statistics import mean
from typing import Any

from models.compare import ExecutionComparison, MetricComparison, UnitChange
from models.evals import EvalScore, MetricSpec
from tasks.compare.stats import cluster_bootstrap, noise_floor, permutation_test, significant_tests
from tasks.evaluate.metrics import DIGITS, Metric, is_chat_metric, rounded
from tasks.store import catalog


def _avg(xs: list[float | None]) -> float | None:
    xs = [x for x in xs if x is not None]
    return mean(xs) if xs else None


def vs_production(con, execution_id: str, reasons: bool = True) -> dict[str, Any]:
    """Each chat against the production conversation it replays; with ``reasons``, the diverged
    chats with their first divergent turn and why (``diverged``: one a chat; ``diverged_rows``:
    grouped by row, turn and why — :mod:`tasks.compare.chats`)."""
    from tasks.compare.chats import diverged_rows, divergence_of
    from tasks.evaluate.stage import load_execution_data

    ex, chats, turns_by_chat, rows_by_index = load_execution_data(con, execution_id)
    out, diverged = [], []
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
        d = c["divergence_turn"]
        divergence = (divergence_of(turns[d], prod[d] if d < len(prod) else None, ex.options)
                      if reasons and d is not None and d < len(turns) else None)
        if divergence is not None:
            diverged.append({"chat_id": c["chat_id"], "row_index": c["row_index"], "repetition": c["repetition"],
                             "origin_id": c["origin_id"], **divergence})
        out.append({"chat_id": c["chat_id"], "row_index": c["row_index"], "repetition": c["repetition"],
                    "origin_id": c["origin_id"], "status": c["status"], "divergence_turn": c["divergence_turn"],
                    "divergence": divergence,
                    "metrics": {k: {"production": a, "replay": b, "delta": delta(a, b)} for k, (a, b) in metrics.items()},
                    "turns": diff})
    summary = {k: {"production": _avg([o["metrics"][k]["production"] for o in out]),
                   "replay": _avg([o["metrics"][k]["replay"] for o in out])}
               for k in ("turn_latency_ms", "agent_time_ms", "turn_count", "input_tokens", "output_tokens", "tool_calls")}
    for v in summary.values():
        v["delta"] = None if v["production"] is None or v["replay"] is None else v["replay"] - v["production"]
    turns_at = [o["divergence_turn"] for o in out if o["divergence_turn"] is not None]
    return {"execution_id": execution_id, "against": "production", "chats": out, "summary": summary,
            "diverged_chats": len(turns_at), "first_divergent_turn": min(turns_at) if turns_at else None,
            "diverged": diverged, "diverged_rows": diverged_rows(diverged, Counter(c["row_index"] for c in chats))}


def execution_metrics_of(con, execution_id: str, specs: dict[str, MetricSpec] | None = None
                         ) -> tuple[dict[str, Metric], dict[str, MetricSpec]]:
    """The metrics of an execution (tasks.evaluate.metrics), from its chats and scores in the
    catalog, with the specs its evaluators left there."""
    from tasks.evaluate.metrics import metrics
    from tasks.evaluate.stage import load_specs

    chats = catalog.rows(con, "execution_chats", {"execution_id": execution_id})
    scores = [EvalScore(execution_id=execution_id, **s)
              for s in catalog.rows(con, "execution_scores", {"execution_id": execution_id})]
    specs = specs if specs is not None else load_specs(con, sorted({s.evaluator for s in scores}))
    return metrics(chats, scores, specs.values()), specs


def between(con, a_id: str, b_id: str) -> ExecutionComparison:
    """Execution B (the candidate) against execution A (the baseline) of the same scenario:
    each metric on the production conversations both replayed (module doc)."""
    from tasks import simulate

    a, b = simulate.load_execution(con, a_id), simulate.load_execution(con, b_id)
    if a.scenario_id != b.scenario_id:
        raise simulate.RunError(f"{a_id} and {b_id} ran different scenarios ({a.scenario_id} vs "
                                f"{b.scenario_id}); compare executions of one scenario")
    ma, specs_a = execution_metrics_of(con, a_id)
    mb, specs_b = execution_metrics_of(con, b_id, {**specs_a, **load_specs_for(con, specs_a, b_id)})
    names = [n for n in ma if n in mb]
    results = [compare_metric(ma[n], mb[n]) for n in sorted(names, key=lambda n: (ma[n].spec.rank, n))]
    flaky = sorted({r for n in names if ma[n].spec.kind == "quality" for m in (ma[n], mb[n])
                    for r in flaky_units(m)})
    return ExecutionComparison(
        execution_id=b_id, baseline=a_id, metrics=results,
        significant_regressions=[m.metric for m in results if m.significant and m.direction == "regression"],
        significant_improvements=[m.metric for m in results if m.significant and m.direction == "improvement"],
        regressed_units={m.metric: [u.origin_id for u in m.rows if u.change == "regression" and u.significant]
                         for m in results if any(u.change == "regression" and u.significant for u in m.rows)},
        flaky_rows=flaky, specs={n: ma[n].spec for n in names})


def load_specs_for(con, known: dict[str, MetricSpec], execution_id: str) -> dict[str, MetricSpec]:
    """The specs of the evaluators of ``execution_id`` that ``known`` lacks."""
    from tasks.evaluate.stage import load_specs

    names = {r["evaluator"] for r in catalog.rows(con, "execution_scores", {"execution_id": execution_id})}
    return load_specs(con, sorted(names - set(known)))


def compare_metric(ma: Metric, mb: Metric, n: int = 2000, seed: int = 0) -> MetricComparison:
    """B against A on one metric (module doc): units both sides can compare, the cluster
    bootstrap, practical significance, the units that moved."""
    spec = ma.spec
    units = sorted(set(ma.comparable()) & set(mb.comparable()))
    a, b = rounded(ma.statistic(units)), rounded(mb.statistic(units))
    na, da = _num_den(ma, units)
    nb, db = _num_den(mb, units)
    boot = cluster_bootstrap(na, da, nb, db, n=n, seed=seed)
    delta = None if a is None or b is None else round(b - a, DIGITS)
    noise = _noise_floor([ma, mb], units)
    floor = spec.effect_floor(a)
    lo, hi = boot["lo"], boot["hi"]
    significant = bool(delta is not None and lo is not None and (lo > 0 or hi < 0) and abs(delta) >= floor
                       and (noise is None or abs(delta) > noise))
    direction = "same" if not significant else ("improvement" if (delta > 0) == spec.higher_is_better
                                               else "regression")
    every = set(ma.units) & set(mb.units)
    note = (f"on the {len(units)} of {len(every)} production conversations both sides completed"
            if spec.kind == "cost" and len(units) < len(every) else None)
    return MetricComparison(
        metric=spec.name, label=spec.label or spec.name, unit=spec.unit, higher_is_better=spec.higher_is_better,
        a=a, b=b, delta=delta, ci=None if lo is None else (round(lo, DIGITS), round(hi, DIGITS)),
        p_value=None if boot["p_value_two_sided"] is None else round(boot["p_value_two_sided"], DIGITS),
        significant=significant, direction=direction, min_effect=round(floor, DIGITS),
        noise_floor=None if noise is None else round(noise, DIGITS), n_units=len(units),
        n_rows=len({r for o in units for r in ma.units[o].rows}), note=note,
        pass_k=None if ma.pass_k is None and mb.pass_k is None else (ma.pass_k, mb.pass_k),
        rows=unit_changes(ma, mb, units))


def _num_den(m: Metric, units: list[str]) -> tuple[list[float], list[float]]:
    """Each unit's numerator and denominator of the metric's statistic (metrics.Metric)."""
    if is_chat_metric(m.spec):  # a share of chats: pooled
        return [sum(m.units[o].values) for o in units], [len(m.units[o].values) for o in units]
    return [m.units[o].value for o in units], [1.0] * len(units)


def _noise_floor(ms: list[Metric], units: list[str]) -> float | None:
    """How much two replays of one conversation differ: the mean absolute difference between
    the chats of a unit, over the units (of both sides) replayed at least twice."""
    return noise_floor({(i, o): list(m.units[o].values) for i, m in enumerate(ms) for o in units})


def unit_changes(ma: Metric, mb: Metric, units: list[str], seed: int = 0) -> list[UnitChange]:
    """The units whose value moved by at least the metric's minimum effect (and more than their
    own noise when they were replayed more than once), worst first; each with its permutation
    test, significant at a 5 % false discovery rate over the units (module doc)."""
    spec = ma.spec
    tests = {o: permutation_test(ma.units[o].values, mb.units[o].values, seed=seed) for o in units}
    held = significant_tests(tests)
    out = []
    for o in units:
        ua, ub = ma.units[o], mb.units[o]
        d = ub.value - ua.value
        # more than either side's own noise: one slow replay of five is not a change
        own_noise = max(noise_floor({0: list(ua.values)}) or 0.0, noise_floor({0: list(ub.values)}) or 0.0)
        if abs(d) < max(spec.effect_floor(ua.value), 1e-9) or abs(d) <= own_noise:
            continue
        out.append(UnitChange(origin_id=o, rows=sorted(set(ua.rows) | set(ub.rows)), a=round(ua.value, DIGITS),
                              b=round(ub.value, DIGITS), delta=round(d, DIGITS),
                              change="regression" if (d < 0) == spec.higher_is_better else "improvement",
                              p_value=round(tests[o][0], DIGITS), significant=o in held,
                              replays=(len(ua.values), len(ub.values))))
    return sorted(out, key=lambda u: (u.change != "regression", not u.significant, -abs(u.delta), u.origin_id))


ROW_REPEATS = 5  # replays a side a conversation needs before a change of it can be significant


def verdict_lines(cmp: ExecutionComparison) -> list[str]:
    """What the comparison says, in words (``replay compare``, the demo): the metrics that
    changed significantly, then per metric the rows that moved and whether that is significant."""
    from tasks.evaluate.metrics import format_value

    changed = [f"{m.label} {m.direction} ({format_value(cmp.specs[m.metric], m.delta, sign=True)})"
               for m in cmp.metrics if m.significant]
    n_units = max((m.n_units for m in cmp.metrics), default=0)
    lines = [f"over {n_units} production conversations: " + ("; ".join(changed) or "no metric changed significantly")]
    for m in cmp.metrics:
        parts = []
        for change, verb in (("regression", "worse"), ("improvement", "better")):
            moved = [u for u in m.rows if u.change == change]
            if not moved:
                continue
            sig = sorted(r for u in moved if u.significant for r in u.rows)
            rows = ", ".join(map(str, sorted(r for u in moved for r in u.rows)))
            if len(sig) == sum(len(u.rows) for u in moved):
                why = "significant"
            elif sig:
                why = f"significant on rows {', '.join(map(str, sig))}"
            elif min(min(u.replays) for u in moved) < ROW_REPEATS:
                why = f"not significant: too few replays, use --repeat {ROW_REPEATS}"
            else:
                why = "not significant"
            parts.append(f"{verb} on rows {rows} ({why})")
        if parts:
            lines.append(f"{m.label}: " + "; ".join(parts))
    if cmp.flaky_rows:
        lines.append(f"flaky rows (their replays disagree): {', '.join(map(str, cmp.flaky_rows))}")
    return lines


def regression_gate(cmp: ExecutionComparison) -> list[str]:
    """The CI gate of ``replay compare B A --fail-on-regression``: what makes it fail (a metric
    that regressed significantly, or a metric on the conversations that regressed significantly
    on their own), in words; empty = the gate passes."""
    return [*cmp.significant_regressions,
            *(f"{m} on {len(u)} conversation{'s' if len(u) > 1 else ''}" for m, u in cmp.regressed_units.items())]


def repeatability(con, execution_id: str) -> dict[str, Any] | None:
    """With repetitions: how many replays a conversation had (``k``, the most), pass^k per
    pass-rate metric (``[label, value text]``, in rank order) and the flaky rows (their replays
    disagree on a quality metric). None when nothing was replayed twice."""
    from tasks.evaluate.metrics import format_value

    ms, _ = execution_metrics_of(con, execution_id)
    k = max((len(u.values) for m in ms.values() for u in m.units.values()), default=0)
    if k < 2:
        return None
    ranked = sorted(ms.values(), key=lambda m: (m.spec.rank, m.spec.name))
    return {"k": k, "pass_k": [[m.spec.label or m.spec.name, format_value(m.spec, m.pass_k)]
                               for m in ranked if m.pass_k is not None],
            "flaky_rows": sorted({r for m in ranked if m.spec.kind == "quality" for r in flaky_units(m)})}


def flaky_units(m: Metric) -> list[int]:
    """Rows of the units whose replays disagree by at least the metric's minimum effect."""
    return [r for u in m.units.values() if len(u.values) >= 2
            and max(u.values) - min(u.values) >= max(m.spec.effect_floor(u.value), 1e-9) for r in u.rows]
