"""``tool_call_match``: the turn's tool calls against production's."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from models.evals import EvalContext, EvalResult, MetricSpec
from tasks.evaluate.evaluators.base import TurnEvaluator, call_list, field, production_calls
from tasks.simulate.divergence import canonical_json, tool_call_differences


def _call_key(call: Any) -> tuple[str | None, str]:
    return field(call, "name"), canonical_json(field(call, "arguments"))


def tool_call_scores(actual: Iterable[Any], expected: Iterable[Any]) -> tuple[float, float, float]:
    """(precision, recall, F1) of two tool-call lists compared as multisets of (name,
    canonical arguments). No calls made -> precision 1.0; none expected -> recall 1.0;
    F1 0.0 when nothing matched and either side has calls; both empty -> (1, 1, 1)."""
    have = Counter(_call_key(c) for c in actual)
    want = Counter(_call_key(c) for c in expected)
    n_have, n_want = sum(have.values()), sum(want.values())
    if n_have == 0 and n_want == 0:
        return 1.0, 1.0, 1.0
    tp = sum((have & want).values())
    precision = tp / n_have if n_have else 1.0
    recall = tp / n_want if n_want else 1.0
    f1 = 0.0 if tp == 0 else 2 * precision * recall / (precision + recall)
    return precision, recall, f1


class ToolCallMatch(TurnEvaluator):
    """The turn's tool calls (names + arguments) vs production's: value = F1."""

    spec = MetricSpec(
        name="tool_call_match", label="Tool call match", level="turn", aggregation="pass_rate", unit="%",
        scale=(0.0, 100.0), min_effect=5.0, rank=20,
        measures="share of production's turns whose tool calls the replay made: the same tools with the same key "
                 "arguments")
    version = "1"

    def production(self, ctx: EvalContext) -> list[Any] | None:
        return production_calls(ctx)

    def compare(self, turn: Mapping[str, Any], expected: list[Any]) -> EvalResult:
        actual = call_list(turn.get("tool_calls"))
        p, r, f1 = tool_call_scores(actual, expected)
        label = "match" if f1 == 1.0 else ("partial" if f1 > 0 else "mismatch")
        reason = f"precision {p:.2f}, recall {r:.2f}, F1 {f1:.2f}"
        if not actual and not expected:
            reason = "no tool calls, as in production"
        else:
            diffs = tool_call_differences(actual, expected)
            if diffs:
                reason += ": " + ", ".join(diffs)
        return EvalResult(value=f1, label=label, passed=f1 == 1.0, reason=reason)
