"""The stage compositions run in this process, without Prefect.

What the CLI runs when no Prefect server is configured (``PREFECT_API_URL`` unset): a
one-off command must not wait ~20 s for a temporary Prefect server it does not need.
The Prefect flows in this folder compose the very same stage functions.
"""

from __future__ import annotations

import time
from pathlib import Path

from models.ingest import ExtractInfo, IngestInfo, SessionizeInfo
from models.settings import Settings


def ingest_summary(con, extracts: list[ExtractInfo], sess: SessionizeInfo, t0: float, mode: str) -> IngestInfo:
    from tasks.store import catalog

    return IngestInfo(
        extract=extracts, sessionize=sess,
        read=sum(e.read for e in extracts), ingested=sum(e.ingested for e in extracts),
        rejected=sum(e.rejected for e in extracts), duplicates=sum(e.duplicates for e in extracts),
        sessions=catalog.scalar(con, "count_sessions"), turns=catalog.scalar(con, "count_turns"),
        seconds=round(time.perf_counter() - t0, 3), mode=mode)


def ingest_local(settings: Settings, paths: list[str | Path] | None = None, project: str | None = None,
                 phoenix_url: str | None = None) -> IngestInfo:
    """Extract + sessionize in this process, under the catalog's writer lock."""
    from tasks.ingest import extract, sessionize
    from tasks.ingest.sources import phoenix
    from tasks.store import catalog

    t0 = time.perf_counter()
    files = extract.expand_paths(paths or [])  # fails fast on a missing path, before any write
    with catalog.write_lock(settings), extract.worker_pool(settings) as pool:
        # parse first: the worker processes start before this process opens DuckDB
        staged = None if phoenix_url else extract.stage_files(settings, files, project, pool=pool)
        with catalog.open_catalog(settings) as con:
            if phoenix_url:
                extracts = phoenix.pull(con, settings, phoenix_url, project)
            else:
                extracts = [extract.commit_files(con, settings, staged, pool)]
            sess = sessionize.sessionize(con, settings, pool)
            return ingest_summary(con, extracts, sess, t0, "in-process")


def generate_local(settings: Settings, replay_id: str, **kwargs) -> dict:
    """Scenario generation in this process (transcripts described in batches inline)."""
    from tasks import scenario
    from tasks.store import catalog

    with catalog.writer(settings) as con:
        return scenario.generate(con, settings, replay_id, **kwargs)


DEMO_PROJECT = "support-agent"
DEMO_AGENT = "examples.support_agent:agent"
DEMO_AGENT_V2 = "examples.support_agent:agent_v2"


def demo_local(settings: Settings) -> dict:
    """The demo on the bundled sample: ingest, a replay of every session, its scenario."""
    from models.settings import SAMPLES_DIR
    from tasks.scenario import replays
    from tasks.store import catalog

    info = ingest_local(settings, paths=[SAMPLES_DIR / "otlp"])
    with catalog.writer(settings) as con:
        cur = con.execute(catalog.sql("demo_sessions"))
        cols = [d[0] for d in cur.description]
        sessions = [dict(zip(cols, r)) for r in cur.fetchall()]
        rs = replays.create(con, DEMO_PROJECT, "session", select_all=True)
    sug = rs["suggestions"]
    scenario = generate_local(settings, rs["replay_id"], agent_name=sug["agent_name"],
                              scenario_name=sug["scenario_name"], rows=20)
    from models.simulate import RunOptions

    run = run_local(settings, scenario["scenario_id"], DEMO_AGENT, RunOptions(name="demo: example agent v1"),
                    replay_id=rs["replay_id"], progress=False)
    run2 = run_local(settings, scenario["scenario_id"], DEMO_AGENT_V2,
                     RunOptions(name="demo: example agent v2 (prompt change)"), progress=False)
    from tasks import compare

    with catalog.reader(settings) as con:
        cmp = compare.between(con, run.execution_id, run2.execution_id)
        vs_prod = compare.vs_production(con, run2.execution_id)
    report_path = report_local(settings, run2.execution_id,
                               settings.data_dir / "reports" / f"{run2.execution_id}.html", baseline=run.execution_id)
    return {"data_dir": str(settings.data_dir), "ingest": info.model_dump(mode="json"), "session_columns": cols,
            "sessions": sessions, "replay": rs, "scenario": scenario, "run": run.model_dump(mode="json"),
            "run_v2": run2.model_dump(mode="json"), "compare": cmp,
            "diverged_chats_v2": vs_prod["diverged_chats"], "report": str(report_path)}


def report_local(settings: Settings, execution_id: str, out: Path, baseline: str | None = None) -> Path:
    from tasks import report
    from tasks.report import data as report_data
    from tasks.store import catalog

    with catalog.reader(settings) as con:
        data = report_data.load(con, execution_id, baseline)
    return report.write_report(data, out)


def run_local(settings: Settings, scenario_id: str, agent_ref: str, options, replay_id: str | None = None,
              progress: bool = True, evaluators: list[str] | None = None):
    """Create a run test + execution and run it in this process (the catalog is held only
    to create and to finish: chats go to the lake batch by batch)."""
    from tasks import simulate
    from tasks.store import catalog

    with catalog.writer(settings) as con:
        run_test_id, execution_id, _total = simulate.create_run(con, settings, scenario_id, agent_ref, options, replay_id)
    return resume_local(settings, execution_id, progress=progress, evaluators=evaluators)


def resume_local(settings: Settings, execution_id: str, progress: bool = True, evaluators: list[str] | None = None):
    """Run the chats of an execution that are not persisted yet, then count and finish it."""
    from tasks import scenario, simulate
    from tasks.store import catalog

    with catalog.writer(settings) as con:
        ex = simulate.load_execution(con, execution_id)
        _sc, rows, agent_def = scenario.get_scenario(con, ex["scenario_id"])
    ran, seconds = 0, 0.0
    with simulate.execution_lock(settings.lake_dir, execution_id):
        try:
            ran, _failed, seconds = simulate.run_async(simulate.execute(settings, ex, rows, agent_def, progress=progress))
        finally:  # also when interrupted: the execution's counts and status say what is left
            with catalog.writer(settings) as con:
                info = simulate.finish(con, settings, execution_id, ran, seconds)
    return evaluate_local(settings, info, evaluators)


def evaluate_local(settings: Settings, info, evaluators: list[str] | None = None):
    """Score an execution and attach its metrics to its KPIs."""
    from tasks import evaluate
    from tasks.store import catalog

    with catalog.writer(settings) as con:
        info.metrics = evaluate.evaluate(con, settings, info.execution_id, evaluators)
    return info
