"""The nightly flow: yesterday's interesting production sessions, replayed against the dev agent.

pull new spans (files, or Phoenix from its stored cursor) -> sessionize -> select (a replay
session over ``select_where``; an empty selection is not a failure) -> scenario -> run against
the dev agent (one task run per batch of chats) -> evaluate -> compare with the previous
night's execution of the same run-test name -> HTML report -> artifacts. The optional
``regression_scenario_id`` is run every night too (after the selection, or instead of it).

Composition only: every stage is a function of ``tasks/`` (the ones the stage flows and
``flows/local.py`` run). The stage flows load their settings from the environment; this flow
builds its own (secrets from Prefect Secret blocks when a block name is given), so it calls
their tasks rather than the flows themselves. Deployed by prefect.yaml (cron ``0 2 * * *`` UTC).
"""

from __future__ import annotations

import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from models.nightly import SECRET_FIELDS, Comparison, MetricDelta, NightlyParams, NightlyResult, NightlyRun
from models.settings import Settings, load_settings
from models.simulate import ExecutionInfo, RunOptions
from tasks import compare, evaluate, scenario, simulate
from tasks.ingest import extract, sessionize
from tasks.ingest.sources import phoenix
from tasks.scenario import replays
from tasks.store import catalog

# grain: the latest execution of a run-test name that started before the given one and was scored
# parameters: $name, $execution_id
PREVIOUS_EXECUTION_SQL = """
SELECT e.execution_id, r.scenario_id, e.started_at
FROM executions e JOIN run_tests r USING (run_test_id)
WHERE r.name = $name AND e.execution_id <> $execution_id
  AND e.started_at < (SELECT started_at FROM executions WHERE execution_id = $execution_id)
  AND e.execution_id IN (SELECT execution_id FROM execution_metrics)
ORDER BY e.started_at DESC
LIMIT 1
"""
# execution_metrics columns that are not KPIs to compare between two different scenarios
NOT_KPIS = {"execution_id", "evaluated_at", "total_chats", "completed_chats"}


# --------------------------------------------------------------------------- settings and secrets
def nightly_settings(params: NightlyParams) -> tuple[Settings, dict[str, str]]:
    """Settings for the night: REPLAY_* from the environment, the data dir of the params, and
    each key from its Prefect Secret block when one is named. Returns where each key came from
    (a block's name or "environment"), never a value."""
    from pydantic import SecretStr

    overrides: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for param_field, settings_field in SECRET_FIELDS.items():
        block = getattr(params, param_field)
        if block:
            from prefect.blocks.system import Secret

            overrides[settings_field] = SecretStr(str(Secret.load(block).get()))
            sources[settings_field] = f"block:{block}"
    settings = load_settings(data_dir=params.data_dir, **overrides)
    for settings_field in SECRET_FIELDS.values():
        if settings_field not in sources and getattr(settings, settings_field) is not None:
            sources[settings_field] = "environment"
    return settings, sources


# --------------------------------------------------------------------------- steps
def pull_spans(settings: Settings, params: NightlyParams) -> dict[str, Any] | None:
    """New spans into the lake (files: idempotent; Phoenix: from the stored cursor), then
    sessionize. None when the params name no source."""
    from flows.local import ingest_summary

    if params.source is None:
        return None
    t0 = time.perf_counter()
    if params.phoenix_url:
        extracts = phoenix.pull_task()(settings, params.phoenix_url, params.phoenix_project_name)
    else:
        files = [str(p) for p in extract.expand_paths(params.paths or [])]
        extracts = [extract.extract_task()(settings, files, None)]
    sess = sessionize.sessionize_task()(settings)
    with catalog.reader(settings) as con:
        return ingest_summary(con, extracts, sess, t0, "prefect").model_dump(mode="json")


def _selects_nothing(con, project: str, where: str) -> bool:
    """True when ``where`` is one valid predicate over the sessions view that keeps none of the
    project's sessions (what replays.create refuses as "nothing to replay")."""
    text = catalog.sql("session_ids_of_project").replace("{where}", where)
    try:
        statements = con.extract_statements(text)
        if len(statements) != 1 or statements[0].type.name != "SELECT":
            return False
        return not con.execute(text, {"project": project}).fetchall()
    except Exception:  # noqa: BLE001 - a predicate that does not bind: not "empty", the original error stands
        return False


@task(name="select-sessions", cache_policy=NO_CACHE)
def select_sessions(settings: Settings, project: str, where: str) -> dict[str, Any] | None:
    """A replay session (INIT) over the sessions ``where`` keeps; None when it keeps none."""
    with catalog.writer(settings) as con:
        try:
            return replays.create(con, project, "session", where=where)
        except replays.ReplaySessionError:
            if _selects_nothing(con, project, where):
                return None
            raise


def generate_scenario(settings: Settings, replay_id: str, agent_name: str, scenario_name: str, rows: int,
                      batch: int = 50) -> dict[str, Any]:
    """The scenario of a replay session; transcripts described in batched tasks (as flows/scenario.py)."""
    describe = scenario.describe_task()

    def describe_batched(transcripts):
        futures = [describe.submit(transcripts[i:i + batch], settings) for i in range(0, len(transcripts), batch)]
        return [item for f in futures for item in f.result()]

    with catalog.writer(settings) as con:
        return scenario.generate(con, settings, replay_id, agent_name=agent_name, scenario_name=scenario_name,
                                 rows=rows, describe=describe_batched)


