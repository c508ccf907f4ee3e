"""Measures as evaluators (source ``metric``, passed None): ``latency`` (the chat's average
turn latency, ms), ``input_tokens``, ``output_tokens``, ``turn_count``. Each is taken from the
chat row, or computed from the chat's turns when the row lacks it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from models.evals import EvalContext, EvalResult, MetricSpec
from tasks.evaluate.evaluators.base import Evaluator, finite

Turns = list[dict[str, Any]]


class Measure(Evaluator):
    """A number the chat row holds (``column``), else ``from_turns(turns)``."""

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


def _measure(class_name: str, spec: MetricSpec, unit: str, from_turns: Callable[[Turns], float | None],
             column: str) -> type[Measure]:
    """A Measure subclass (registered among the built-ins as it is made). Measures are costs:
    lower is better, measured on completed chats only; a change counts from
    max(min_effect, 5 % of the baseline)."""
    return type(class_name, (Measure,), {"spec": spec, "unit": unit, "column": column,
                                         "from_turns": staticmethod(from_turns), "__doc__": spec.measures,
                                         "__module__": __name__})


def _cost(name: str, label: str, unit: str, min_effect: float, digits: int, rank: int, column: str,
          measures: str) -> MetricSpec:
    return MetricSpec(name=name, label=label, level="chat", aggregation="mean", kind="cost", unit=unit,
                      scale=(0.0, None), higher_is_better=False, min_effect=min_effect, min_effect_rel=0.05,
                      digits=digits, column=column, rank=rank, measures=measures)


Latency = _measure("Latency", _cost("latency", "Latency", "ms", 10.0, 0, 50, "avg_chat_latency_ms",
                                    "the chat's average turn latency"), " ms", _mean_latency, "avg_latency_ms")
InputTokens = _measure("InputTokens", _cost("input_tokens", "Input tokens", "tokens", 5.0, 1, 60, "avg_input_tokens",
                                            "the chat's prompt tokens"), " tokens", _token_sum("input_tokens"),
                       "input_tokens")
OutputTokens = _measure("OutputTokens", _cost("output_tokens", "Output tokens", "tokens", 5.0, 1, 70,
                                              "avg_output_tokens", "the chat's completion tokens"), " tokens",
                        _token_sum("output_tokens"), "output_tokens")
TurnCount = _measure("TurnCount", _cost("turn_count", "Turns", "turns", 0.25, 2, 80, "avg_turn_count",
                                        "the chat's turns"), " turns", lambda turns: float(len(turns)), "turn_count")
