"""The nightly run's summary as markdown (its Prefect artifact): what was pulled, selected
and run, each execution's KPIs against the previous night, the comparison, the reports."""

from __future__ import annotations

from typing import Any

from models.nightly import NightlyParams, NightlyResult, NightlyRun


def _fmt(v: Any) -> str:
    return "" if v is None else (f"{v:,.2f}" if isinstance(v, float) else str(v))


def _metric_tables(run: NightlyRun) -> list[str]:
    """Tonight's metrics against the previous night (the same numbers and rounding as every
    other surface), and the paired comparison when both ran the same scenario."""
    from tasks.evaluate.metrics import builtin_specs, described, format_value

    c = run.comparison
    specs = builtin_specs()
    deltas = {m.metric: m for m in c.kpis}
    lines = ["", "| metric | tonight | previous night | delta | change |", "|---|---:|---:|---:|---|"]
    for spec, value in described(run.metrics, specs):
        m = deltas.get(spec.metric_column)
        lines.append(f"| {spec.label or spec.name} (`{spec.metric_column}`) | {format_value(spec, value)} | "
                     f"{format_value(spec, m.baseline) if m else ''} | "
                     f"{format_value(spec, m.delta, sign=True) if m and m.delta is not None else ''} | "
                     f"{m.change if m else ''} |")
    if c.paired:
        by_name = {s.name: s for s in specs.values()}
        lines += ["", "| metric (paired by production conversation) | previous night | tonight | delta | significant |",
                  "|---|---:|---:|---:|---|"]
        for m in c.paired:
            spec = by_name.get(m.metric) or next((s for s, _ in described({"avg_" + m.metric: None})), None)
            lines.append(f"| {spec.label or m.metric} | {format_value(spec, m.baseline)} | "
                         f"{format_value(spec, m.tonight)} | {format_value(spec, m.delta, sign=True)} | "
                         f"{'yes' if m.significant else 'no'} |")
    return lines


def nightly_markdown(result: NightlyResult, params: NightlyParams) -> str:
    """The run's markdown artifact: what was pulled, selected, run; KPIs; the comparison; reports."""
    lines = [f"# Nightly replay: {result.project}, {result.night}", ""]
    if result.ingest:
        i = result.ingest
        lines.append(f"**Source** ({result.source}): read {i['read']}, ingested {i['ingested']}, duplicates "
                     f"{i['duplicates']}, rejected {i['rejected']}; {i['sessions']} sessions in the lake.")
    else:
        lines.append("**Source**: none configured; replaying what the lake already has.")
    lines.append("")
    if result.skipped:
        lines.append(f"**Selection**: {result.skipped}")
    else:
        lines.append(f"**Selection**: {result.selected_sessions} sessions matched `{params.select_where}` "
                     f"(replay `{result.replay_id}`).")
    for run in result.runs:
        c = run.comparison
        lines += ["", f"## {run.kind}: {run.run_name}", "",
                  (f"Execution `{run.execution_id}` of scenario `{run.scenario_id}` against `{params.agent}`: "
                   f"**{run.status}**, {run.completed_chats}/{run.total_chats} chats completed, "
                   f"{run.failed_chats} failed."),
                  "", f"Report: `{run.report_path}`", ""]
        if c.baseline_execution_id is None:
            lines.append("Previous night: none (the first night of this run test).")
        else:
            how = ("same scenario: paired bootstrap, 95% CIs" if c.kind == "paired"
                   else "another scenario: its KPIs are shown beside tonight's, not compared")
            lines.append(f"Previous night: `{c.baseline_execution_id}` (started {c.baseline_started_at} UTC; {how}).")
            if c.significant_regressions:
                lines.append(f"**Significant regressions**: {', '.join(c.significant_regressions)}.")
        lines.append(f"Against production: {c.diverged_chats} chats diverged"
                     + (f" (first at turn {c.first_divergent_turn})." if c.first_divergent_turn is not None else "."))
        lines += _metric_tables(run)
    if not result.runs:
        lines += ["", "Nothing was run tonight."]
    return "\n".join(lines) + "\n"


__all__ = ["nightly_markdown"]
