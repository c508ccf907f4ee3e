"""The nightly flow on the session's temporary Prefect server: two nights on the bundled sample
(the second compares with the first), an empty selection (not a failure: the regression scenario
runs alone, paired with its own previous night), and secrets that never leave their block."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from models.settings import SAMPLES_DIR, load_settings

CANARY = "sk-canary-7f3a9c0e-never-in-logs"
BLOCK = "nightly-agent-key"
WHERE = "error_count > 0"  # the sample's days are fixed: "yesterday" would select nothing


def _params(data_dir, **kw):
    from models.nightly import NightlyParams

    return NightlyParams(**{"paths": [str(SAMPLES_DIR / "otlp")], "project": "support-agent",
                            "agent": "examples.support_agent:agent", "select_where": WHERE, "rows": 6,
                            "batch_size": 4, "data_dir": str(data_dir), "report_dir": str(data_dir / "reports"),
                            "agent_api_key_block": BLOCK, **kw})


_FLOW_RUNS: list = []  # deleted when the module is done (see _forget_runs)


def _run(params):
    """Run the flow; (result dict, flow run id)."""
    from flows.nightly import nightly_flow

    state = nightly_flow(params, return_state=True)
    _FLOW_RUNS.append(state.state_details.flow_run_id)
    assert state.is_completed(), state.message
    return state.result(), state.state_details.flow_run_id


def _read(coro_fn):
    from prefect.client.orchestration import get_client

    async def go():
        async with get_client() as client:
            return await coro_fn(client)

    return asyncio.run(go())


def _artifacts(flow_run_id):
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    return _read(lambda c: c.read_artifacts(artifact_filter=ArtifactFilter(
        flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))))


def _rows(settings, q):
    from tasks.store import catalog

    with catalog.reader(settings) as con:
        cols, rows = catalog.run_read_only(con, q)
    return [dict(zip(cols, r, strict=False)) for r in rows]


@pytest.fixture(scope="module", autouse=True)
def _forget_runs():
    """The server is shared by the whole session, and other flow tests count every task run on
    it: the nightly runs (and their task runs, artifacts, logs) are deleted when this module ends."""
    yield

    async def delete(client):
        for flow_run_id in _FLOW_RUNS:
            await client.delete_flow_run(flow_run_id)

    _read(delete)
    _FLOW_RUNS.clear()


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    """Night 1 and night 2 on one data dir (the same sample: re-ingesting adds nothing). Run logs
    go to the server at INFO here (tests/conftest.py sets WARNING), so that they can be searched."""
    import logging

    import prefect.main  # noqa: F401 - configures Prefect's logging (it would reset the levels set below)
    from prefect.blocks.system import Secret

    Secret(value=CANARY).save(BLOCK, overwrite=True)
    data_dir = tmp_path_factory.mktemp("nightly") / "data"
    loggers = [logging.getLogger(n) for n in ("prefect.flow_runs", "prefect.task_runs")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.INFO)
    try:
        first = _run(_params(data_dir))
        second = _run(_params(data_dir))
        from prefect.logging.handlers import APILogHandler

        asyncio.run(APILogHandler.aflush())  # the logs are on the server before they are searched
    finally:
        for lg, level in zip(loggers, levels, strict=False):
            lg.setLevel(level)
    return data_dir, first, second


def test_first_night_replays_the_selection(nights):
    data_dir, (res, run_id), _ = nights
    s = load_settings(data_dir=data_dir)
    assert res["ingest"]["ingested"] > 0 and res["ingest"]["sessions"] == 12
    assert res["selected_sessions"] == 2 and res["skipped"] is None
    assert res["secret_sources"] == {"agent_api_key": f"block:{BLOCK}"}
    [run] = res["runs"]
    assert run["kind"] == "selection" and run["run_name"] == "nightly: support-agent"
    assert run["status"] == "completed" and run["completed_chats"] == run["total_chats"] == 6
    assert run["comparison"]["baseline_execution_id"] is None and run["comparison"]["kind"] == "none"
    # the replay session, its scenario, the execution and its metrics are in the catalog
    [rs] = _rows(s, f"select * from replay_sessions where replay_id = '{res['replay_id']}'")
    assert rs["state"] == "COMPLETED" and rs["where_sql"] == WHERE and len(rs["ids"]) == 2
    [sc] = _rows(s, f"select * from scenarios where scenario_id = '{run['scenario_id']}'")
    assert sc["replay_id"] == res["replay_id"] and sc["row_count"] == 6 and sc["agent_name"] == "support-agent_agent"
    [ex] = _rows(s, "select e.*, r.name from executions e join run_tests r using (run_test_id) "
                    f"where execution_id = '{run['execution_id']}'")
    assert ex["status"] == "completed" and ex["name"] == "nightly: support-agent"
    assert ex["agent_ref"] == "examples.support_agent:agent"
    from models.nightly import DEFAULT_SELECT_WHERE  # "yesterday": a valid predicate over the sessions view

    assert _rows(s, f"select count(*) n from sessions where {DEFAULT_SELECT_WHERE}")[0]["n"] >= 0
    [m] = _rows(s, f"select * from execution_metrics where execution_id = '{run['execution_id']}'")
    assert m["completion_pct"] == 100.0 and m["avg_ground_truth_match"] is not None
    assert run["metrics"]["avg_ground_truth_match"] == m["avg_ground_truth_match"]
    # the report
    report = data_dir / "reports" / f"{res['night']}-selection-{run['execution_id']}.html"
    assert run["report_path"] == str(report) and report.stat().st_size > 10_000
    assert run["execution_id"] in report.read_text()
    # artifacts: the summary (KPIs, comparison, report path), a link to the report, the metrics
    arts = {a.key: a for a in _artifacts(run_id)}
    summary = arts["nightly-support-agent"].data
    assert run["execution_id"] in summary and str(report) in summary and "avg_ground_truth_match" in summary
    assert "none (the first night" in summary
    assert report.as_uri() in arts["nightly-support-agent-selection-report"].data
    assert f"metrics-{run['execution_id'].replace('_', '-')}" in arts


def test_second_night_compares_with_the_first(nights):
    data_dir, (first, _), (res, run_id) = nights
    s = load_settings(data_dir=data_dir)
    assert res["ingest"]["ingested"] == 0 and res["ingest"]["duplicates"] == res["ingest"]["read"]  # idempotent
    [run1], [run2] = first["runs"], res["runs"]
    assert run2["execution_id"] != run1["execution_id"] and res["replay_id"] != first["replay_id"]
    cmp = run2["comparison"]
    assert cmp["baseline_execution_id"] == run1["execution_id"]
    # each night's selection makes its own scenario: KPI deltas (paired stats need one scenario)
    assert cmp["kind"] == "kpi" and {k["metric"] for k in cmp["kpis"]} >= {"completion_pct", "avg_ground_truth_match"}
    gt = next(k for k in cmp["kpis"] if k["metric"] == "avg_ground_truth_match")
    assert gt["baseline"] == run1["metrics"]["avg_ground_truth_match"] and gt["delta"] == pytest.approx(0.0)
    summary = {a.key: a for a in _artifacts(run_id)}["nightly-support-agent"].data
    assert f"Previous night: `{run1['execution_id']}`" in summary
    # two executions of the run test name now
    assert len(_rows(s, "select * from executions join run_tests using (run_test_id) "
                        "where name = 'nightly: support-agent'")) == 2


def test_empty_selection_is_not_a_failure(nights):
    """Nothing matches: the flow logs it and runs the regression scenario alone; the next night's
    regression run (same scenario) is compared paired with it."""
    data_dir, (first, _), _ = nights
    scenario_id = first["runs"][0]["scenario_id"]
    params = _params(data_dir, paths=None, select_where="error_count > 1000", regression_scenario_id=scenario_id)
    res, _ = _run(params)
    assert res["ingest"] is None and res["selected_sessions"] == 0 and res["replay_id"] is None
    assert "nothing new to replay" in res["skipped"]
    [run] = res["runs"]
    assert run["kind"] == "regression" and run["run_name"] == f"nightly regression: {scenario_id}"
    assert run["status"] == "completed" and run["comparison"]["baseline_execution_id"] is None
    res2, _ = _run(params)
    [run2] = res2["runs"]
    cmp = run2["comparison"]
    assert cmp["baseline_execution_id"] == run["execution_id"] and cmp["kind"] == "paired"
    # the same (deterministic) agent on the same scenario: the same scores (latency is measured, it varies)
    gt = next(m for m in cmp["paired"] if m["metric"] == "ground_truth_match")
    assert gt["delta"] == pytest.approx(0.0) and not gt["significant"]
    assert "ground_truth_match" not in cmp["significant_regressions"]
    # the paired report shows the baseline
    assert run["execution_id"] in Path(run2["report_path"]).read_text()
    # without a regression scenario, an empty night completes with nothing run
    res3, run_id3 = _run(_params(data_dir, paths=None, select_where="error_count > 1000"))
    assert res3["runs"] == [] and "nothing new to replay." in res3["skipped"]
    assert "Nothing was run tonight." in {a.key: a for a in _artifacts(run_id3)}["nightly-support-agent"].data
    # an unknown regression scenario fails the night at once, in one line
    from flows.nightly import nightly_flow

    state = nightly_flow(_params(data_dir, regression_scenario_id="scn_nope"), return_state=True)
    _FLOW_RUNS.append(state.state_details.flow_run_id)
    assert state.is_failed() and "no scenario scn_nope" in state.message


def test_secrets_never_leave_their_block(nights):
    """The agent key came from its Secret block: it is not in the flow run's parameters, its
    logs, its artifacts, nor anywhere in the data dir."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    data_dir, (_, run1), (_, run2) = nights
    for run_id in (run1, run2):
        fr = _read(lambda c, i=run_id: c.read_flow_run(i))
        assert fr.parameters["params"]["agent_api_key_block"] == BLOCK
        assert CANARY not in repr(fr.parameters)
        logs = _read(lambda c, i=run_id: c.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[i]))))
        assert any("execution ex_" in r.message for r in logs), [r.message for r in logs]  # the prints reached the server
        assert not [r for r in logs if CANARY in r.message]
        assert not [a for a in _artifacts(run_id) if CANARY in str(a.data)]
    leaked = [p for p in data_dir.rglob("*") if p.is_file() and CANARY.encode() in p.read_bytes()]
    assert leaked == []


def test_params_refuse_secret_values_and_two_sources():
    from pydantic import ValidationError

    from models.nightly import DEFAULT_SELECT_WHERE, NightlyParams

    p = NightlyParams(project="p", agent="m:f")
    assert p.select_where == DEFAULT_SELECT_WHERE and p.rows == 20 and p.source is None
    with pytest.raises(ValidationError, match="secrets are never parameters"):
        NightlyParams(project="p", agent="m:f", phoenix_api_key="sk-1")
    with pytest.raises(ValidationError, match="not both"):
        NightlyParams(project="p", agent="m:f", paths=["x"], phoenix_url="http://127.0.0.1:6006")
    with pytest.raises(ValidationError):
        NightlyParams(project="p", agent="m:f", agent_api_key_block="Sk-Not A Block Name")
    assert NightlyParams(project="p", agent="m:f", phoenix_url="http://h").phoenix_project_name == "p"
    for url in ("http://u:pw@h:6006", "http://h/?api_key=k", "https://h/?token=t"):
        with pytest.raises(ValidationError, match="phoenix_url carries credentials"):
            NightlyParams(project="p", agent="m:f", phoenix_url=url)
