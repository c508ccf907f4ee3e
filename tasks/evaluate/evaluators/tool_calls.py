"""``tool_call_match`` and ``tool_name_match``: a replayed turn's tool calls against production's,
matched the way a careful reviewer would (:mod:`tasks.simulate.toolmatch`): the calls pair up
under the run's trajectory mode (default: unordered), and two calls of one tool match when their
KEY arguments (ids, codes, amounts, dates, enums...) agree; FREE TEXT (a reason, a note, a query)
is compared by meaning, never required to be equal. Per-tool overrides: ``replay run
--tool-match FILE``.

- ``tool_call_match`` passes when the turn made production's calls, with the same key arguments
  (``value`` is the F1 over calls matched by name and key arguments);
- ``tool_name_match`` passes when the tool names pair up, arguments aside (``value`` 1/0).

A turn with no production turn (a simulated user's turn, a turn past production's) is not
scored. ``detail`` keeps names_ok, args_ok, precision, recall, the missing, extra and differing
calls and the notes on free text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from models.evals import EvalContext, EvalResult, MetricSpec
from tasks.evaluate.evaluators.base import TurnEvaluator, call_list, production_calls
from tasks.simulate.toolmatch import TurnMatch, match_turn


def tool_call_scores(actual: Iterable[Any], expected: Iterable[Any], config: Any = None) -> tuple[float, float, float]:
    """(precision, recall, F1) of two tool-call lists, calls matched by name and key arguments."""
    m = match_turn(list(actual), list(expected), config)
    return m.precision, m.recall, m.f1


def _detail(m: TurnMatch) -> dict[str, Any]:
    return {"names_ok": m.names_ok, "args_ok": m.args_ok, "precision": round(m.precision, 4),
            "recall": round(m.recall, 4), "f1": round(m.f1, 4), "missing": list(m.missing),
            "extra": list(m.extra), "differing": list(m.differing), "notes": list(m.notes),
            "text_similarity": None if m.text_similarity is None else round(m.text_similarity, 4)}


def _reason(m: TurnMatch, n_actual: int, n_expected: int) -> str:
    if not n_actual and not n_expected:
        return "no tool calls, as in production"
    parts = [f"names {'match' if m.names_ok else 'differ'}, key arguments {'match' if m.args_ok else 'differ'} "
             f"(precision {m.precision:.2f}, recall {m.recall:.2f})"]
    parts += [*m.missing, *m.extra, *m.differing, *m.notes]
    return "; ".join(parts)


class ToolCallMatch(TurnEvaluator):
    """The turn's tool calls vs production's: the same tools with the same key arguments."""

    spec = MetricSpec(
        name="tool_call_match", label="Tool call match", level="turn", aggregation="pass_rate", unit="%",
        scale=(0.0, 100.0), min_effect=5.0, rank=20,
        measures="share of production's turns whose tool calls the replay made: the same tools with the same key "
                 "arguments (free text compared by meaning, not required to be equal)")

    def production(self, ctx: EvalContext) -> list[Any] | None:
        return production_calls(ctx)

    def compare(self, ctx: EvalContext, turn: Mapping[str, Any], expected: list[Any]) -> EvalResult:
        actual = call_list(turn.get("tool_calls"))
        m = match_turn(actual, expected, ctx.tool_match)
        label = "match" if m.passed else ("arguments_differ" if m.names_ok else "tools_differ")
        return EvalResult(value=m.f1, label=label, passed=m.passed, reason=_reason(m, len(actual), len(expected)),
                          detail=_detail(m))


class ToolNameMatch(TurnEvaluator):
    """The turn's tool names vs production's, arguments aside."""

    spec = MetricSpec(
        name="tool_name_match", label="Tool name match", level="turn", aggregation="pass_rate", unit="%",
        scale=(0.0, 100.0), min_effect=5.0, rank=25,
        measures="share of production's turns in which the replay called the same tools (arguments aside)")

    def production(self, ctx: EvalContext) -> list[Any] | None:
        return production_calls(ctx)

    def compare(self, ctx: EvalContext, turn: Mapping[str, Any], expected: list[Any]) -> EvalResult:
        actual = call_list(turn.get("tool_calls"))
        m = match_turn(actual, expected, ctx.tool_match)
        return EvalResult(value=1.0 if m.names_ok else 0.0, label="match" if m.names_ok else "tools_differ",
                          passed=m.names_ok, reason=_reason(m, len(actual), len(expected)), detail=_detail(m))
