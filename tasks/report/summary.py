"""The nightly run's summary as markdown (its Prefect artifact): what was pulled, selected
and run, each execution's KPIs against the previous night, the comparison, the reports."""

from __future__ import annotations

from typing import Any

from models.nightly import NightlyParams, NightlyResult


def _fmt(v: Any) -> str:
    return "" if v is None else (f"{v:,.2f}" if isinstance(v, float) else str(v))


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
                   else "another scenario: KPI deltas only")
            lines.append(f"Previous night: `{c.baseline_execution_id}` (started {c.baseline_started_at} UTC; {how}).")
            if c.significant_regressions:
                lines.append(f"**Significant regressions**: {', '.join(c.significant_regressions)}.")
        lines.append(f"Against production: {c.diverged_chats} chats diverged"
                     + (f" (first at turn {c.first_divergent_turn})." if c.first_divergent_turn is not None else "."))
        lines += ["", "| KPI | tonight | previous night | delta | change |", "|---|---:|---:|---:|---|"]
        deltas = {m.metric: m for m in c.kpis}
        for k, v in run.metrics.items():
            if k in ("execution_id", "evaluated_at"):
                continue
            m = deltas.get(k)
            lines.append(f"| {k} | {_fmt(v)} | {_fmt(m.baseline) if m else ''} | {_fmt(m.delta) if m else ''} | "
                         f"{m.change if m else ''} |")
        if c.paired:
            lines += ["", "| metric (paired by row) | previous night | tonight | delta | significant |",
                      "|---|---:|---:|---:|---|"]
            lines += [f"| {m.metric} | {_fmt(m.baseline)} | {_fmt(m.tonight)} | {_fmt(m.delta)} | "
                      f"{'yes' if m.significant else 'no'} |" for m in c.paired]
    if not result.runs:
        lines += ["", "Nothing was run tonight."]
    return "\n".join(lines) + "\n"


__all__ = ["nightly_markdown"]
