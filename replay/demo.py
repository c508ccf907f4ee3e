"""``replay demo``: the whole loop on the bundled sample, in this process (no Prefect server).

ingest the sample -> a replay session of every session -> its scenario (one row a session) ->
a run against the example agent (v1) and one against v2 (a prompt change), each row replayed
5 times -> scores -> v2 compared with v1 and with production -> the HTML report of v2 against v1. Each step is its stage's one composition.
"""

from __future__ import annotations

from typing import Any

from models.settings import SAMPLE_AGENT, SAMPLE_AGENT_V2, SAMPLE_PROJECT, SAMPLES_DIR, Settings
from models.simulate import RunOptions
from tasks.compare import between, vs_production
from tasks.compare.executions import ROW_REPEATS
from tasks.evaluate import run_and_score
from tasks.ingest import run_ingest
from tasks.report import run_report
from tasks.scenario import replays, run_scenario
from tasks.simulate import run_async, start_run
from tasks.store import catalog


def run_demo(settings: Settings) -> dict[str, Any]:
    """Run the demo on ``settings.data_dir``; returns what each step made (``--json``)."""
    info = run_ingest(settings, paths=[SAMPLES_DIR / "otlp"])
    with catalog.writer(settings) as con:
        sessions = catalog.rows(con, "demo_sessions")
        rs = replays.create(con, SAMPLE_PROJECT, "session", select_all=True)
    # one row a session (more rows would replay the same conversations again), each replayed
    # ROW_REPEATS times: enough for a change of one row to be significant on its own
    scenario = run_scenario(settings, rs.replay_id, rs.suggestions["agent_name"], rs.suggestions["scenario_name"],
                            rows=len(rs.ids))
    runs = []
    for agent, name, replay_id in ((SAMPLE_AGENT, "demo: example agent v1", rs.replay_id),
                                   (SAMPLE_AGENT_V2, "demo: example agent v2 (prompt change)", None)):
        execution_id = start_run(settings, scenario.scenario_id, agent, RunOptions(name=name, repeat=ROW_REPEATS), replay_id)
        runs.append(run_async(run_and_score(settings, execution_id)))
    v1, v2 = runs
    with catalog.reader(settings) as con:
        cmp = between(con, v1.execution_id, v2.execution_id)
        vs_prod = vs_production(con, v2.execution_id)
    report = run_report(settings, v2.execution_id, settings.data_dir / "reports" / f"{v2.execution_id}.html",
                        baseline=v1.execution_id)
    return {"data_dir": str(settings.data_dir), "ingest": info.model_dump(mode="json"),
            "session_columns": list(sessions[0]) if sessions else [], "sessions": sessions,
            "replay": rs.model_dump(mode="json"), "scenario": scenario.model_dump(mode="json"),
            "run": v1.model_dump(mode="json"), "run_v2": v2.model_dump(mode="json"),
            "compare": cmp.model_dump(mode="json"),
            "diverged_chats_v2": vs_prod["diverged_chats"], "report": str(report)}


def demo_lines(result: dict[str, Any]) -> list[str]:
    """What the demo says, step by step (the sessions table goes after the first line)."""
    from models.compare import ExecutionComparison
    from tasks.compare import verdict_lines
    from tasks.evaluate.metrics import described, format_value

    info, rs, sc, cmp = result["ingest"], result["replay"], result["scenario"], result["compare"]
    lines = [f"1. ingested {info['ingested']} spans ({info['duplicates']} duplicates, {info['rejected']} rejected) "
             f"-> {info['sessions']} sessions, {info['turns']} turns in {info['seconds']:.2f} s",
             f"2. replay session {rs['replay_id']}: {len(rs['ids'])} sessions of {rs['project']}",
             f"3. scenario {sc['scenario_id']} ({sc['scenario_name']}): {sc['rows']} rows, {sc['branches']} "
             f"branches, agent {sc['agent_name']} v{sc['agent_version']}, writer {sc['writer']}"]
    for n, key, label in ((4, "run", "v1"), (5, "run_v2", "v2, prompt changed")):
        run = result[key]
        scores = "; ".join(f"{s.label} {format_value(s, v)}" for s, v in described(run["metrics"])
                           if s.kind == "quality" and s.name != "failed")
        lines.append(f"{n}. run {run['execution_id']} against the example agent ({label}): "
                     f"{run['completed_chats']}/{run['total_chats']} chats; {scores}")
    verdicts = verdict_lines(ExecutionComparison.model_validate(cmp))
    lines.append(f"6. v2 against v1, {verdicts[0]}")
    lines += [f"   {line}" for line in verdicts[1:]]
    lines += [f"7. report: {result['report']}",
              f"next: uv run replay compare {result['run_v2']['execution_id']}   (against production)"]
    return lines


__all__ = ["demo_lines", "run_demo"]
