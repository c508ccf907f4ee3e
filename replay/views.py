"""How the CLI prints what a stage returned, with rich: executions, a comparison against
production, a chat's turn-by-turn diff, a scenario. Presentation only: the numbers, texts and
differences come from tasks/ (``--json`` prints the same data)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

STATUS_STYLE = {"running": "cyan", "completed": "green", "failed": "red", "interrupted": "yellow"}
EXECUTION_FIELDS = ("execution_id", "scenario_id", "scenario_name", "run_test", "agent_ref", "mode", "status",
                    "stored_status", "total_chats", "done_chats", "completed_chats", "failed_chats", "started_at",
                    "ended_at", "seconds", "owner_pid", "owner_host", "error", "evaluator_refs")


def cut(text: Any, chars: int) -> str:
    """One line of at most ``chars`` characters (an ellipsis ends a cut one)."""
    s = " ".join(str("" if text is None else text).split())
    return s if len(s) <= chars else s[:chars - 1] + "…"


def when(t: datetime | None) -> str:
    return "" if t is None else t.strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    """12.3 s, 4 min 03 s, 2 h 05 min; "?" when unknown."""
    if seconds is None:
        return "?"
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(int(round(seconds)), 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


# --------------------------------------------------------------------------- executions
def execution_json(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row.get(k) for k in EXECUTION_FIELDS}


def print_executions(console: Console, rows: list[dict[str, Any]]) -> None:
    """``replay runs list``: one line an execution, newest first."""
    if not rows:
        console.print("no executions (start one: replay run --scenario ID --agent REF; scenarios: replay scenarios list)")
        return
    t = Table()
    for col, just in (("execution", "left"), ("scenario", "left"), ("agent", "left"), ("status", "left"),
                      ("chats done/total", "right"), ("failed", "right"), ("started (UTC)", "left"),
                      ("duration", "right")):
        t.add_column(col, justify=just, overflow="fold")
    for r in rows:
        scenario = r["scenario_id"] + (f" {cut(r['scenario_name'], 30)}" if r.get("scenario_name") else "")
        t.add_row(r["execution_id"], scenario, cut(r["agent_ref"], 40), status_text(r["status"]),
                  f"{r['done_chats']}/{r['total_chats']}", str(r["failed_chats"]), when(r["started_at"]),
                  duration(r["seconds"]))
    console.print(t)
    stale = [r for r in rows if r["status"] == "interrupted"]
    console.print(f"({len(rows)} execution{'s' if len(rows) != 1 else ''}"
                  + (f"; {len(stale)} interrupted: replay runs resume {stale[0]['execution_id']}" if stale else "")
                  + "; details: replay runs show EXECUTION_ID)", highlight=False)


def print_overview(console: Console, info: dict[str, Any]) -> None:
    """``replay runs show``: the execution, its KPIs, its errors, what to run next."""
    ex = info["execution"]
    head = Text.assemble(("execution ", ""), (ex["execution_id"], "bold"), " ", status_text(ex["status"]))
    console.print(head)
    scenario = ex["scenario_id"] + (f" ({ex['scenario_name']})" if ex.get("scenario_name") else "")
    facts = [("run test", ex["run_test"]), ("scenario", scenario), ("agent", f"{ex['agent_ref']} ({ex['mode']} mode)"),
             ("chats", f"{ex['done_chats']}/{ex['total_chats']} done: {ex['completed_chats']} completed, "
                       f"{ex['failed_chats']} failed"),
             ("started", f"{when(ex['started_at'])} UTC, ran {duration(ex['seconds'])}"
                         + (" (until its last persisted batch)" if ex["status"] == "interrupted"
                            and ex["stored_status"] == "running" else ""))]
    if ex["status"] == "running" and ex.get("owner_pid"):
        facts.append(("process", f"pid {ex['owner_pid']} on {ex['owner_host']}"))
    if ex["status"] == "interrupted" and ex["stored_status"] == "running":
        facts.append(("process", f"pid {ex['owner_pid']} on {ex['owner_host']} is gone (killed before it finished)"))
    if ex.get("error"):
        facts.append(("error", ex["error"]))
    if ex.get("evaluator_refs"):
        facts.append(("custom evaluators", ", ".join(ex["evaluator_refs"])))
    for k, v in facts:
        console.print(Text.assemble((f"  {k}: ", "bold"), str(v)))
    if info["kpis"]:
        t = Table(title="KPIs", title_justify="left")
        t.add_column("metric")
        t.add_column("value", justify="right")
        for k in info["kpis"]:
            t.add_row(k["label"], k["text"])
        console.print(t)
    elif not info["scored"]:
        console.print("  not scored yet")
    if info["errors"]:
        t = Table(title="why chats failed (top reasons)", title_justify="left")
        for col, just in (("chats", "right"), ("reason", "left"), ("example chat", "left")):
            t.add_column(col, justify=just, overflow="fold")
        for e in info["errors"]:
            t.add_row(str(e["count"]), cut(e["reason"], 120), e["example_chat_id"])
        console.print(t)
    print_next(console, info["next"])


def print_next(console: Console, steps: list[str]) -> None:
    for i, step in enumerate(steps):
        console.print(("next: " if i == 0 else "      ") + step, highlight=False)


# --------------------------------------------------------------------------- run --dry-run
def print_cost(console: Console, est: Any) -> None:
    """``replay run --dry-run``: the expected calls, tokens and cost, a line per kind of call."""
    console.print(f"dry run: {est.chats} chats ({est.rows} rows x {est.repeat}), mode {est.mode}; nothing was run "
                  "or written", highlight=False)
    table = Table(box=None)
    for col in ("calls", "model", "calls", "input tokens", "output tokens", "USD"):
        table.add_column("" if col == "calls" and not table.columns else col,
                         justify="right" if col not in ("model", "calls") or table.columns else "left")
    for line in est.lines:
        table.add_row(line.what, line.model or "?", f"{line.calls:,}", f"{line.input_tokens:,}",
                      f"{line.output_tokens:,}", "?" if line.usd is None else f"{line.usd:.4f}")
    table.add_row("total", "", f"{est.calls:,}", f"{sum(x.input_tokens for x in est.lines):,}",
                  f"{sum(x.output_tokens for x in est.lines):,}", "?" if est.usd is None else f"{est.usd:.4f}")
    console.print(table)
    console.print(f"expected: {est.calls:,} calls, {est.tokens:,} tokens, "
                  + ("cost unknown (a model without a price)" if est.usd is None else f"${est.usd:.4f}")
                  + f" (prices: {est.prices})", highlight=False)
    for note in est.notes:
        console.print(f"note: {note}", highlight=False, markup=False)


# --------------------------------------------------------------------------- evaluate
def print_evaluation(console: Console, execution_id: str, metrics: dict[str, Any], plan: Any,
                     specs: dict[str, Any]) -> None:
    """``replay evaluate``: what ran, what was kept, the metrics as every surface formats them
    (``specs``: by execution_metrics column, the custom evaluators' included)."""
    from tasks.evaluate.metrics import described, format_value

    if plan.only:
        ran = f"re-ran {plan.only} alone; kept the other scores ({', '.join(plan.keep) or 'none'})"
    else:
        custom = ", ".join(plan.refs) or "none"
        ran = f"scored with the built-ins and custom evaluators: {custom}" + (
            " (as recorded on the execution)" if plan.recorded else "")
    console.print(f"execution [bold]{execution_id}[/]: {ran}", highlight=False)
    t = Table()
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_column("column")
    for spec, value in described(metrics, specs):
        t.add_row(spec.label or spec.name, format_value(spec, value), spec.metric_column)
    console.print(t)
    print_next(console, [f"replay runs show {execution_id}"])



# --------------------------------------------------------------------------- compare against production
def print_divergence(console: Console, result: dict[str, Any], max_rows: int = 20) -> None:
    """The diverged chats of ``replay compare EX``: grouped by row, first divergent turn and why,
    at most ``max_rows`` lines (it says how many more), then what to run next."""
    eid, groups = result["execution_id"], result["diverged_rows"]
    first = result["first_divergent_turn"]
    console.print(f"{result['diverged_chats']} of {len(result['chats'])} chats diverged from production"
                  + (f" (the earliest at turn {first})" if first is not None else ""), highlight=False)
    if not groups:
        return
    t = Table(title="where each row first left production (repetitions that left it alike: one line)",
              title_justify="left")
    for col, just in (("row", "right"), ("origin", "left"), ("chats", "right"), ("turn", "right"), ("why", "left"),
                      ("reason", "left"), ("example chat", "left")):
        t.add_column(col, justify=just, overflow="fold")
    for g in groups[:max_rows]:
        chats = f"{g['chats']}/{g['of']}" if g.get("of") else str(g["chats"])
        t.add_row(str(g["row_index"]), cut(g["origin_id"], 24), chats, str(g["turn_index"]), g["why"],
                  cut(g["reason"], 90), g["example_chat_id"])
    console.print(t)
    if len(groups) > max_rows:
        console.print(f"... and {len(groups) - max_rows} more (--rows N shows more; --json lists every chat)")
    print_next(console, [f"replay compare {eid} --chat {groups[0]['example_chat_id']}   (turn by turn)"])


def _calls(calls: list[dict[str, Any]], replayed: bool) -> str:
    if not calls:
        return "none"
    parts = []
    for c in calls:
        text = f"{c['name']}({cut(c['arguments'], 80)})"
        if c.get("status") not in (None, "ok"):
            text += f" {c['status']}"
        if replayed:
            text += f" <- {c.get('source') or '?'}" + (f" turn {c['matched_turn']}" if c.get("matched_turn") is not None
                                                         else "")
        parts.append(text)
    return "; ".join(parts)


def words_text(ops: list[dict[str, str]], color: bool) -> Text:
    """A word diff (production -> replay) as rich text: deletions red and struck through,
    insertions green; without colour (not a terminal) ``[-deleted-]`` and ``{+inserted+}``."""
    out = Text()
    for i, op in enumerate(ops):
        if i:
            out.append(" ")
        if op["op"] == "equal":
            out.append(op["text"])
        elif color:
            out.append(op["text"], style="red strike" if op["op"] == "delete" else "green")
        else:
            out.append(f"[-{op['text']}-]" if op["op"] == "delete" else f"{{+{op['text']}+}}")
    return out


def print_chat_diff(console: Console, chat: dict[str, Any]) -> None:
    """``replay compare EX --chat CHAT``: the chat turn by turn against production."""
    color = console.is_terminal and console.color_system is not None
    d = chat["divergence"]
    head = (f"chat {chat['chat_id']} (row {chat['row_index']}, repetition {chat['repetition']}, replays "
            f"{chat['origin_id']}): {chat['status']}, ended {chat['ended_reason']}")
    console.print(head, highlight=False)
    console.print(f"diverged at turn {d['turn_index']}: {d['reason']}" if d else "never diverged from production",
                  highlight=False)
    if chat.get("error"):
        console.print(Text(f"error: {chat['error']}", style="red"))
    legend = (Text.assemble("answers: production -> replay, ", ("deleted", "red strike"), " / ", ("inserted", "green"))
              if color else Text("answers: production -> replay, [-deleted-] / {+inserted+}"))
    console.print(legend)
    console.print("tool calls: the replay's say where their answer came from (recorded, nearest, live, off_script) "
                  "and which production turn answered them", highlight=False)
    for t in chat["turns"]:
        mark = ": diverged here" if t["diverged"] else ""
        sim = f" (similarity {t['similarity']:.2f})" if t["similarity"] is not None else ""
        console.print(Text(f"\nturn {t['turn_index']}{sim}{mark}", style="bold" + (" yellow" if mark else "")))
        who = "user" + (" (simulated)" if t.get("user_source") == "simulated" else "")
        console.print(Text.assemble((f"  {who}: ", "bold"), t["user_message"] or ""))
        if t["production"] is None or t["replayed"] is None:
            console.print(Text.assemble(("  production: ", "bold"), t["production"] or "(no turn)"))
            console.print(Text.assemble(("  replay: ", "bold"), t["replayed"] or "(no turn)"))
        else:
            console.print(Text.assemble(("  answer: ", "bold"), words_text(t["words"], color)))
        console.print(Text.assemble(("  tools, production: ", "bold"), _calls(t["production_tool_calls"], False)))
        console.print(Text.assemble(("  tools, replay: ", "bold"), _calls(t["replayed_tool_calls"], True)))
        if t.get("error"):
            console.print(Text(f"  error: {t['error']}", style="red"))
    eid = chat["execution_id"]
    console.print()
    print_next(console, [f"replay compare {eid}   (every diverged row)",
                         f"replay report {eid} --out {eid}.html   (every chat, in a browser)"])


# --------------------------------------------------------------------------- scenarios
def print_scenario(console: Console, sc: dict[str, Any], rows: list[Any], agent: Any, cell: int = 48) -> None:
    """``replay scenarios show``: the scenario's metadata, then its rows (cells cut to ``cell``
    characters)."""
    console.print(Text.assemble(("scenario ", ""), (sc["scenario_id"], "bold"), f" {sc['scenario_name']}"))
    graph = sc.get("graph") or {}
    facts = [("project", sc.get("project")),
             ("agent", f"{agent.agent_name} v{agent.version} (model {agent.model or '?'}, "
                       f"{len(agent.tools or [])} tools)"),
             ("source", sc["source"] + (f", from replay session {sc['replay_id']}" if sc.get("replay_id") else "")),
             ("derived from", sc.get("derived_from")), ("rows", sc["row_count"]), ("writer", sc.get("writer")),
             ("created", f"{when(sc['created_at'])} UTC"),
             ("graph", f"{len(graph.get('nodes') or [])} nodes, {len(graph.get('edges') or [])} edges" if graph
              else None),
             ("redactions", sc.get("redactions")),
             ("failures", f"{len(sc['failures'])} conversations written offline" if sc.get("failures") else None)]
    for k, v in facts:
        if v not in (None, "", {}):
            console.print(Text.assemble((f"  {k}: ", "bold"), str(v)))
    t = Table()
    for col, just in (("row", "right"), ("origin", "left"), ("persona", "left"), ("branch", "left"),
                      ("situation", "left"), ("outcome", "left"), ("user turns", "right"), ("first user turn", "left")):
        t.add_column(col, justify=just, overflow="fold")
    for r in rows:
        t.add_row(str(r.row_index), cut(r.origin_id, 24), cut(r.persona.name, 20), cut(r.branch_category, 24),
                  cut(r.situation, cell), cut(r.outcome, cell), str(len(r.user_turns)),
                  cut(r.user_turns[0] if r.user_turns else "", cell))
    console.print(t)
    console.print(f"({len(rows)} rows; long cells cut to {cell} characters: --json prints them in full)",
                  highlight=False)
    print_next(console, [f"replay run --scenario {sc['scenario_id']} --agent REF",
                         f"replay scenarios export {sc['scenario_id']} --out {sc['scenario_id']}.jsonl"])


# --------------------------------------------------------------------------- nightly
def print_markdown(console: Console, text: str) -> None:
    """A markdown text: rendered on a terminal, as it is otherwise (it is readable, and greppable)."""
    if console.is_terminal:
        from rich.markdown import Markdown

        console.print(Markdown(text))
    else:
        console.file.write(text)
