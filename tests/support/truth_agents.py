"""Agents whose truth is known, for judging scores and comparisons (test support).

Each is loaded as ``truth_agents:NAME`` (``tests/support`` on ``sys.path``) and looks production up
in the run's catalog by ``metadata["origin_id"]`` (a session id, or a trace id for a trace
replay), in any project:

- ``oracle``: exactly production's answer and tool calls, turn by turn;
- ``reworded``: production's tool calls; the answer replaced by its rewording (same facts,
  other words);
- ``reworded_args``: production's answers; the same tool calls with the same key arguments and
  every free-text argument (:data:`truth_data.FREE_TEXT_ARGS`) reworded;
- ``echo``: "You said: <the user's message>", no tool call;
- ``skip_writes``: production's answers and read tool calls, but no state-changing call
  (:data:`truth_data.WRITE_TOOLS`);
- ``crash_from_turn_2``: production's behaviour on the first turn; from the second turn on it
  raises ``RuntimeError("agent crashed on turn N")`` (N counted from 1).

Rewordings come from ``tests/cases/truth/sample_paraphrases.json`` and
``sample_free_text.json`` (the bundled sample) and from every generated set's ``manifest.json``
(``answer_rewordings``, ``argument_rewordings``): found next to the files production's spans
were ingested from (the manifest in the folder of a trace file or the one above it), or named
by ``TRUTH_MANIFESTS`` (paths separated by ``os.pathsep``). A text without a rewording is used
as is and counted in :data:`MISSING` (``missing()`` / ``reset_missing()``); on the sample and
the generated set that never happens.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any

from truth_data import FREE_TEXT_ARGS, WRITE_TOOLS

from models.simulate import AgentResponse

CASES = Path(__file__).resolve().parent.parent / "cases" / "truth"
MISSING: Counter = Counter()  # ("answer" | "argument") -> uses of a text without a rewording
MISSING_TEXTS: set[str] = set()
_LOCK = threading.Lock()


# --------------------------------------------------------------------------- production
@lru_cache(maxsize=16)
def production(data_dir: str) -> dict[str, list[dict[str, Any]]]:
    """{origin id (session or trace): production turns in order} from the catalog (read-only);
    each turn: answer, tool_calls [{id, name, arguments (parsed), status}], tokens."""
    from models.settings import load_settings
    from tasks.store import catalog

    with catalog.reader(load_settings(data_dir=data_dir)) as con:
        rows = con.execute("select session_id, trace_id, assistant_message, to_json(tool_calls)::varchar, "
                           "input_tokens, output_tokens from turns "
                           "order by session_id, turn_index, started_at").fetchall()
    out: dict[str, list[dict[str, Any]]] = {}
    for session_id, trace_id, answer, calls, tokens_in, tokens_out in rows:
        turn = {"answer": answer, "tool_calls": _calls(calls),
                "usage": {"input_tokens": tokens_in or 0, "output_tokens": tokens_out or 0}}
        out.setdefault(trace_id, []).append(turn)
        if session_id:
            out.setdefault(session_id, []).append(turn)
    return out


def _calls(text: str | None) -> list[dict[str, Any]]:
    calls = []
    for c in json.loads(text) if text else []:
        args = c.get("arguments")
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except ValueError:
                pass
        calls.append({"id": c.get("id"), "name": c.get("name"), "arguments": args, "status": c.get("status")})
    return calls


def _turn(input) -> dict[str, Any] | None:
    turns = production(str(input.metadata["replay_data_dir"])).get(input.metadata["origin_id"], [])
    return turns[input.turn_index] if input.turn_index < len(turns) else None


# --------------------------------------------------------------------------- rewordings
@lru_cache(maxsize=16)
def rewordings(data_dir: str) -> tuple[dict[str, str], dict[str, str]]:
    """(answer rewordings, free-text argument rewordings): the sample's and every manifest found."""
    answers = json.loads((CASES / "sample_paraphrases.json").read_text())
    arguments = json.loads((CASES / "sample_free_text.json").read_text())
    for manifest in _manifests(data_dir):
        data = json.loads(manifest.read_text())
        answers.update(data.get("answer_rewordings") or {})
        arguments.update(data.get("argument_rewordings") or {})
    return answers, arguments


