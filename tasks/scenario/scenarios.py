"""Scenario generation: a replay session's transcripts -> agent definition + scenario rows + graph.

Pure functions first (agent definition from transcripts, row choice, row assembly,
redaction, export lines), then the stage functions that take a catalog connection, then
the thin Prefect task. A writer (``tasks.scenario_text`` offline, or ``tasks.llm.LLMWriter``
when a model is configured) describes each transcript; a transcript the model cannot
describe validly is kept as a failure (scenarios.failures) and its row is written by the
offline writer, so nothing is dropped silently.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable

import orjson
from pydantic import ValidationError

from models.scenario import (
    AgentDefinition,
    ConversationNotes,
    GenerationFailure,
    Graph,
    Persona,
    ReplaySession,
    ScenarioInfo,
    ScenarioRow,
    ToolCall,
    Transcript,
    Turn,
)
from tasks.common.clock import now
from tasks.common.errors import ReplayError, validation_text
from tasks.common.text import json_value
from tasks.scenario import replays
from tasks.store import catalog

EXPORT_FORMAT = "replay.scenario/v1"
MAX_ROWS = 1000


class ScenarioError(ReplayError):
    """A refused generation/import request: one-line reason."""


# --------------------------------------------------------------------------- pure parts
def transcripts_from_rows(rows: Iterable[dict[str, Any]]) -> list[Transcript]:
    """Rows of tasks/sql/transcript_turns.sql (ordered by origin, turn) -> transcripts."""
    by_origin: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_origin.setdefault(r["origin_id"], []).append(r)
    out = []
    for origin, turns in by_origin.items():
        prompts = Counter(t["system_prompt"] for t in turns if t["system_prompt"])
        models = Counter(t["model"] for t in turns if t["model"])
        out.append(Transcript(
            origin_id=origin, project=turns[0]["project"],
            user_id=next((t["user_id"] for t in turns if t["user_id"]), None),
            system_prompt=prompts.most_common(1)[0][0] if prompts else None,
            model=models.most_common(1)[0][0] if models else None,
            turns=[Turn(turn_index=i, trace_id=t["trace_id"], user_message=t["user_message"],
                        assistant_message=t["assistant_message"],
                        tool_calls=[ToolCall(id=c.get("id"), name=c.get("name"),
                                             arguments=json_value(c.get("arguments"), c.get("arguments")),
                                             result=c.get("result"), status=c.get("status"))
                                    for c in (orjson.loads(t["tool_calls"]) if t["tool_calls"] else [])],
                        started_at=t["started_at"], latency_ms=t["latency_ms"],
                        input_tokens=t["input_tokens"] or 0, output_tokens=t["output_tokens"] or 0,
                        model=t["model"], status=t["status"] or "ok", error=t["error"])
                   for i, t in enumerate(turns)]))
    return out


def _function_tool(schema: Any) -> dict[str, Any] | None:
    """A declared tool in any common shape -> OpenAI's {"type": "function", "function": {...}}."""
    if not isinstance(schema, dict):
        return None
    fn = schema.get("function") if isinstance(schema.get("function"), dict) else schema
    name = fn.get("name")
    if not name:
        return None
    return {"type": "function", "function": {
        "name": name, "description": fn.get("description") or "",
        "parameters": fn.get("parameters") or fn.get("input_schema") or {"type": "object", "properties": {}}}}


_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}


def infer_tools(transcripts: list[Transcript]) -> list[dict[str, Any]]:
    """Tools seen called in the transcripts (name and argument keys, with their JSON types)."""
    seen: dict[str, dict[str, str]] = {}
    for t in transcripts:
        for turn in t.turns:
            for c in turn.tool_calls:
                if not c.name:
                    continue
                props = seen.setdefault(c.name, {})
                if isinstance(c.arguments, dict):
                    for k, v in c.arguments.items():
                        props.setdefault(k, _JSON_TYPES.get(type(v), "string"))
    return [{"type": "function", "function": {
        "name": name, "description": f"(inferred from production calls of {name})",
        "parameters": {"type": "object", "properties": {k: {"type": ty} for k, ty in sorted(props.items())}}}}
        for name, props in sorted(seen.items())]


