"""The nightly loop, composed once: yesterday's interesting production sessions replayed
against the dev agent.

pull new spans -> sessionize -> select (an empty selection is not a failure) -> scenario -> run
-> evaluate -> compare with the previous night's execution of the same run-test name -> report
-> summary; the optional regression scenario runs every night too. Each step is a stage's one
composition, run by the runner: Prefect task runs in the ``nightly`` flow (flows/nightly.py),
in this process for ``replay nightly`` without a Prefect server.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from models.nightly import NightlyParams, NightlyResult, NightlyRun
from models.settings import Settings
from tasks.common.runner import IN_PROCESS, Runner
from tasks.compare.history import compare_with_previous
from tasks.evaluate import check_evaluators, run_and_score
from tasks.ingest import run_ingest
from tasks.report import nightly_markdown, run_report
from tasks.scenario import check_scenario, run_scenario, select_sessions
from tasks.simulate import run_async, start_run


def _print(line: str) -> None:
    print(line)  # builtins.print as it is when called (Prefect's log_prints replaces it in a flow run)


def run_nightly(settings: Settings, params: NightlyParams, runner: Runner = IN_PROCESS,
                secret_sources: dict[str, str] | None = None, say: Callable[[str], None] | None = None) -> NightlyResult:
    """One night (module doc); ``say`` gets a line per step (default ``print``, looked up when
    called: a flow with ``log_prints`` turns it into its log).
    Returns the night's manifest with its markdown summary published (``runner.publish``);
    failed executions are in it (``NightlyRun.status``), not raised: the caller decides."""
    say = say or _print
    night = datetime.now(UTC).date().isoformat()
    result = NightlyResult(project=params.project, night=night, data_dir=str(settings.data_dir),
                           source=params.source, secret_sources=secret_sources or {})
    report_dir = Path(params.report_dir) if params.report_dir else settings.home / "reports" / "nightly"
    if params.regression_scenario_id:  # an unknown id fails now, before the night's work
        runner.step(check_scenario, name="check-regression-scenario")(settings, params.regression_scenario_id)
    if params.source:
        result.ingest = run_ingest(settings, paths=params.paths, phoenix_url=params.phoenix_url,
                                   project=params.phoenix_project_name if params.phoenix_url else None,
                                   runner=runner).model_dump(mode="json")
    todo: list[tuple[str, str, str | None]] = []  # (kind, scenario_id, replay_id)
    rs = runner.step(select_sessions, name="select-sessions")(settings, params.project, params.select_where)
    if rs is None:
        result.skipped = (f"no session of {params.project} matched `{params.select_where}`: nothing new to replay"
                          + (", running the regression scenario only." if params.regression_scenario_id else "."))
        say(result.skipped)
    else:
        sc = run_scenario(settings, rs.replay_id, params.agent_definition_name, rs.suggestions["scenario_name"],
                          rows=params.rows, runner=runner)
        result.replay_id, result.selected_sessions = rs.replay_id, len(rs.ids)
        say(f"selected {len(rs.ids)} sessions -> replay {rs.replay_id}, scenario {sc.scenario_id} ({sc.rows} rows)")
        todo.append(("selection", sc.scenario_id, rs.replay_id))
    if params.regression_scenario_id:
        todo.append(("regression", params.regression_scenario_id, None))
    for kind, scenario_id, replay_id in todo:
        result.runs.append(run_one(settings, params, kind, scenario_id, replay_id, report_dir / night, runner, say))
    result.artifact_key = runner.publish(f"nightly-{params.project}", markdown=nightly_markdown(result, params),
                                         description=f"nightly replay of {params.project} on {night}")
    for run in result.runs:
        runner.publish(f"{result.artifact_key}-{run.kind}-report", link=Path(run.report_path).as_uri(),
                       link_text=f"{run.kind} report {run.execution_id}", description=f"HTML report of {run.execution_id}")
    return result


def failures(result: NightlyResult) -> str | None:
    """One line about the night's failed executions (more than ``max_failure_rate`` of their
    chats failed); None when none failed."""
    failed = [r for r in result.runs if r.status == "failed"]
    return "; ".join(f"execution {r.execution_id} ({r.kind}) failed: {r.failed_chats} of {r.total_chats} chats "
                     f"failed (see {r.report_path})" for r in failed) or None


def run_one(settings: Settings, params: NightlyParams, kind: str, scenario_id: str, replay_id: str | None,
            report_prefix: Path, runner: Runner = IN_PROCESS, say: Callable[[str], None] | None = None) -> NightlyRun:
    """One execution of the night: run, score, compare with the previous night, report."""
    say = say or _print
    name = params.run_name(kind == "regression")
    check_evaluators(settings, params.evaluators)
    execution_id = start_run(settings, scenario_id, params.agent, params.run_options(kind == "regression"), replay_id)
    info = run_async(run_and_score(settings, execution_id, runner, params.evaluators or None))
    cmp = runner.step(compare_with_previous, name="compare-with-previous-night")(settings, name, execution_id)
    report = run_report(settings, execution_id, Path(f"{report_prefix}-{kind}-{execution_id}.html"),
                        cmp.baseline_execution_id if cmp.kind == "paired" else None, runner)
    say(f"{kind}: execution {execution_id} {info.status}, {info.completed_chats}/{info.total_chats} chats; "
        f"baseline {cmp.baseline_execution_id or 'none (first night)'}; report {report}")
    return NightlyRun(kind=kind, run_name=name, scenario_id=scenario_id, replay_id=replay_id, execution_id=execution_id,
                      status=info.status, total_chats=info.total_chats, completed_chats=info.completed_chats,
                      failed_chats=info.failed_chats, metrics=info.metrics, comparison=cmp, report_path=str(report))


__all__ = ["failures", "run_nightly", "run_one"]
