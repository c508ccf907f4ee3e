"""When does a replayed turn stop following production? Pure functions, no I/O.

- :func:`tool_calls_match`: the calls pair up by :func:`tasks.simulate.toolmatch.match_turn`
  (by default in any order, as multisets) and every pair's KEY arguments match (ids, codes,
  amounts, dates); free text (a reason, a note, a query) reworded is not a difference.
- :func:`diverged`: tool calls differ, or the answer does not say what production's said (the
  same test as ``ground_truth_match``: :func:`tasks.common.semantic.equivalent`); with the
  similarity and a one-line reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from tasks.common.semantic import SemanticModel, equivalent
from tasks.simulate.toolmatch import match_turn

if TYPE_CHECKING:
    from models.simulate import ToolMatchConfig

# --------------------------------------------------------------------------- tool calls


def _field(call: Any, key: str) -> Any:
    if isinstance(call, dict):
        return call.get(key)
    return getattr(call, key, None)


def tool_call_differences(actual: Iterable[Any], expected: Iterable[Any],
                          config: ToolMatchConfig | None = None) -> list[str]:
    """What differs between two lists of tool calls (dicts or models with ``name`` and
    ``arguments``), paired by :func:`tasks.simulate.toolmatch.match_turn` under ``config``
    (default: any order): ``"<name> arguments differ"`` (key arguments), ``"<name> missing"``
    (not under the ``subset`` trajectory), ``"<name> extra"`` (not under ``superset``),
    ``"<name> out of order"`` (``strict``: missing and extra at once); one line per tool,
    [] when they match. Reworded free text is no difference."""
    actual, expected = list(actual), list(expected)
    tm = match_turn(actual, expected, config)
    paired_a = {i for i, _, _ in tm.pairs}
    paired_e = {j for _, j, _ in tm.pairs}
    differ = {_field(actual[i], "name") for i, _, cm in tm.pairs if not cm.key_ok}
    missing = ({_field(c, "name") for j, c in enumerate(expected) if j not in paired_e}
               if tm.mode != "subset" else set())
    extra = ({_field(c, "name") for i, c in enumerate(actual) if i not in paired_a}
             if tm.mode != "superset" else set())
    moved = missing & extra  # strict: the same tool at another place

    def names(xs: set[Any]) -> list[str]:
        return [x or "?" for x in sorted(xs, key=str)]

    return ([f"{n} arguments differ" for n in names(differ)] + [f"{n} out of order" for n in names(moved)]
            + [f"{n} missing" for n in names(missing - moved)] + [f"{n} extra" for n in names(extra - moved)])


def tool_calls_match(actual: Iterable[Any], expected: Iterable[Any],
                     config: ToolMatchConfig | None = None) -> bool:
    """The calls pair up under ``config``'s trajectory mode (default: any order) and their
    key arguments match (:func:`tasks.simulate.toolmatch.match_turn` ``passed``)."""
    return match_turn(actual, expected, config).passed


def diverged(answer: str | None, expected_answer: str | None, tool_calls: Iterable[Any],
             expected_tool_calls: Iterable[Any], threshold: float | None = None,
             config: ToolMatchConfig | None = None, model: SemanticModel | None = None) -> tuple[bool, float, str]:
    """``(diverged, similarity, reason)``: diverged when the tool calls differ (see
    :func:`tool_call_differences`; a reworded free-text argument does not count) or the
    answer does not say what production's said (:func:`tasks.common.semantic.equivalent`, the
    test of ``ground_truth_match``: same key facts, no negation flipped, similarity at least
    ``threshold``, None = the embedding model's pass mark). ``reason`` is one line, e.g.
    ``"tool calls differ: issue_refund missing"`` or ``"answer differs: missing 1 fact(s): 54;
    similarity 0.912 >= 0.58"`` (both, joined by ``"; "``, when both hold); ``""`` when not
    diverged."""
    eq = equivalent(answer, expected_answer, threshold, model=model)
    reasons = []
    diffs = tool_call_differences(tool_calls, expected_tool_calls, config)
    if diffs:
        reasons.append("tool calls differ: " + ", ".join(diffs))
    if not eq.passed:
        reasons.append(f"answer differs: {eq.reason}")
    return bool(reasons), eq.similarity, "; ".join(reasons)


__all__ = ["diverged", "tool_call_differences", "tool_calls_match"]