def agent_draft(transcripts: list[Transcript], declared: list[Any], agent_name: str,
                description: str) -> AgentDefinition:
    """The agent as production ran it: the system prompt and model its model calls used,
    the tools declared on its model spans (else inferred from its tool calls)."""
    prompts = Counter(t.system_prompt for t in transcripts if t.system_prompt)
    models = Counter(t.model for t in transcripts if t.model)
    tools = [f for f in (_function_tool(s) for s in declared) if f]
    tools = list({t["function"]["name"]: t for t in tools}.values()) or infer_tools(transcripts)
    return AgentDefinition(agent_name=agent_name, version=0, description=description,
                           system_prompt=prompts.most_common(1)[0][0] if prompts else None,
                           tools=tools, model=models.most_common(1)[0][0] if models else None)


DEFINING = ("system_prompt", "tools", "model", "agent_type")  # what makes a new agent-definition version


def same_definition(a: AgentDefinition, b: AgentDefinition) -> bool:
    """The same agent: the same system prompt, tools, model (and type). The description is
    not the agent: the suggested one counts the sessions replayed, which differ every night."""
    return all(getattr(a, k) == getattr(b, k) for k in DEFINING)


def choose_rows(paths: list[list[str]], n_rows: int, categories: list[str] | None = None) -> list[int]:
    """Which transcripts become rows, in order. Fewer rows than transcripts: greedily the
    transcript with a branch category not yet chosen, then the one whose graph path adds the
    most edges not yet covered (distinct branches first; ties by order). More: every
    transcript, then again in that order (the extra rows get varied personas)."""
    categories = categories or [""] * len(paths)
    remaining = list(range(len(paths)))
    order: list[int] = []
    covered: set[tuple[str, str]] = set()
    seen: set[str] = set()
    edges = [set(zip(p, p[1:], strict=False)) for p in paths]
    while remaining:
        best = max(remaining, key=lambda i, covered=covered: (categories[i] not in seen, len(edges[i] - covered), -i))
        order.append(best)
        covered |= edges[best]
        seen.add(categories[best])
        remaining.remove(best)
    if n_rows <= len(order):
        return order[:n_rows]
    return [order[k % len(order)] for k in range(n_rows)]


def parse_custom_columns(specs: list[str]) -> dict[str, Any]:
    """NAME[=VALUE] ... -> {NAME: VALUE or None}; names must be unique."""
    out: dict[str, Any] = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        name = name.strip()
        if not name or not name.replace("_", "").isalnum():
            raise ScenarioError(f"custom column name {name!r} must be letters, digits and _")
        if name in out:
            raise ScenarioError(f"custom column {name!r} is given twice; names must be unique")
        out[name] = value if sep else None
    return out


def assemble_rows(transcripts: list[Transcript], notes: list[ConversationNotes], paths: list[list[str]],
                  chosen: list[int], personas: list[Persona], library: list[Persona],
                  custom: dict[str, Any], seed: int, vary: Callable[..., Persona]) -> list[ScenarioRow]:
    rng = random.Random(seed)
    rows, used = [], Counter()
    for row_index, i in enumerate(chosen):
        t, n = transcripts[i], notes[i]
        used[i] += 1
        if personas:
            persona = personas[row_index % len(personas)]
        elif used[i] == 1:
            persona = n.persona
        else:
            persona = vary(n.persona, rng, library)
        # the situation speaks of the row's persona (a varied row is someone else)
        situation = n.situation.replace(n.persona.name, persona.name) if persona.name != n.persona.name else n.situation
        rows.append(ScenarioRow(
            row_index=row_index, origin_id=t.origin_id, persona=persona, situation=situation,
            outcome=n.outcome, conversation_branch=" -> ".join(paths[i]), branch_category=n.branch_category,
            user_turns=[turn.user_message or "" for turn in t.turns], expected_turns=list(t.turns),
            custom=dict(custom)))
    return rows


def redact_rows(rows: list[ScenarioRow], agent: AgentDefinition, graph: Graph | None, redactor) -> None:
    """Mask emails, phones, cards and configured patterns in every text of the scenario."""
    for r in rows:
        r.situation = redactor.redact(r.situation)
        r.outcome = redactor.redact(r.outcome)
        r.user_turns = [redactor.redact(u) for u in r.user_turns]
        r.expected_turns = [Turn.model_validate(redactor.redact_obj(t.model_dump(mode="json")))
                            for t in r.expected_turns]
        r.persona = Persona.model_validate(redactor.redact_obj(r.persona.model_dump()))
        r.custom = redactor.redact_obj(r.custom)
    if agent.system_prompt:
        agent.system_prompt = redactor.redact(agent.system_prompt)
    if graph:
        for node in graph.nodes:
            node.prompt = redactor.redact(node.prompt)


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS, default=str).decode()


