"""When does a replayed turn stop following production? Pure functions, no I/O.

- :func:`canonical_json`: tool-call arguments compared as parsed
  JSON: key order and whitespace do not matter, ``1 == 1.0``, strings compare exactly,
  ``true`` is not ``1``; ``None``, ``""`` and ``{}`` all mean "no arguments".
- :func:`tool_calls_match`: the calls pair up by :func:`tasks.simulate.toolmatch.match_turn`
  (by default in any order, as multisets) and every pair's KEY arguments match (ids, codes,
  amounts, dates); free text (a reason, a note, a query) reworded is not a difference.
- :func:`diverged`: tool calls differ, or the answer does not say what production's said (the
  same test as ``ground_truth_match``: :func:`tasks.common.semantic.equivalent`); with the
  similarity and a one-line reason.

``tasks.simulate.toolmatch`` builds on this module (``parse_args``); this module imports it
inside the functions that use it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from tasks.common.semantic import SemanticModel, equivalent

if TYPE_CHECKING:
    from models.simulate import ToolMatchConfig

# --------------------------------------------------------------------------- tool calls


def parse_args(arguments: Any) -> Any:
    """Arguments as Python: JSON text parsed when it parses, else kept as text."""
    if isinstance(arguments, (bytes, bytearray)):
        arguments = arguments.decode("utf-8", "replace")
    if isinstance(arguments, str):
        s = arguments.strip()
        if not s:
            return None
        try:
            return json.loads(s)
        except ValueError:
            return arguments
    return arguments


def _norm(value: Any) -> Any:
    """A JSON value with numbers unified (1.0 -> 1) and no-arguments forms unified."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 2**63:
            return int(value)
        return value
    if isinstance(value, dict):
        return {str(k): _norm(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    if hasattr(value, "model_dump"):
        return _norm(value.model_dump(mode="json"))
    return str(value)


def canonical_json(arguments: Any) -> str:
    """The canonical JSON text of tool-call arguments: parsed, numbers unified, keys
    sorted, no whitespace; ``None``, ``""`` and ``{}`` all give ``{}``. Equal canonical
    texts mean equal arguments."""
    value = _norm(parse_args(arguments))
    if value is None or value == {}:
        value = {}
    if isinstance(value, str):  # unparseable text: compared as that exact text
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=True)


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
    from tasks.simulate.toolmatch import match_turn

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
    from tasks.simulate.toolmatch import match_turn

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


__all__ = ["canonical_json", "diverged", "parse_args", "tool_call_differences", "tool_calls_match"]