async def _run_batched(settings: Settings, scenario_id: str, agent_ref: str, options: RunOptions,
                       replay_id: str | None) -> ExecutionInfo:
    """A run test + execution, its chats in one task run per batch (as flows/simulate.py)."""
    with catalog.writer(settings) as con:
        _rt, execution_id, _n = simulate.create_run(con, settings, scenario_id, agent_ref, options, replay_id)
        _sc, rows, agent_def = scenario.get_scenario(con, scenario_id)
    batch = simulate.batch_task()
    ran, seconds = 0, 0.0
    with simulate.execution_lock(settings.lake_dir, execution_id):
        try:
            if options.mode in ("simulate", "hybrid") and not settings.llm_base_url:
                raise simulate.RunError(f"{options.mode} mode needs a model: set REPLAY_LLM_BASE_URL and REPLAY_LLM_MODEL")
            todo = simulate.plan(execution_id, rows, options.repeat)
            t0 = time.perf_counter()
            await simulate.run_with_agent(settings, execution_id, scenario_id, agent_ref, agent_def, options, todo,
                                          batch_runner=batch)
            ran, seconds = len(todo), time.perf_counter() - t0
        finally:  # also on failure: the execution's status and counts say what happened
            with catalog.writer(settings) as con:
                info = simulate.finish(con, settings, execution_id, ran, seconds, mode="prefect")
    return info


def run_and_score(settings: Settings, params: NightlyParams, scenario_id: str, replay_id: str | None,
                  regression: bool) -> ExecutionInfo:
    """Run a scenario against the dev agent, then score it (scores, execution_metrics, artifacts)."""
    info = simulate.run_async(_run_batched(settings, scenario_id, params.agent, params.run_options(regression),
                                           replay_id))
    info.metrics = evaluate.evaluate_task()(settings, info.execution_id, params.evaluators or None)
    return info


def _lower_is_better(metric: str) -> bool:
    name = metric.removeprefix("avg_")
    return name in compare.LOWER_IS_BETTER or name == "chat_latency_ms"


def _change(a: float | None, b: float | None, lower_is_better: bool) -> str:
    """better / worse / same (within 1% of the larger value: timings jitter) / n/a."""
    if a is None or b is None:
        return "n/a"
    if abs(b - a) <= max(1e-9, 0.01 * max(abs(a), abs(b))):
        return "same"
    return "better" if (b < a) == lower_is_better else "worse"


def kpi_deltas(baseline: dict[str, Any], tonight: dict[str, Any]) -> list[MetricDelta]:
    """execution_metrics of two executions (of different scenarios): tonight - baseline per KPI."""
    out = []
    for k in sorted((set(baseline) | set(tonight)) - NOT_KPIS):
        a, b = baseline.get(k), tonight.get(k)
        delta = None if a is None or b is None else b - a
        out.append(MetricDelta(metric=k, baseline=a, tonight=b, delta=delta, change=_change(a, b, _lower_is_better(k))))
    return out


@task(name="compare-with-previous-night", cache_policy=NO_CACHE)
def compare_with_previous(settings: Settings, run_name: str, execution_id: str) -> Comparison:
    """Tonight's execution against production, and against the latest earlier execution of the same
    run-test name: paired (bootstrap CIs, noise floor, flaky rows) when it ran the same scenario,
    else KPI deltas. No baseline the first night."""
    with catalog.reader(settings) as con:
        prod = compare.vs_production(con, execution_id)
        out = Comparison(diverged_chats=prod["diverged_chats"], first_divergent_turn=prod["first_divergent_turn"])
        prev = con.execute(PREVIOUS_EXECUTION_SQL, {"name": run_name, "execution_id": execution_id}).fetchone()
        if prev is None:
            return out
        prev_id, prev_scenario, prev_started = prev
        out.baseline_execution_id, out.baseline_started_at = prev_id, prev_started.isoformat()
        metrics = {}
        for eid in (prev_id, execution_id):
            cur = con.execute(catalog.sql("get_execution_metrics"), {"execution_id": eid})
            metrics[eid] = dict(zip([d[0] for d in cur.description], cur.fetchone()))
        out.kind, out.kpis = "kpi", kpi_deltas(metrics[prev_id], metrics[execution_id])
        if prev_scenario == simulate.load_execution(con, execution_id)["scenario_id"]:
            cmp = compare.between(con, prev_id, execution_id)
            out.kind, out.significant_regressions, out.flaky_rows = "paired", cmp["significant_regressions"], cmp["flaky_rows"]
            out.paired = [MetricDelta(metric=m["metric"], baseline=m["a"], tonight=m["b"], delta=m["b"] - m["a"],
                                      change=_change(m["a"], m["b"], m["metric"] in compare.LOWER_IS_BETTER),
                                      significant=bool(m.get("significant"))) for m in cmp["metrics"]]
    return out