# --------------------------------------------------------------------------- the stage
def load_transcripts(con, replay: dict[str, Any]) -> list[Transcript]:
    return transcripts_from_rows(catalog.rows(con, "transcript_turns",
                                              {"ids": replay.ids, "by_trace": replay.replay_type == "trace"}))


def save_agent_definition(con, draft: AgentDefinition, project: str | None) -> tuple[AgentDefinition, bool]:
    """Store a new version only when the system prompt, tools or model changed (not for another
    description: the latest version is reused as it is); returns (definition, created)."""
    row = con.execute(catalog.sql("latest_agent_definition"), {"agent_name": draft.agent_name, "project": None}).fetchone()
    if row:
        latest = AgentDefinition(agent_name=row[0], version=row[1], description=row[2] or "", system_prompt=row[3],
                                 tools=orjson.loads(row[4]) if row[4] else [], model=row[5], agent_type=row[6],
                                 created_at=row[7])
        if same_definition(latest, draft):
            return latest, False
        version = latest.version + 1
    else:
        version = 1
    agent = draft.model_copy(update={"version": version, "created_at": now()})
    con.execute(catalog.sql("insert_agent_definition"), {
        "agent_name": agent.agent_name, "version": agent.version, "project": project,
        "description": agent.description, "system_prompt": agent.system_prompt, "tools": _dumps(agent.tools),
        "model": agent.model, "agent_type": agent.agent_type, "created_at": agent.created_at})
    return agent, True


def _failure(origin_id: str, settings, exc: Exception) -> GenerationFailure:
    """A transcript the model could not describe, kept for review: the reason and the model's
    last reply, with the LLM's key (and anything credential-like) masked: a model may echo it."""
    from tasks.common.secrets import scrub, url_secrets

    key = settings.llm_api_key.get_secret_value() if getattr(settings, "llm_api_key", None) else None
    secrets = (key, *url_secrets(str(settings.llm_base_url or "")))
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    raw = getattr(exc, "raw", None)
    return GenerationFailure(origin_id=origin_id, writer=f"llm:{settings.llm_model}", reason=scrub(reason, *secrets),
                             raw=None if raw is None else scrub(raw, *secrets))


def describe_batch(transcripts: list[Transcript], settings) -> list[tuple[ConversationNotes, GenerationFailure | None]]:
    """Describe a batch of transcripts: with the model when one is configured (a failure
    falls back to the offline writer and is reported), else offline."""
    from tasks.scenario import writer_offline

    client = None
    if getattr(settings, "llm_base_url", None):
        from tasks.common.llm import InvalidReply, LLMError, make_llm_client
        from tasks.scenario.writer_llm import LLMWriter

        client = make_llm_client(settings)
    out = []
    for t in transcripts:
        if client is None:
            out.append((writer_offline.describe(t), None))
            continue
        try:
            out.append((LLMWriter(client, model=settings.llm_model).describe(t), None))
        except (InvalidReply, LLMError) as exc:
            fail = _failure(t.origin_id, settings, exc)
            out.append((writer_offline.describe(t), fail))
    if client is not None and hasattr(client, "close"):
        client.close()
    return out


Described = list[tuple[ConversationNotes, GenerationFailure | None]]


@dataclass
class Generation:
    """A generation under way: what :func:`begin_generation` read from the catalog for
    :func:`finish_generation`. The transcripts are described in between, with the catalog
    closed (a model may take minutes; meanwhile other processes read and write the catalog)."""

    replay: ReplaySession
    agent_name: str
    scenario_name: str
    transcripts: list[Transcript]
    declared_tools: list[Any]
    rows: int
    personas: list[Persona]
    library: list[Persona]
    custom: dict[str, Any]
    supplied_graph: Graph | None
    generate_graph: bool
    redact: bool
    agent_description: str | None


