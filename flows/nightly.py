"""The nightly flow: yesterday's interesting production sessions, replayed against the dev agent.

pull new spans -> sessionize -> select (an empty selection is not a failure) -> scenario -> run
-> evaluate -> compare with the previous night's execution of the same run-test name -> report
-> summary artifact; the optional regression scenario runs every night too. Wiring only: each
step is a stage's one composition, run as Prefect task runs. Deployed by prefect.yaml (cron
``0 2 * * *`` UTC); ``python flows/nightly.py [PARAMS_JSON]`` runs one night (default: the sample).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow

from models.nightly import SECRET_FIELDS, NightlyParams, NightlyResult, NightlyRun
from models.settings import Settings, load_settings
from tasks.common.runner import PREFECT
from tasks.compare.history import compare_with_previous
from tasks.evaluate import check_evaluators, run_and_score
from tasks.ingest import run_ingest
from tasks.report import nightly_markdown, run_report
from tasks.scenario import check_scenario, run_scenario, select_sessions
from tasks.simulate import run_async, start_run


def nightly_settings(params: NightlyParams) -> tuple[Settings, dict[str, str]]:
    """REPLAY_* settings with the params' data dir, each key from its Prefect Secret block when
    one is named; returns where each key came from (a block's name or "environment"), never a value."""
    from prefect.blocks.system import Secret
    from pydantic import SecretStr

    blocks = {field: getattr(params, param) for param, field in SECRET_FIELDS.items() if getattr(params, param)}
    settings = load_settings(data_dir=params.data_dir,
                             **{f: SecretStr(str(Secret.load(b).get())) for f, b in blocks.items()})
    sources = {f: f"block:{b}" for f, b in blocks.items()}
    sources.update({f: "environment" for f in SECRET_FIELDS.values() if f not in sources and getattr(settings, f)})
    return settings, sources


@flow(name="nightly", log_prints=True)
def nightly_flow(params: NightlyParams) -> dict[str, Any]:
    """Replay the night's selected production sessions (and the regression scenario) against the
    dev agent; compare with the previous night; write the reports; publish a summary artifact."""
    settings, secret_sources = nightly_settings(params)
    night = datetime.now(UTC).date().isoformat()
    result = NightlyResult(project=params.project, night=night, data_dir=str(settings.data_dir),
                           source=params.source, secret_sources=secret_sources)
    report_dir = Path(params.report_dir) if params.report_dir else settings.data_dir / "reports" / "nightly"
    if params.regression_scenario_id:  # an unknown id fails now, before the night's work
        PREFECT.step(check_scenario, name="check-regression-scenario")(settings, params.regression_scenario_id)
    if params.source:
        result.ingest = run_ingest(settings, paths=params.paths, phoenix_url=params.phoenix_url,
                                   project=params.phoenix_project_name if params.phoenix_url else None,
                                   runner=PREFECT).model_dump(mode="json")
    todo: list[tuple[str, str, str | None]] = []  # (kind, scenario_id, replay_id)
    rs = PREFECT.step(select_sessions, name="select-sessions")(settings, params.project, params.select_where)
    if rs is None:
        result.skipped = (f"no session of {params.project} matched `{params.select_where}`: nothing new to replay"
                          + (", running the regression scenario only." if params.regression_scenario_id else "."))
        print(result.skipped)
    else:
        sc = run_scenario(settings, rs.replay_id, params.agent_definition_name, rs.suggestions["scenario_name"],
                          rows=params.rows, runner=PREFECT)
        result.replay_id, result.selected_sessions = rs.replay_id, len(rs.ids)
        print(f"selected {len(rs.ids)} sessions -> replay {rs.replay_id}, scenario {sc.scenario_id} ({sc.rows} rows)")
        todo.append(("selection", sc.scenario_id, rs.replay_id))
    if params.regression_scenario_id:
        todo.append(("regression", params.regression_scenario_id, None))
    for kind, scenario_id, replay_id in todo:
        result.runs.append(run_one(settings, params, kind, scenario_id, replay_id, report_dir / night))
    result.artifact_key = PREFECT.publish(f"nightly-{params.project}", markdown=nightly_markdown(result, params),
                                          description=f"nightly replay of {params.project} on {night}")
    for run in result.runs:
        PREFECT.publish(f"{result.artifact_key}-{run.kind}-report", link=Path(run.report_path).as_uri(),
                        link_text=f"{run.kind} report {run.execution_id}",
                        description=f"HTML report of {run.execution_id}")
    failed = [r for r in result.runs if r.status == "failed"]
    if failed:  # published first: the summary says what failed
        raise RuntimeError("; ".join(f"execution {r.execution_id} ({r.kind}) failed: {r.failed_chats} of "
                                     f"{r.total_chats} chats failed (see {r.report_path})" for r in failed))
    return result.model_dump(mode="json")


def run_one(settings: Settings, params: NightlyParams, kind: str, scenario_id: str, replay_id: str | None,
            report_prefix: Path) -> NightlyRun:
    """One execution of the night: run, score, compare with the previous night, report."""
    name = params.run_name(kind == "regression")
    check_evaluators(settings, params.evaluators)
    execution_id = start_run(settings, scenario_id, params.agent, params.run_options(kind == "regression"), replay_id)
    info = run_async(run_and_score(settings, execution_id, PREFECT, params.evaluators or None))
    cmp = PREFECT.step(compare_with_previous, name="compare-with-previous-night")(settings, name, execution_id)
    report = run_report(settings, execution_id, Path(f"{report_prefix}-{kind}-{execution_id}.html"),
                        cmp.baseline_execution_id if cmp.kind == "paired" else None, PREFECT)
    print(f"{kind}: execution {execution_id} {info.status}, {info.completed_chats}/{info.total_chats} chats; "
          f"baseline {cmp.baseline_execution_id or 'none (first night)'}; report {report}")
    return NightlyRun(kind=kind, run_name=name, scenario_id=scenario_id, replay_id=replay_id, execution_id=execution_id,
                      status=info.status, total_chats=info.total_chats, completed_chats=info.completed_chats,
                      failed_chats=info.failed_chats, metrics=info.metrics, comparison=cmp, report_path=str(report))


if __name__ == "__main__":
    nightly_flow(NightlyParams.model_validate_json(sys.argv[1]) if len(sys.argv) > 1 else NightlyParams.sample())
