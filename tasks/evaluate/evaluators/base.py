"""What every evaluator shares: the base class (and the registry of built-ins), and how an
evaluator reads production's side of a turn."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from models.evals import EvalContext, EvalResult, EvalScore, Level, MetricSpec

NO_PRODUCTION_ANSWER = "no production answer to compare"
NO_PRODUCTION_TURN = "no production turn to compare"
NORMAL_ENDINGS = frozenset({"script_done", "user_ended"})
ERROR_ENDINGS = frozenset({"error", "timeout", "off_script"})


# --------------------------------------------------------------------------- the base class
# the built-in evaluators, by name: every subclass of Evaluator that sets a name
BUILTINS: dict[str, type[Evaluator]] = {}


class Evaluator:
    """A built-in evaluator: a ``spec`` (its name, level, and how its scores become a metric:
    :class:`models.evals.MetricSpec`), a ``version`` and ``evaluate(ctx) -> EvalResult``.
    Subclassing it with a spec registers it among the built-ins (ordered by ``spec.rank``)."""

    spec: ClassVar[MetricSpec] = MetricSpec(name="")
    version: str = "1"
    source: str = "heuristic"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "spec" in cls.__dict__ and cls.spec.name:
            BUILTINS[cls.spec.name] = cls

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def level(self) -> Level:
        return self.spec.level

    @classmethod
    def from_settings(cls, settings: Any = None) -> Evaluator:
        """The evaluator as the settings configure it (no settings: the defaults)."""
        return cls()

    def evaluate(self, ctx: EvalContext) -> EvalResult:
        raise NotImplementedError


class TurnEvaluator(Evaluator):
    """A turn-level evaluator that holds a replayed turn against production's: ``production(ctx)``
    gives production's side (None: production had none, the turn is not scored: ``missing``
    says why), ``compare(turn, expected)`` the score."""

    missing = NO_PRODUCTION_TURN

    def production(self, ctx: EvalContext) -> Any:
        raise NotImplementedError

    def compare(self, ctx: EvalContext, turn: Mapping[str, Any], expected: Any) -> EvalResult:
        raise NotImplementedError

    def evaluate(self, ctx: EvalContext) -> EvalResult:
        turn = ctx.turn
        if turn is None:
            raise ValueError(f"turn {ctx.turn_index} is not among the chat's turns")
        expected = self.production(ctx)
        if expected is None:
            return EvalResult(reason=self.missing)
        return self.compare(ctx, turn, expected)


def infer_spec(name: str, level: str, scores: Iterable[EvalScore], declared: Mapping[str, Any] | None = None
               ) -> MetricSpec:
    """The spec of an evaluator that does not declare one fully (a custom one): what it declares,
    else a pass rate when its scores say pass/fail, else the mean of its values."""
    fields = dict(declared or {})
    if "aggregation" not in fields:
        fields["aggregation"] = "pass_rate" if any(s.passed is not None for s in scores) else "mean"
    if fields["aggregation"] == "pass_rate":
        fields.setdefault("unit", "%")
        fields.setdefault("scale", (0.0, 100.0))
    return MetricSpec(**{"name": name, "level": level, "label": name, "rank": 1000, **fields})


# --------------------------------------------------------------------------- small helpers


def field(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def call_list(value: Any) -> list[Any]:
    """A tool-call list as stored (list of dicts/models, JSON text, None) -> list."""
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    if isinstance(value, Mapping):
        return [value]
    return list(value)


def call_failed(call: Any) -> bool:
    return str(field(call, "status") or "").lower() in ("error", "failed", "failure")


def finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _production_turn_exists(ctx: EvalContext, turn: Mapping[str, Any]) -> bool:
    """Production had a turn for this user message: the user message was production's
    (not the simulated user's) and, when the row is known, production had that many turns."""
    if turn.get("user_source") == "simulated":
        return False
    if ctx.row is not None:
        return 0 <= int(turn["turn_index"]) < len(ctx.row.expected_turns)
    return True


def production_answer(ctx: EvalContext) -> str | None:
    """Production's answer to this turn's user message, or None when there is none."""
    turn = ctx.turn
    if turn is None or not _production_turn_exists(ctx, turn):
        return None
    answer = turn.get("original_assistant_message")
    if answer is None and ctx.row is not None:
        answer = ctx.row.expected_turns[int(turn["turn_index"])].assistant_message
    return answer


def production_calls(ctx: EvalContext) -> list[Any] | None:
    """Production's tool calls of this turn, or None when production had no such turn."""
    turn = ctx.turn
    if turn is None or not _production_turn_exists(ctx, turn):
        return None
    calls = call_list(turn.get("original_tool_calls"))
    if not calls and ctx.row is not None:
        calls = list(ctx.row.expected_turns[int(turn["turn_index"])].tool_calls)
    return calls