@task(name="report", cache_policy=NO_CACHE)
def write_report(settings: Settings, execution_id: str, out: Path, baseline: str | None) -> str:
    from flows.local import report_local

    return str(report_local(settings, execution_id, out, baseline=baseline))


def _fmt(v: Any) -> str:
    return "" if v is None else (f"{v:,.2f}" if isinstance(v, float) else str(v))


def summary_markdown(result: NightlyResult, params: NightlyParams) -> str:
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


def artifact_key(project: str) -> str:
    return "nightly-" + (re.sub(r"[^a-z0-9]+", "-", project.lower()).strip("-") or "project")


def publish(result: NightlyResult, params: NightlyParams) -> str:
    """The markdown summary (one key per project: its versions are the nights) and a link per report."""
    from prefect.artifacts import create_link_artifact, create_markdown_artifact

    key = artifact_key(result.project)
    create_markdown_artifact(key=key, markdown=summary_markdown(result, params),
                             description=f"nightly replay of {result.project} on {result.night}")
    for run in result.runs:
        if run.report_path:
            create_link_artifact(key=f"{key}-{run.kind}-report", link=Path(run.report_path).as_uri(),
                                 link_text=f"{run.kind} report {run.execution_id}",
                                 description=f"HTML report of {run.execution_id}")
    return key


# --------------------------------------------------------------------------- the flow
@flow(name="nightly", log_prints=True)
def nightly_flow(params: NightlyParams) -> dict[str, Any]:
    """Replay the night's selected production sessions (and the regression scenario) against the
    dev agent; compare with the previous night; write the report; publish a summary artifact."""
    settings, secret_sources = nightly_settings(params)
    night = datetime.now(UTC).date().isoformat()
    result = NightlyResult(project=params.project, night=night, data_dir=str(settings.data_dir),
                           source=params.source, secret_sources=secret_sources)
    report_dir = Path(params.report_dir) if params.report_dir else settings.data_dir / "reports" / "nightly"

    if params.regression_scenario_id:  # an unknown id fails now, before the night's work
        with catalog.reader(settings) as con:
            scenario.get_scenario(con, params.regression_scenario_id)
    result.ingest = pull_spans(settings, params)
    todo: list[tuple[str, str, str | None]] = []  # (kind, scenario_id, replay_id)
    rs = select_sessions(settings, params.project, params.select_where)
    if rs is None:
        result.skipped = (f"no session of {params.project} matched `{params.select_where}`: nothing new to replay"
                          + (", running the regression scenario only." if params.regression_scenario_id else "."))
        print(result.skipped)
    else:
        result.replay_id, result.selected_sessions = rs["replay_id"], len(rs["ids"])
        sc = generate_scenario(settings, rs["replay_id"], params.agent_definition_name,
                               rs["suggestions"]["scenario_name"], params.rows)
        print(f"selected {len(rs['ids'])} sessions -> replay {rs['replay_id']}, scenario {sc['scenario_id']} "
              f"({sc['rows']} rows)")
        todo.append(("selection", sc["scenario_id"], rs["replay_id"]))
    if params.regression_scenario_id:
        todo.append(("regression", params.regression_scenario_id, None))

    for kind, scenario_id, replay_id in todo:
        info = run_and_score(settings, params, scenario_id, replay_id, regression=kind == "regression")
        name = params.run_name(kind == "regression")
        cmp = compare_with_previous(settings, name, info.execution_id)
        report = write_report(settings, info.execution_id, report_dir / f"{night}-{kind}-{info.execution_id}.html",
                              cmp.baseline_execution_id if cmp.kind == "paired" else None)
        result.runs.append(NightlyRun(kind=kind, run_name=name, scenario_id=scenario_id, replay_id=replay_id,
                                      execution_id=info.execution_id, status=info.status,
                                      total_chats=info.total_chats, completed_chats=info.completed_chats,
                                      failed_chats=info.failed_chats, metrics=info.metrics, comparison=cmp,
                                      report_path=report))
        print(f"{kind}: execution {info.execution_id} {info.status}, {info.completed_chats}/{info.total_chats} "
              f"chats; baseline {cmp.baseline_execution_id or 'none (first night)'}; report {report}")

    result.artifact_key = publish(result, params)
    failed = [r for r in result.runs if r.status == "failed"]
    if failed:  # published first: the summary says what failed
        raise RuntimeError("; ".join(f"execution {r.execution_id} ({r.kind}) failed: {r.failed_chats} of "
                                     f"{r.total_chats} chats failed (see {r.report_path})" for r in failed))
    return result.model_dump(mode="json")


if __name__ == "__main__":
    # python flows/nightly.py ['{"project": ..., "agent": ..., ...}']: the given params, else the bundled sample
    from flows.local import DEMO_AGENT, DEMO_PROJECT
    from models.settings import SAMPLES_DIR

    nightly_flow(NightlyParams.model_validate_json(sys.argv[1]) if len(sys.argv) > 1 else
                 NightlyParams(paths=[str(SAMPLES_DIR / "otlp")], project=DEMO_PROJECT, agent=DEMO_AGENT,
                               select_where="error_count > 0"))
