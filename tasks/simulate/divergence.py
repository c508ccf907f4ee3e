"""When does a replayed turn stop following production? Pure functions, no I/O.

- :func:`normalize` puts an answer in a comparable form: Unicode NFKC, typographic quotes
  unified to ``'`` and ``"``, lower case, whitespace collapsed, punctuation stripped from
  both ends (``"Done!"`` and ``"done"`` are the same answer).
- :func:`similarity` scores two answers 0..1. Equal after normalisation: 1.0. Otherwise the
  mean of rapidfuzz's ``fuzz.token_set_ratio`` and ``fuzz.ratio`` (each /100), on the
  normalised texts with rapidfuzz's ``default_process`` (inner punctuation dropped too).
  Why the blend: ``token_set_ratio`` ignores word order and extra words
  (a reworded or longer answer that says the same still scores high) but gives 1.0 to any
  answer whose words are a subset of the other ("Done." against a full refund
  confirmation); ``ratio`` (plain edit distance) punishes that. Their mean keeps rewordings
  above ~0.6 and truncated or different answers below it; it is below 1.0 unless the
  normalised texts are equal. ``None`` against ``None`` is 1.0, one missing is 0.0.
- :func:`canonical_json`: tool-call arguments compared as parsed
  JSON: key order and whitespace do not matter, ``1 == 1.0``, strings compare exactly,
  ``true`` is not ``1``; ``None``, ``""`` and ``{}`` all mean "no arguments".
- :func:`tool_calls_match`: the calls pair up by :func:`tasks.simulate.toolmatch.match_turn`
  (by default in any order, as multisets) and every pair's KEY arguments match (ids, codes,
  amounts, dates); free text (a reason, a note, a query) reworded is not a difference.
- :func:`diverged`: tool calls differ, or the answer similarity is below the threshold;
  with the similarity and a one-line reason.

``tasks.simulate.toolmatch`` builds on this module (``parse_args``, ``similarity``); this
module imports it inside the functions that use it.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from rapidfuzz import fuzz, utils

if TYPE_CHECKING:
    from models.simulate import ToolMatchConfig

_QUOTES = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "`": "'",
    "\u00b4": "'", "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u00ab": '"', "\u00bb": '"',
})
_WS = re.compile(r"\s+")


def _is_edge_junk(ch: str) -> bool:
    return ch.isspace() or (unicodedata.category(ch).startswith("P") and ch not in "%#@")


def normalize(text: str | None) -> str:
    """``text`` lower-cased, quotes unified, whitespace collapsed, punctuation (Unicode
    category P) stripped at both ends, except ``%``, ``#`` and ``@`` (they carry meaning).
    None -> ""."""
    if text is None:
        return ""
    s = unicodedata.normalize("NFKC", str(text)).translate(_QUOTES).lower()
    s = _WS.sub(" ", s).strip()
    i, j = 0, len(s)
    while i < j and _is_edge_junk(s[i]):
        i += 1
    while j > i and _is_edge_junk(s[j - 1]):
        j -= 1
    return s[i:j]


def similarity(a: str | None, b: str | None) -> float:
    """0..1: 1.0 when equal after :func:`normalize`, else the mean of
    ``fuzz.token_set_ratio`` and ``fuzz.ratio`` (/100) of the normalised texts (with
    rapidfuzz's ``default_process``), capped at 0.999. None/None 1.0, one None 0.0."""
    if a is None and b is None:
        return 1.0
    if a is None or b is None:
        return 0.0
    na, nb = normalize(a), normalize(b)
    if na == nb:
        return 1.0
    if not na or not nb:
        return 0.0
    # the fuzzy part ignores inner punctuation too ("done!" and "done" are one token)
    pa, pb = utils.default_process(na), utils.default_process(nb)
    score = (fuzz.token_set_ratio(pa, pb) + fuzz.ratio(pa, pb)) / 200.0
    return min(score, 0.999)  # only texts equal after normalize() score 1.0


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
             expected_tool_calls: Iterable[Any], threshold: float,
             config: ToolMatchConfig | None = None) -> tuple[bool, float, str]:
    """``(diverged, similarity, reason)``: diverged when the tool calls differ (see
    :func:`tool_call_differences`; a reworded free-text argument does not count) or the
    answer similarity is below ``threshold``. ``reason`` is one line, e.g. ``"tool calls
    differ: issue_refund missing"`` or ``"answer similarity 0.42 < 0.60"`` (both, joined by
    ``"; "``, when both hold); ``""`` when not diverged."""
    sim = similarity(answer, expected_answer)
    reasons = []
    diffs = tool_call_differences(tool_calls, expected_tool_calls, config)
    if diffs:
        reasons.append("tool calls differ: " + ", ".join(diffs))
    if sim < threshold:
        reasons.append(f"answer similarity {sim:.2f} < {threshold:.2f}")
    return bool(reasons), sim, "; ".join(reasons)


__all__ = ["canonical_json", "diverged", "normalize", "parse_args",
           "similarity", "tool_call_differences", "tool_calls_match"]
