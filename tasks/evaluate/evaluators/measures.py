"""Measures as evaluators (source ``metric``, passed None): ``latency`` (the chat's average
turn latency, ms), ``input_tokens``, ``output_tokens``, ``turn_count``. Each is taken from the
chat row, or computed from the chat's turns when the row lacks it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from models.evals import EvalContext, EvalResult
from tasks.evaluate.evaluators.base import Evaluator, finite

Turns = list[dict[str, Any]]


class Measure(Evaluator):
    """A number the chat row holds (``column``), else ``from_turns(turns)``."""

    level: Literal["chat"] = "chat"
    source = "metric"
    unit = ""
    column = ""

    @staticmethod
    def from_turns(turns: Turns) -> float | None:
        raise NotImplementedError

    def evaluate(self, ctx: EvalContext) -> EvalResult:
        v = ctx.chat.get(self.column)
        v = float(v) if finite(v) else self.from_turns(ctx.turns)
        if v is None:
            return EvalResult(reason="no turns to measure", source="metric")
        return EvalResult(value=float(v), reason=f"{v:g}{self.unit}", source="metric")


def _mean_latency(turns: Turns) -> float | None:
    lat = [t["latency_ms"] for t in turns if finite(t.get("latency_ms"))]
    return sum(lat) / len(lat) if lat else None


def _token_sum(column: str) -> Callable[[Turns], float]:
    return lambda turns: float(sum(t.get(column) or 0 for t in turns))


def _measure(class_name: str, name: str, rank: int, unit: str, column: str,
             from_turns: Callable[[Turns], float | None], doc: str) -> type[Measure]:
    """A Measure subclass (registered among the built-ins as it is made)."""
    return type(class_name, (Measure,), {"name": name, "rank": rank, "unit": unit, "column": column,
                                         "from_turns": staticmethod(from_turns), "__doc__": doc,
                                         "__module__": __name__})


Latency = _measure("Latency", "latency", 50, " ms", "avg_latency_ms", _mean_latency,
                   "The chat's average turn latency (ms).")
InputTokens = _measure("InputTokens", "input_tokens", 60, " tokens", "input_tokens", _token_sum("input_tokens"),
                       "The chat's input tokens.")
OutputTokens = _measure("OutputTokens", "output_tokens", 70, " tokens", "output_tokens",
                        _token_sum("output_tokens"), "The chat's output tokens.")
TurnCount = _measure("TurnCount", "turn_count", 80, " turns", "turn_count", lambda turns: float(len(turns)),
                     "The chat's turns.")
