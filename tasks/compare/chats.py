"""A replayed chat against the production conversation it replays, turn by turn: where it
first left production and why (the divergence test of the run, :func:`tasks.simulate.divergence.diverged`),
the answers' word-level differences, and each tool call with where its answer came from.
Pure functions but :func:`chat_diff` (which reads one chat from the catalog)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from typing import Any

from tasks.common.text import json_text

_WORD = re.compile(r"\S+")
MAX_WORDS = 5000  # words a side that are diffed (difflib is quadratic); longer answers: replaced whole


def word_diff(production: str | None, replay: str | None) -> list[dict[str, str]]:
    """``production`` -> ``replay`` word by word (difflib on the words; white space is no
    difference): ``[{op: equal|delete|insert, text}]`` in reading order, a replaced run of words
    as its deletion then its insertion. Joining the ``equal`` and ``insert`` texts with spaces
    gives the replay's words; ``equal`` and ``delete``, production's. An answer of more than
    :data:`MAX_WORDS` words is not diffed: all of production's deleted, all of the replay's inserted."""
    a, b = _WORD.findall(production or ""), _WORD.findall(replay or "")
    out: list[dict[str, str]] = []
    if len(a) > MAX_WORDS or len(b) > MAX_WORDS:
        return [{"op": op, "text": " ".join(w)} for op, w in (("delete", a), ("insert", b)) if w]

    def add(op: str, words: Sequence[str]) -> None:
        if words:
            out.append({"op": op, "text": " ".join(words)})

    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            add("equal", a[i1:i2])
        else:
            add("delete", a[i1:i2])
            add("insert", b[j1:j2])
    return out


def _field(call: Any, key: str) -> Any:
    return call.get(key) if isinstance(call, dict) else getattr(call, key, None)


def call_view(call: Any, replayed: bool) -> dict[str, Any]:
    """A tool call as a comparison shows it: name, arguments (JSON text), status, and for a
    replayed call where its answer came from (recorded / nearest / live / off_script) and the
    production turn that answered it."""
    view = {"name": _field(call, "name"), "arguments": json_text(_field(call, "arguments")),
            "status": _field(call, "status")}
    if replayed:
        view.update(source=_field(call, "source"), matched_turn=_field(call, "matched_turn"))
    return view


def divergence_of(turn: dict[str, Any], prod: Any, options: Any, model: Any = None) -> dict[str, Any]:
    """Why a replayed turn left production: ``{turn_index, why, reason}``; ``why`` is
    ``answer``, ``tool calls`` or ``answer, tool calls`` (short), ``reason`` the test's one line
    (e.g. ``tool calls differ: issue_refund missing; answer differs: missing 1 fact(s): 54; ...``).
    The run's own test, with its threshold and tool-match config."""
    from tasks.simulate.divergence import diverged

    _div, _sim, reason = diverged(turn.get("assistant_message"), _field(prod, "assistant_message") if prod else None,
                                  turn.get("tool_calls") or [], _field(prod, "tool_calls") or [] if prod else [],
                                  getattr(options, "divergence_threshold", None),
                                  config=getattr(options, "tool_match", None), model=model)
    why = [w for w, key in (("answer", "answer differs"), ("tool calls", "tool calls differ")) if key in reason]
    return {"turn_index": turn["turn_index"], "why": ", ".join(why) or "(no longer diverges)", "reason": reason}


def diverged_rows(diverged: Iterable[dict[str, Any]], replays: dict[int, int] | None = None) -> list[dict[str, Any]]:
    """The diverged chats grouped by scenario row, first divergent turn and why (the
    repetitions of a row that left production at the same turn for the same kind of reason are
    one line): ``[{row_index, origin_id, turn_index, why, chats, of, example_chat_id, reason}]``,
    in row order; ``of``: the row's chats (``replays``: row index -> chats)."""
    groups: dict[tuple, dict[str, Any]] = {}
    for d in diverged:
        key = (d["row_index"], d["turn_index"], d["why"])
        g = groups.setdefault(key, {"row_index": d["row_index"], "origin_id": d["origin_id"],
                                    "turn_index": d["turn_index"], "why": d["why"], "chats": 0,
                                    "of": (replays or {}).get(d["row_index"]),
                                    "example_chat_id": d["chat_id"], "reason": d["reason"]})
        g["chats"] += 1
    return [groups[k] for k in sorted(groups, key=lambda k: (k[0], k[1], k[2]))]


def turn_diffs(turns: list[dict[str, Any]], prod: list[Any], divergence_turn: int | None) -> list[dict[str, Any]]:
    """Each turn of a chat beside production's: the user's message, both answers and their
    word-level differences, both turns' tool calls (the replay's with their answer source)."""
    out = []
    for i in range(max(len(turns), len(prod))):
        t = turns[i] if i < len(turns) else None
        p = prod[i] if i < len(prod) else None
        production = _field(p, "assistant_message") if p else None
        replayed = t["assistant_message"] if t else None
        out.append({
            "turn_index": i, "diverged": divergence_turn == i,
            "user_message": t["user_message"] if t else _field(p, "user_message") if p else None,
            "user_source": t.get("user_source") if t else None,
            "production": production, "replayed": replayed, "similarity": t["similarity"] if t else None,
            "error": t.get("error") if t else None,
            "words": word_diff(production, replayed),
            "production_tool_calls": [call_view(c, False) for c in (_field(p, "tool_calls") or [] if p else [])],
            "replayed_tool_calls": [call_view(c, True) for c in (t["tool_calls"] if t else [])],
        })
    return out


def chat_diff(con, execution_id: str, chat_id: str) -> dict[str, Any]:
    """One chat of an execution against production, turn by turn (:func:`turn_diffs`), with its
    first divergent turn and why (:func:`divergence_of`)."""
    from tasks.evaluate.stage import load_execution_data
    from tasks.simulate import RunError

    ex, chats, turns_by_chat, rows_by_index = load_execution_data(con, execution_id)
    chat = next((c for c in chats if c["chat_id"] == chat_id), None)
    if chat is None:
        raise RunError(f"no chat {chat_id} in execution {execution_id}; its chats: replay compare {execution_id} "
                       "--json (chats[].chat_id)")
    turns = turns_by_chat.get(chat_id, [])
    row = rows_by_index.get(chat["row_index"])
    prod = row.expected_turns if row else []
    d = chat["divergence_turn"]
    divergence = (divergence_of(turns[d], prod[d] if d < len(prod) else None, ex.options)
                  if d is not None and d < len(turns) else None)
    keep = ("chat_id", "row_index", "repetition", "origin_id", "status", "ended_reason", "error", "divergence_turn")
    return {"execution_id": execution_id, "against": "production", **{k: chat.get(k) for k in keep},
            "divergence": divergence, "turns": turn_diffs(turns, prod, d)}


__all__ = ["call_view", "chat_diff", "divergence_of", "diverged_rows", "turn_diffs", "word_diff"]