def _manifests(data_dir: str) -> list[Path]:
    """The manifest.json files next to the trace files of the catalog's spans, and those named by
    ``TRUTH_MANIFESTS``."""
    from models.settings import load_settings
    from tasks.store import catalog

    with catalog.reader(load_settings(data_dir=data_dir)) as con:
        locations = [r[0] for r in con.execute(
            "select distinct regexp_replace(location, ':[0-9]+$', '') from spans "
            "where source = 'otlp_file'").fetchall()]
    found: list[Path] = []
    for loc in locations:
        f = Path(loc)
        for folder in (f.parent, f.parent.parent):
            m = folder / "manifest.json"
            if m.is_file() and m not in found:
                found.append(m)
    for name in filter(None, os.environ.get("TRUTH_MANIFESTS", "").split(os.pathsep)):
        if Path(name).is_file() and Path(name) not in found:
            found.append(Path(name))
    return found


def _reworded(kind: str, text: str | None, table: dict[str, str]) -> str | None:
    if text is None:
        return None
    other = table.get(text)
    if other is None:
        with _LOCK:
            MISSING[kind] += 1
            MISSING_TEXTS.add(text)
        return text
    return other


def missing() -> dict[str, int]:
    """How often a text had no rewording (and was used as is) since the last reset."""
    with _LOCK:
        return dict(MISSING)


def reset_missing() -> None:
    with _LOCK:
        MISSING.clear()
        MISSING_TEXTS.clear()


def reword_arguments(name: str, arguments: Any, table: dict[str, str]) -> Any:
    """The arguments with every free-text one of the tool reworded; key arguments unchanged."""
    if not isinstance(arguments, dict):
        return arguments
    out = dict(arguments)
    for key in FREE_TEXT_ARGS.get(name, ()):
        if isinstance(out.get(key), str):
            out[key] = _reworded("argument", out[key], table)
    return out


# --------------------------------------------------------------------------- making the calls
async def _play(input, calls: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Make ``calls`` through the run's tools (recorded results); (tool_calls, tool_responses)."""
    made, responses = [], []
    for c in calls:
        result = await input.tools.call(c["name"], c["arguments"]) if input.tools is not None else None
        made.append({"id": c["id"], "name": c["name"], "arguments": c["arguments"]})
        responses.append({"id": c["id"], "name": c["name"], "result": result})
    return made, responses


async def _respond(input, answer: str | None, calls: list[dict[str, Any]], usage: dict[str, int]) -> AgentResponse:
    made, responses = await _play(input, calls)
    return AgentResponse(content=answer, tool_calls=made, tool_responses=responses, metadata={"usage": usage})


# --------------------------------------------------------------------------- the agents
async def oracle(input) -> AgentResponse:
    turn = _turn(input)
    if turn is None:
        return AgentResponse(content=None)
    return await _respond(input, turn["answer"], turn["tool_calls"], turn["usage"])


async def reworded(input) -> AgentResponse:
    turn = _turn(input)
    if turn is None:
        return AgentResponse(content=None)
    answers, _ = rewordings(str(input.metadata["replay_data_dir"]))
    return await _respond(input, _reworded("answer", turn["answer"], answers), turn["tool_calls"], turn["usage"])


async def reworded_args(input) -> AgentResponse:
    turn = _turn(input)
    if turn is None:
        return AgentResponse(content=None)
    _, arguments = rewordings(str(input.metadata["replay_data_dir"]))
    calls = [{**c, "arguments": reword_arguments(c["name"], c["arguments"], arguments)} for c in turn["tool_calls"]]
    return await _respond(input, turn["answer"], calls, turn["usage"])


async def echo(input) -> AgentResponse:
    text = input.new_message.get("content") or ""
    answer = f"You said: {text}"
    return AgentResponse(content=answer, metadata={"usage": {"input_tokens": len(text.split()),
                                                             "output_tokens": len(answer.split())}})


async def skip_writes(input) -> AgentResponse:
    turn = _turn(input)
    if turn is None:
        return AgentResponse(content=None)
    reads = [c for c in turn["tool_calls"] if c["name"] not in WRITE_TOOLS]
    return await _respond(input, turn["answer"], reads, turn["usage"])


async def crash_from_turn_2(input) -> AgentResponse:
    if input.turn_index >= 1:
        raise RuntimeError(f"agent crashed on turn {input.turn_index + 1}")
    return await oracle(input)


AGENTS = ("oracle", "reworded", "reworded_args", "echo", "skip_writes", "crash_from_turn_2")

__all__ = [*AGENTS, "AGENTS", "missing", "production", "reset_missing", "reword_arguments", "rewordings"]
