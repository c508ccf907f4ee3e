"""Contracts of the evaluation stage (issue 5). No I/O here.

Evaluators are small classes with a ``name``, a ``version``, a ``level`` ("turn" or "chat")
and one ``evaluate(ctx)`` method (pydantic_evals' design). Their scores go to one long table,
``eval_scores``: one row per (chat, turn or NULL, evaluator).
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from models.scenario import ScenarioRow

Level = Literal["turn", "chat"]
Aggregation = Literal["pass_rate", "mean"]
MetricKind = Literal["quality", "cost"]


class MetricSpec(BaseModel):
    """What an evaluator measures and how its scores become one number (its metric), and how a
    change of that number is judged. Every surface (execution_metrics, ``replay run``,
    ``compare``, the report, the nightly summary) reads it; no name list elsewhere.

    - ``aggregation``: ``pass_rate`` — the share of scored items (turns or chats) that passed,
      in % (0..100); ``mean`` — the mean of the values, in ``unit``.
    - ``kind``: ``quality`` — a chat that failed fails it (0 %, or the bottom of the scale);
      ``cost`` — measured on completed chats only, and compared only on the production
      conversations both sides completed (a crash is not a saving).
    - ``min_effect`` / ``min_effect_rel``: the smallest change worth calling a change, in
      ``unit``: the larger of ``min_effect`` and ``min_effect_rel`` x the baseline's value.
    """

    name: str
    label: str = ""  # for people: "Ground truth match"
    measures: str = ""  # one line: what the number says
    level: Level = "chat"
    aggregation: Aggregation = "mean"
    kind: MetricKind = "quality"
    unit: str = ""  # %, /10, ms, tokens, turns
    scale: tuple[float | None, float | None] = (None, None)  # of the metric (bounds when known)
    higher_is_better: bool = True
    threshold: float | None = None  # a score passes at or above it (pass_rate metrics), when the evaluator has one
    min_effect: float = 0.0
    min_effect_rel: float = 0.0
    digits: int = 1  # how many decimals every surface shows
    column: str = ""  # its execution_metrics column; "" = avg_<name>
    rank: int = 100  # where it stands among the metrics (tables, cards)

    @property
    def metric_column(self) -> str:
        return self.column or "avg_" + "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in self.name.lower())

    def effect_floor(self, baseline: float | None) -> float:
        """The smallest change of this metric that counts, next to a baseline value."""
        rel = self.min_effect_rel * abs(baseline) if baseline is not None else 0.0
        return max(self.min_effect, rel)

    def worst(self) -> float:
        """The value a failed chat gets on a quality metric."""
        if self.aggregation == "pass_rate":
            return 0.0 if self.higher_is_better else 100.0
        lo, hi = self.scale
        bound = lo if self.higher_is_better else hi
        return float(bound) if bound is not None else 0.0


class EvalContext(BaseModel):
    """What an evaluator sees. ``turn_index`` is None for a chat-level evaluation."""

    chat: dict[str, Any]  # a row of the `chats` view
    # the chat's rows of the `chat_turns` view, in order (tool_calls parsed); texts cut to
    # settings.eval_text_chars characters, a turn with a longer one has truncated: {text: full length}
    turns: list[dict[str, Any]]
    row: ScenarioRow | None = None  # the scenario row (production's turns), None when it is gone
    turn_index: int | None = None
    settings: Any = None  # for evaluators that call a model (llm_base_url, llm_model, ...)
    tool_match: Any = None  # the run's ToolMatchConfig (--tool-match): how tool calls are compared
    tool_descriptions: dict[str, str] = {}  # the agent definition's tools: name -> description

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
    detail: dict[str, Any] | None = None  # what the evaluator saw (similarity, facts, calls...), kept as JSON


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
    detail: dict[str, Any] | None = Field(default=None)
    evaluated_at: Any = None  # when it was scored (a score kept from an earlier evaluation); None: now


class EvaluationPlan(BaseModel):
    """What ``replay evaluate`` re-runs and what it keeps (tasks.evaluate.stage.plan_evaluation)."""

    refs: list[str] = Field(default_factory=list)  # the custom evaluators run (module:Class), with the built-ins
    recorded: bool = False  # refs are those the execution was last scored with
    only: str | None = None  # re-run this evaluator alone (its name, or its module:Class)
    keep: list[str] = Field(default_factory=list)  # evaluators whose scores are kept as they are
    note: str | None = None  # one line for the user when something is kept that they might not expect
