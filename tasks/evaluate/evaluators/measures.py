"""Measures as evaluators (source ``metric``): latency, tokens, turns."""

from __future__ import annotations

from typing import Literal

from models.evals import EvalContext, EvalResult
from tasks.evaluate.evaluators.base import Evaluator, finite

# --------------------------------------------------------------------------- metrics


class _Metric(Evaluator):
    name = ""
    version = "1"
    level: Literal["chat"] = "chat"
    source = "metric"
    unit = ""

    def value(self, ctx: EvalContext) -> float | None:
        raise NotImplementedError

    def evaluate(self, ctx: EvalContext) -> EvalResult:
        v = self.value(ctx)
        if v is None:
            return EvalResult(reason="no turns to measure", source="metric")
        return EvalResult(value=float(v), reason=f"{v:g}{self.unit}", source="metric")


class Latency(_Metric):
    """The chat's average turn latency (ms)."""

    name = "latency"
    rank = 50
    unit = " ms"

    def value(self, ctx: EvalContext) -> float | None:
        v = ctx.chat.get("avg_latency_ms")
        if finite(v):
            return float(v)
        lat = [t["latency_ms"] for t in ctx.turns if finite(t.get("latency_ms"))]
        return sum(lat) / len(lat) if lat else None


class _TokenMetric(_Metric):
    unit = " tokens"

    def value(self, ctx: EvalContext) -> float | None:
        v = ctx.chat.get(self.name)
        if finite(v):
            return float(v)
        if not ctx.turns:
            return 0.0
        return float(sum(t.get(self.name) or 0 for t in ctx.turns))


class InputTokens(_TokenMetric):
    name = "input_tokens"
    rank = 60


class OutputTokens(_TokenMetric):
    name = "output_tokens"
    rank = 70


class TurnCount(_Metric):
    name = "turn_count"
    rank = 80
    unit = " turns"

    def value(self, ctx: EvalContext) -> float | None:
        v = ctx.chat.get("turn_count")
        return float(v) if finite(v) else float(len(ctx.turns))
