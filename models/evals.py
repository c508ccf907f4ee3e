"""Contracts of the evaluation stage (issue 5). No I/O here.

Evaluators are small classes with a ``name``, a ``version``, a ``level`` ("turn" or "chat")
and one ``evaluate(ctx)`` method (pydantic_evals' design). Their scores go to one long table,
``eval_scores``: one row per (chat, turn or NULL, evaluator).
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel

from models.scenario import ScenarioRow

Level = Literal["turn", "chat"]


class EvalContext(BaseModel):
    """What an evaluator sees. ``turn_index`` is None for a chat-level evaluation."""

    chat: dict[str, Any]  # a row of the `chats` view
    turns: list[dict[str, Any]]  # the chat's rows of the `chat_turns` view, in order (tool_calls parsed)
    row: ScenarioRow | None = None  # the scenario row (production's turns), None when it is gone
    turn_index: int | None = None
    settings: Any = None  # for evaluators that call a model (llm_base_url, llm_model, ...)

    model_config = {"arbitrary_types_allowed": True}

    @property
    def turn(self) -> dict[str, Any] | None:
        if self.turn_index is None:
            return None
        return next((t for t in self.turns if t["turn_index"] == self.turn_index), None)


class EvalResult(BaseModel):
    """One score. ``value`` is a number on the evaluator's own scale (0..1 for matches, 1..10 for
    csat, ms for latency); ``passed`` None when pass/fail does not apply."""

    value: float | None = None
    label: str | None = None
    passed: bool | None = None
    reason: str | None = None
    source: str = "heuristic"  # "heuristic", "llm:<model>", "metric", "custom"


class Evaluator(Protocol):
    name: str
    version: str
    level: Level

    def evaluate(self, ctx: EvalContext) -> EvalResult: ...


class EvalScore(BaseModel):
    """A row of ``eval_scores``."""

    execution_id: str
    chat_id: str
    turn_index: int | None = None
    evaluator: str
    evaluator_version: str
    value: float | None = None
    label: str | None = None
    passed: bool | None = None
    reason: str | None = None
    source: str = "heuristic"
    error: str | None = None  # the evaluator failed on this chat/turn: a failure row, not a crash