def begin_generation(con, settings, replay_id: str, agent_name: str, scenario_name: str, *,
                     agent_description: str | None = None, agent_type: str = "text", rows: int = 20,
                     persona_ids: list[str] | None = None, custom_columns: list[str] | None = None,
                     graph_file: str | None = None, generate_graph: bool = True, redact: bool = False) -> Generation:
    """Check the request (ScenarioError, nothing written), move the replay session to
    GENERATING and read its transcripts (FAILED with the reason when that fails)."""
    from tasks.scenario import graph as graphs
    from tasks.scenario import writer_offline

    if not agent_name or not scenario_name:
        raise ScenarioError("--agent-name and --scenario-name are required")
    if agent_type != "text":
        raise ScenarioError(f"--agent-type {agent_type} is not supported: Replay replays chat (text) agents only")
    if not 1 <= rows <= MAX_ROWS:
        raise ScenarioError(f"--rows must be between 1 and {MAX_ROWS}, not {rows}")
    custom = parse_custom_columns(custom_columns or [])
    library = writer_offline.load_personas()
    personas: list[Persona] = []
    if persona_ids:
        by_id = {p.persona_id: p for p in library}
        unknown = [p for p in persona_ids if p not in by_id]
        if unknown:
            raise ScenarioError(f"unknown persona id{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)} "
                                f"(the library has {', '.join(sorted(by_id))})")
        personas = [by_id[p] for p in persona_ids]
    supplied = graphs.load_graph(graph_file) if graph_file else None
    replay = replays.get(con, replay_id)
    replays.transition(con, replay_id, "GENERATING")
    try:
        transcripts = load_transcripts(con, replay)
        if not transcripts:
            raise ScenarioError(f"replay session {replay_id} selects no conversation that still exists")
        declared = [orjson.loads(r[0]) for r in con.execute(
            catalog.sql("declared_tools"), {"traces": [turn.trace_id for t in transcripts for turn in t.turns]}).fetchall()]
    except Exception as exc:
        fail_generation(con, replay_id, exc)
        raise
    return Generation(replay=replay, agent_name=agent_name, scenario_name=scenario_name, transcripts=transcripts,
                      declared_tools=declared[0] if declared and isinstance(declared[0], list) else [],
                      rows=rows, personas=personas, library=library, custom=custom, supplied_graph=supplied,
                      generate_graph=generate_graph, redact=redact, agent_description=agent_description)


def fail_generation(con, replay_id: str, exc: BaseException) -> None:
    """The replay session FAILED, with the reason (the first line of ``exc``)."""
    replays.transition(con, replay_id, "FAILED", reason=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def finish_generation(con, settings, gen: Generation, described: Described) -> ScenarioInfo:
    """The graph, the rows and the agent definition from the described transcripts, stored
    (the replay session FAILED with the reason when that fails)."""
    try:
        return _finish(con, settings, gen, described)
    except Exception as exc:
        fail_generation(con, gen.replay.replay_id, exc)
        raise


def _finish(con, settings, gen: Generation, described: Described) -> ScenarioInfo:
    from tasks.scenario import graph as graphs
    from tasks.scenario import writer_offline
    from tasks.scenario.redact import Redactor

    replay, transcripts = gen.replay, gen.transcripts
    notes = [n for n, _ in described]
    failures = [f for _, f in described if f]
    graph = gen.supplied_graph or (graphs.build_graph(notes) if gen.generate_graph else None)
    if graph is None:
        paths = [["start", *n.steps] for n in notes]
    elif gen.supplied_graph:
        paths = [graphs.path_for_supplied_graph(graph, n.steps) for n in notes]
    else:
        paths = [graphs.branch_path(graph, n.steps) for n in notes]
    chosen = choose_rows(paths, gen.rows, [n.branch_category for n in notes])
    description = gen.agent_description or replay.suggestions.get("agent_description") or ""
    draft = agent_draft(transcripts, gen.declared_tools, gen.agent_name, description)
    scenario_rows = assemble_rows(transcripts, notes, paths, chosen, gen.personas, gen.library, gen.custom,
                                  seed=gen.rows, vary=writer_offline.vary_persona)
    redactions: dict[str, int] | None = None
    if gen.redact:
        redactor = Redactor(getattr(settings, "redact_patterns", None) or None)
        redact_rows(scenario_rows, draft, graph, redactor)
        redactions = dict(redactor.counts)
    agent, _ = save_agent_definition(con, draft, replay.project)
    scenario_id = "scn_" + uuid.uuid4().hex[:12]
    writers = Counter(n.writer for n in notes)
    store_scenario(con, {
        "scenario_id": scenario_id, "scenario_name": gen.scenario_name, "replay_id": replay.replay_id,
        "project": replay.project, "agent_name": agent.agent_name, "agent_version": agent.version,
        "source": f"{replay['replay_type']}_replay", "graph": graph.model_dump(by_alias=True) if graph else None,
        "row_count": len(scenario_rows), "writer": ",".join(sorted(writers)),
        "redactions": redactions, "failures": [f.model_dump() for f in failures] or None,
        "created_at": now()}, scenario_rows)
    con.execute(catalog.sql("set_replay_names"), {"replay_id": replay.replay_id, "agent_name": agent.agent_name,
                                                    "scenario_name": gen.scenario_name})
    repeated = len(scenario_rows) - len({r.origin_id for r in scenario_rows})
    warnings = [] if not repeated else [
        f"{repeated} of {len(scenario_rows)} rows repeat a conversation another row already has: replayed "
        "(--mode replay) they send the same user turns, so they add no evidence (comparisons count each "
        f"production conversation once); --rows {len(scenario_rows) - repeated} avoids them, --mode simulate "
        "makes them differ"]
    return ScenarioInfo(replay_id=replay.replay_id, scenario_id=scenario_id, scenario_name=gen.scenario_name,
                        repeated_rows=repeated, warnings=warnings,
                        agent_name=agent.agent_name, agent_version=agent.version, rows=len(scenario_rows),
                        transcripts=len(transcripts), branches=len({r.conversation_branch for r in scenario_rows}),
                        failures=len(failures), redactions=redactions, writer=",".join(sorted(writers)),
                        state=replays.get(con, replay.replay_id).state)


def generate(con, settings, replay_id: str, agent_name: str, scenario_name: str, *,
             describe: Callable[[list[Transcript]], Described] | None = None, **options: Any) -> ScenarioInfo:
    """Generate the agent definition and the scenario of a replay session (INIT/GENERATING ->
    GENERATING; FAILED with the reason when generation fails) on one open connection.
    ``options``: those of :func:`begin_generation`. The stage (``run_scenario``) does the same
    with the catalog closed while the transcripts are described."""
    gen = begin_generation(con, settings, replay_id, agent_name, scenario_name, **options)
    try:
        described = (describe or (lambda ts: describe_batch(ts, settings)))(gen.transcripts)
    except Exception as exc:
        fail_generation(con, replay_id, exc)
        raise
    return finish_generation(con, settings, gen, described)


def store_scenario(con, scenario: dict[str, Any], rows: list[ScenarioRow]) -> None:
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(catalog.sql("insert_scenario"), {
            **scenario, "derived_from": scenario.get("derived_from"),
            "graph": _dumps(scenario["graph"]) if scenario["graph"] is not None else None,
            "redactions": _dumps(scenario["redactions"]) if scenario["redactions"] is not None else None,
            "failures": _dumps(scenario["failures"]) if scenario["failures"] is not None else None})
        con.executemany(catalog.sql("insert_scenario_row"), [{
            "scenario_id": scenario["scenario_id"], "row_index": r.row_index, "origin_id": r.origin_id,
            "persona": _dumps(r.persona.model_dump()), "situation": r.situation, "outcome": r.outcome,
            "conversation_branch": r.conversation_branch, "branch_category": r.branch_category,
            "user_turns": r.user_turns, "expected_turns": _dumps([t.model_dump(mode="json") for t in r.expected_turns]),
            "custom": _dumps(r.custom)} for r in rows])
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


# --------------------------------------------------------------------------- export / import
def get_scenario(con, scenario_id: str) -> tuple[dict[str, Any], list[ScenarioRow], AgentDefinition]:
    scenario = catalog.one(con, "get_scenario", {"scenario_id": scenario_id})
    if scenario is None:
        raise ScenarioError(f"no scenario {scenario_id}; list them with `replay sql \"select * from scenarios\"`")
    for k in ("graph", "redactions", "failures"):
        if isinstance(scenario[k], str):
            scenario[k] = orjson.loads(scenario[k])
    rows = []
    for d in catalog.rows(con, "get_scenario_rows", {"scenario_id": scenario_id}):
        rows.append(ScenarioRow(row_index=d["row_index"], origin_id=d["origin_id"],
                                persona=Persona.model_validate_json(d["persona"]), situation=d["situation"],
                                outcome=d["outcome"], conversation_branch=d["conversation_branch"],
                                branch_category=d["branch_category"], user_turns=list(d["user_turns"]),
                                expected_turns=[Turn.model_validate(t) for t in orjson.loads(d["expected_turns"])],
                                custom=orjson.loads(d["custom"]) if d["custom"] else {}))
    a = catalog.one(con, "get_agent_definition", {"agent_name": scenario["agent_name"],
                                                  "version": scenario["agent_version"]})
    if a is None:
        raise ScenarioError(f"scenario {scenario_id} names agent {scenario['agent_name']} "
                            f"v{scenario['agent_version']}, which this catalog does not hold; import the "
                            "scenario again with its agent definition")
    agent = AgentDefinition(agent_name=a["agent_name"], version=a["version"], description=a["description"] or "",
                            system_prompt=a["system_prompt"], tools=orjson.loads(a["tools"]) if a["tools"] else [],
                            model=a["model"], agent_type=a["agent_type"], created_at=a["created_at"])
    return scenario, rows, agent


def export_lines(scenario: dict[str, Any], rows: list[ScenarioRow], agent: AgentDefinition) -> list[str]:
    """A scenario as JSON lines: a header (the scenario, its agent definition), then one row a line.
    Sorted keys, so that a file round-trips byte for byte and diffs well in a repo."""
    head = {"kind": "scenario", "format": EXPORT_FORMAT,
            "scenario": {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in scenario.items()},
            "agent_definition": agent.model_dump(mode="json")}
    return [_dumps(head)] + [_dumps({"kind": "row", **r.model_dump(mode="json")}) for r in rows]


def export_scenario(con, scenario_id: str, out: Path) -> dict[str, Any]:
    scenario, rows, agent = get_scenario(con, scenario_id)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text("\n".join(export_lines(scenario, rows, agent)) + "\n")
    tmp.replace(out)
    return {"scenario_id": scenario_id, "rows": len(rows), "out": str(out)}


def parse_export(lines: list[str], where: str) -> tuple[dict[str, Any], AgentDefinition, list[ScenarioRow]]:
    lines = [ln for ln in lines if ln.strip()]
    if not lines:
        raise ScenarioError(f"{where} is empty")
    try:
        head = orjson.loads(lines[0])
    except orjson.JSONDecodeError as exc:
        raise ScenarioError(f"{where}:1 is not JSON: {exc}") from None
    if not isinstance(head, dict) or head.get("kind") != "scenario" or head.get("format") != EXPORT_FORMAT:
        raise ScenarioError(f"{where}:1 is not a Replay scenario header (format {EXPORT_FORMAT})")
    n = 1
    try:
        agent = AgentDefinition.model_validate(head["agent_definition"])
        rows = []
        for n, ln in enumerate(lines[1:], start=2):
            d = orjson.loads(ln)
            if d.pop("kind", None) != "row":
                raise ScenarioError(f"{where}:{n} is not a scenario row")
            rows.append(ScenarioRow.model_validate(d))
    except ValidationError as exc:  # what is wrong, where; not pydantic's text
        raise ScenarioError(f"{where}:{n}: invalid scenario file: {validation_text(exc)}") from None
    except (orjson.JSONDecodeError, ValueError) as exc:
        raise ScenarioError(f"{where}:{n}: invalid scenario file: {str(exc).splitlines()[0]}") from None
    scenario = dict(head["scenario"])
    named = (scenario.get("agent_name"), scenario.get("agent_version"))
    if named != (agent.agent_name, agent.version):
        raise ScenarioError(f"{where}: the scenario names agent {named[0]} v{named[1]} but its agent definition is "
                            f"{agent.agent_name} v{agent.version}; make them the same in the file")
    if scenario.get("row_count") != len(rows):
        raise ScenarioError(f"{where}: the header says {scenario.get('row_count')} rows, the file has {len(rows)}")
    return scenario, agent, rows


def _differences(old: list[str], new: list[str]) -> str:
    """What differs between two exports of a scenario, in a few words: its header, its rows."""
    heads = [orjson.loads(x[0]) for x in (old, new)]
    what = [f"its {k.replace('_', ' ')}" for k in sorted(set(heads[0]["scenario"]) | set(heads[1]["scenario"]))
            if heads[0]["scenario"].get(k) != heads[1]["scenario"].get(k)]
    if heads[0]["agent_definition"] != heads[1]["agent_definition"]:
        what.append("its agent definition")
    rows = [i for i, (a, b) in enumerate(zip(old[1:], new[1:], strict=False)) if a != b]
    if rows:
        shown = ", ".join(map(str, rows[:8])) + (", ..." if len(rows) > 8 else "")
        what.append(f"row{'s' if len(rows) > 1 else ''} {shown}")
    if len(old) != len(new):
        what.append(f"{len(new) - 1} rows instead of {len(old) - 1}")
    return ", ".join(what) or "its bytes"


def _store_agent(con, agent: AgentDefinition, project: str | None, as_new: bool) -> AgentDefinition:
    """The file's agent definition in this catalog: inserted when the catalog has none of that
    name and version; the same one reused; another one refused, or with ``as_new`` stored as the
    next version of that agent (:func:`save_agent_definition`)."""
    a = catalog.one(con, "get_agent_definition", {"agent_name": agent.agent_name, "version": agent.version})
    if a is None:
        con.execute(catalog.sql("insert_agent_definition"), {
            "agent_name": agent.agent_name, "version": agent.version, "project": project,
            "description": agent.description, "system_prompt": agent.system_prompt, "tools": _dumps(agent.tools),
            "model": agent.model, "agent_type": agent.agent_type, "created_at": agent.created_at or now()})
        return agent
    if (a["system_prompt"], orjson.loads(a["tools"] or "[]"), a["model"]) == (agent.system_prompt, agent.tools,
                                                                            agent.model):
        return agent
    if not as_new:
        raise ScenarioError(f"agent {agent.agent_name} v{agent.version} differs in this catalog; import the file "
                            "with --as-new (its agent becomes a new version), or into another data dir")
    return save_agent_definition(con, agent, project)[0]


def import_scenario(con, path: Path, as_new: bool = False) -> dict[str, Any]:
    """Import an exported scenario. Without ``as_new``: with its ids; the same file twice is a
    no-op, a file whose scenario this catalog holds with other content (an edited export) is
    refused with what differs, suggesting ``as_new``. With ``as_new``: a new scenario (a new id)
    whose ``derived_from`` is the file's scenario id; an edited agent definition becomes a new
    version of its agent."""
    if not path.is_file():
        raise ScenarioError(f"no such scenario file: {path}")
    scenario, agent, rows = parse_export(path.read_text().splitlines(), str(path))
    scenario = {**scenario, "derived_from": scenario.get("derived_from"),
                "created_at": datetime.fromisoformat(scenario["created_at"])}
    if as_new:
        return _import_as_new(con, scenario, agent, rows)
    existing = con.execute(catalog.sql("get_scenario"), {"scenario_id": scenario["scenario_id"]}).fetchone()
    if existing:
        old, old_rows, old_agent = get_scenario(con, scenario["scenario_id"])
        before, after = export_lines(old, old_rows, old_agent), export_lines(scenario, rows, agent)
        if before == after:
            return {"scenario_id": scenario["scenario_id"], "rows": len(rows), "imported": False}
        raise ScenarioError(f"{path} holds scenario {scenario['scenario_id']} with other content than this catalog's "
                            f"(it differs in {_differences(before, after)}); to keep both, import it as a new scenario "
                            f"derived from it: replay scenarios import {path} --as-new")
    _store_agent(con, agent, scenario.get("project"), as_new=False)
    store_scenario(con, scenario, rows)
    return {"scenario_id": scenario["scenario_id"], "rows": len(rows), "imported": True}


def _import_as_new(con, scenario: dict[str, Any], agent: AgentDefinition, rows: list[ScenarioRow]) -> dict[str, Any]:
    stored = _store_agent(con, agent, scenario.get("project"), as_new=True)
    new = {**scenario, "scenario_id": "scn_" + uuid.uuid4().hex[:12], "derived_from": scenario["scenario_id"],
           "source": "import", "agent_name": stored.agent_name, "agent_version": stored.version, "created_at": now()}
    store_scenario(con, new, rows)
    return {"scenario_id": new["scenario_id"], "derived_from": scenario["scenario_id"], "rows": len(rows),
            "imported": True, "agent_name": stored.agent_name, "agent_version": stored.version}


# --------------------------------------------------------------------------- Prefect task
