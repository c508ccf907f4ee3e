"""Tool calls compared the way a careful reviewer would. Pure functions (no I/O but
:func:`load_config`).

An agent writes its own free text: a replayed ``transfer_to_human {"reason": ...}`` is the
same action as production's even when the reason is worded otherwise, while an
``issue_refund`` of another amount is not. So every argument has a kind:

- **key** (ids, codes, enums, numbers, dates, booleans): must be equal after normalisation
  (numbers unified, ``1 == 1.0``, ``"54" == 54``; strings NFKC, stripped, whitespace
  collapsed; case-insensitive when they hold no digit (codes, enums, currencies, names) and
  for e-mail addresses and codes named so (``promo_code``); ids with digits keep their case;
  ISO dates and timestamps, and dates written with a month name, become ISO text,
  timestamps in UTC);
- **text** (a reason, a note, a summary, a message, a query...): compared by meaning
  (:func:`text_similarity`), never required to be equal;
- **ignore**: never compared (idempotency keys, nonces, trace ids).

An argument's kind (:func:`split_args`), by its dotted path (``items.0.sku``; a scalar list is
sorted first, so ``["b", "a"] == ["a", "b"]``; arguments that are not an object are at
``$``):

1. the tool's rule ``fields`` override (the path or the nearest enclosing path; list indexes
   may be left out or written ``*``);
2. the argument's name (its last word, split on ``_``, ``-``, ``.`` and camelCase):
   ``IGNORE_NAMES`` (whole name) -> ignore; numbers and booleans -> key, whatever the name;
   a last word in ``KEY_NAMES`` (``id``, ``code``, ``amount``, ``date``, ``status``, ``email``,
   ``name``...) -> key, unless the value is prose (six words or more); in ``TEXT_NAMES`` (``reason``, ``note``, ``query``, ``message``...) ->
   text, unless the value is a machine token (no space, and a digit, ``_`` or ``-`` inside,
   or all capitals: ``"wrong_size"``, ``"SAVE20"``) -> key;
3. otherwise the value: a date, a number, or a string with no space -> key; three words or
   more (or over 40 characters) -> text; one or two words (``"New York"``) -> key.

When an argument is key in one call and text in the other, both are compared as text.

Two calls of the same tool match (:func:`call_match`) when their key arguments agree under
the tool's :class:`~models.simulate.ToolRule` ``args`` mode; a turn's calls are paired by the
:class:`~models.simulate.ToolMatchConfig` ``trajectory`` mode (:func:`match_turn`).
:func:`is_write_tool` tells state-changing tools from reads by their name (or description).
"""

from __future__ import annotations

import functools
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from models.simulate import ArgKind, ToolMatchConfig, ToolRule
from tasks.common.errors import ReplayError, validation_text
from tasks.common.semantic import similarity
from tasks.simulate.arguments import parse_args

Split = tuple[dict[str, Any], dict[str, str]]  # (key arguments, text arguments) by dotted path

_DEFAULT_CONFIG = ToolMatchConfig()
_DEFAULT_RULE = ToolRule()
_SHOWN = 60  # characters of a value quoted in a difference
_PROSE_WORDS = 6  # a value this many words long is text even under a key name


class ToolMatchConfigError(ReplayError):
    """A ``--tool-match`` file that cannot be read, is not JSON, or does not fit
    :class:`~models.simulate.ToolMatchConfig`."""


def load_config(path: str | Path) -> ToolMatchConfig:
    """The tool-match config in the JSON file ``path``; :class:`ToolMatchConfigError` (one
    line) when it cannot be read, is not JSON or has an unknown or bad setting."""
    p = Path(path)
    hint = 'e.g. {"trajectory": "unordered", "tools": {"issue_refund": {"args": "exact"}}}'
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ToolMatchConfigError(f"cannot read the tool-match config {p}: {reason}; give a JSON file, "
                                   f"{hint}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        msg = f"{exc.msg} at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise ToolMatchConfigError(f"the tool-match config {p} is not JSON ({msg}); {hint}") from None
    try:
        return ToolMatchConfig.model_validate(data)
    except ValidationError as exc:
        why = validation_text(exc, lambda _model, loc: ".".join(str(x) for x in loc) or "(top level)")
        raise ToolMatchConfigError(f"the tool-match config {p} has a bad setting at {why}; {hint}") from None


def rule_for(tool: str | None, config: ToolMatchConfig | None = None) -> ToolRule:
    """The tool's rule: its own, else the ``"*"`` rule, else the defaults."""
    tools = (config or _DEFAULT_CONFIG).tools
    return tools.get(tool or "") or tools.get("*") or _DEFAULT_RULE


# --------------------------------------------------------------------------- words


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


@functools.lru_cache(maxsize=4096)
def _name_words(name: str) -> tuple[str, ...]:
    return tuple(w for w in _NON_ALNUM.split(_CAMEL.sub(" ", name).lower()) if w)


def _words(name: str | None) -> list[str]:
    """``"getOrderID"`` -> ``["get", "order", "id"]``; ``"issue_refund"`` -> ``["issue", "refund"]``."""
    return list(_name_words(name or ""))


# --------------------------------------------------------------------------- argument kinds

TEXT_NAMES = frozenset("""
    reason reasons summary note notes comment comments message messages msg description desc
    explanation thought thoughts query q question questions text body content details remark
    remarks feedback instruction instructions justification rationale context prompt subject
    title answer reply response caption memo statement complaint problem issue situation
    observation analysis keywords keyword term terms request story
""".split())

KEY_NAMES = frozenset("""
    id ids uuid guid code codes number num no nr sku skus type kind status category mode method
    currency amount amounts price total quantity qty count date dates time datetime timestamp at
    on day month year email phone zip zipcode postcode postal country locale language lang ref
    reference token url uri slug handle username login priority level tier plan size color
    colour channel action name names city state region option flag enabled percent percentage
    rate limit
""".split())

# short codes compared without case even with digits ("save20" == "SAVE20"); ids keep theirs
CASE_FREE_NAMES = frozenset("code codes coupon promo voucher sku skus currency country locale lang language".split())

IGNORE_NAMES = frozenset("""
    idempotency_key nonce trace_id span_id correlation_id client_request_id dedup_key dedupe_key
""".split())

_WS = re.compile(r"\s+")
_DIGIT = re.compile(r"\d")
_NUMBER = re.compile(r"^([+-]?)[$€£¥]?((?:0|[1-9]\d*)(?:\.\d+)?)$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)?)?$")
_NUMERIC_DATE = re.compile(r"^\d{1,2}[/.]\d{1,2}[/.]\d{2,4}$")
_CLOCK = re.compile(r"^\d{1,2}:\d{2}(?::\d{2})?(?:\s?[ap]\.?m\.?)?$", re.I)
_MONTH = re.compile(r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\b", re.I)
_YEAR = re.compile(r"\b\d{4}\b")
_ORDINAL = re.compile(r"(\d)(st|nd|rd|th)\b", re.I)
_MONTH_FORMATS = ("%B %d, %Y", "%B %d %Y", "%d %B %Y", "%d %B, %Y", "%b %d, %Y", "%b %d %Y", "%d %b %Y",
                  "%d %b, %Y")
_TOKEN_MARK = re.compile(r"[0-9]|\w[_-]\w")


def _clean(s: str) -> str:
    return _WS.sub(" ", unicodedata.normalize("NFKC", s)).strip()


def _month_date(s: str) -> str | None:
    """``"March 3rd, 2024"`` / ``"3 Mar 2024"`` -> ``"2024-03-03"``; None when not such a date."""
    if not (_MONTH.search(s) and _YEAR.search(s)) or len(s) > 30:
        return None
    plain = _ORDINAL.sub(r"\1", s).replace(".", "")
    for fmt in _MONTH_FORMATS:
        try:
            return datetime.strptime(plain, fmt).date().isoformat()
        except ValueError:
            continue
    return None


def _iso_date(s: str) -> str | None:
    """An ISO date or timestamp as ISO text (timestamps with a zone in UTC, ``Z``)."""
    if not _ISO.match(s):
        return None
    try:
        if len(s) == 10:
            return date.fromisoformat(s).isoformat()
        dt = datetime.fromisoformat(s.upper().replace(",", "."))
    except ValueError:
        return None
    if dt.tzinfo is not None:
        return dt.astimezone(timezone.utc).replace(tzinfo=None).isoformat() + "Z"
    return dt.isoformat()


def _is_date(s: str) -> bool:
    return bool(_ISO.match(s) or _NUMERIC_DATE.match(s) or _CLOCK.match(s) or _month_date(s))


def _norm_number(v: int | float) -> int | float | str:
    if isinstance(v, int):
        return v
    if not math.isfinite(v):
        return str(v)
    v = round(v, 9)
    return int(v) if v.is_integer() and abs(v) < 2**63 else v


def _as_number(s: str) -> int | float | None:
    m = _NUMBER.match(s)
    if not m:
        return None
    digits = m.group(1) + m.group(2)
    return _norm_number(float(digits)) if "." in digits else int(digits)


def normalize_key(value: Any, name: str | None = None) -> Any:
    """A key argument's comparable value: booleans kept (``True`` is not ``1``), numbers
    unified (``54.0`` and ``"54"`` -> ``54``; a leading ``0`` keeps a string a string), dates
    as ISO text, strings NFKC + stripped + whitespace collapsed, case-folded when they hold no
    digit, are an e-mail address, or the argument's ``name`` says code (``promo_code``,
    ``currency``: ``CASE_FREE_NAMES``); ids with digits keep their case (``A1077``)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return _norm_number(value)
    s = _clean(str(value))
    number = _as_number(s)
    if number is not None:
        return number
    when = _iso_date(s) or _month_date(s)
    if when is not None:
        return when
    if not _DIGIT.search(s) or _EMAIL.match(s) or (_words(name)[-1:] or [""])[0] in CASE_FREE_NAMES:
        return s.casefold()
    return s


def _is_machine_token(s: str) -> bool:
    """No space, and a digit, an inner ``_``/``-``, or all capitals: ``wrong_size``, ``SAVE20``."""
    return " " not in s and bool(_TOKEN_MARK.search(s) or (len(s) >= 2 and s.isupper()))


def _value_kind(s: str) -> ArgKind:
    if " " not in s or _is_date(s) or _as_number(s) is not None:
        return "key"
    return "text" if len(s.split(" ")) >= 3 or len(s) > 40 else "key"


@functools.lru_cache(maxsize=4096)
def _name_kind(name: str) -> ArgKind | None:
    words = _words(name)
    if not words:
        return None
    if "_".join(words) in IGNORE_NAMES:
        return "ignore"
    if words[-1] in KEY_NAMES:
        return "key"
    if words[-1] in TEXT_NAMES:
        return "text"
    return None


def _override(path: str, fields: dict[str, ArgKind]) -> ArgKind | None:
    """The ``fields`` kind of ``path`` or of its nearest enclosing path (indexes optional or ``*``)."""
    if not fields:
        return None
    segments = path.split(".")
    for n in range(len(segments), 0, -1):
        head = segments[:n]
        for candidate in (head, [s for s in head if not s.isdigit()], ["*" if s.isdigit() else s for s in head]):
            kind = fields.get(".".join(candidate))
            if kind:
                return kind
    return None


def _leaf_name(path: str) -> str:
    return next((s for s in reversed(path.split(".")) if not s.isdigit()), "")


def arg_kind(path: str, value: Any, rule: ToolRule | None = None) -> ArgKind:
    """The kind of the argument at dotted ``path`` with (scalar) ``value`` (module doc)."""
    forced = _override(path, rule.fields) if rule is not None else None
    if forced:
        return forced
    by_name = _name_kind(_leaf_name(path))
    if by_name == "ignore":
        return "ignore"
    if not isinstance(value, str):
        return "key"
    s = _clean(value)
    if by_name == "key":  # unless it is prose: a status "waiting for the customer to send photos"
        return "text" if len(s.split(" ")) >= _PROSE_WORDS else "key"
    if by_name == "text":
        return "key" if _is_machine_token(s) else "text"
    return _value_kind(s)


def _scalar(v: Any) -> bool:
    return not isinstance(v, (dict, list, tuple))


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, scalar) of every leaf; None and blank strings are left out (absent)."""
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, (list, tuple)):
        items = list(value)
        if all(_scalar(v) for v in items):  # a list of ids is a set: order does not matter
            items.sort(key=lambda v: (type(v).__name__, _clean(str(v)).casefold()))
        for i, v in enumerate(items):
            yield from _leaves(v, f"{path}.{i}" if path else str(i))
    elif value is None or (isinstance(value, str) and not value.strip()):
        return
    else:
        yield path or "$", value


def split_args(tool: str, arguments: Any, config: ToolMatchConfig | None = None) -> Split:
    """``(key, text)``: the call's key arguments (normalised, :func:`normalize_key`) and text
    arguments (stripped), each flattened by dotted path; ignored ones are left out.
    ``arguments`` may be JSON text, a dict, a list, a model or None."""
    rule = rule_for(tool, config)
    key: dict[str, Any] = {}
    text: dict[str, str] = {}
    for path, value in _leaves(parse_args(arguments)):
        kind = arg_kind(path, value, rule)
        if kind == "key":
            key[path] = normalize_key(value, _leaf_name(path))
        elif kind == "text":
            text[path] = _clean(str(value))
    return key, text


# --------------------------------------------------------------------------- one call


def text_similarity(a: str | None, b: str | None) -> float:
    """How close two free texts are in meaning, 0..1: :func:`tasks.common.semantic.similarity`
    (the embedding model of ``REPLAY_SEMANTIC_MODEL``, wordllama by default). Shown in notes
    and used to pair calls of one tool; never required: free text is not a key argument."""
    return similarity(a, b)


@dataclass(frozen=True)
class CallMatch:
    """One replayed call against one production call.

    ``differences``: one line each, replay first (``"issue_refund: amount 49.99 != 59.99"``),
    the key ones first, then ``notes`` (text arguments, never failing: ``"transfer_to_human:
    reason reworded (similarity 0.41), not compared"``)."""

    name_ok: bool
    key_ok: bool
    text_similarity: float | None
    differences: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def matched(self) -> bool:
        """Same tool and matching key arguments."""
        return self.name_ok and self.key_ok


def _shown(v: Any) -> str:
    s = json.dumps(v, ensure_ascii=False) if isinstance(v, str) else json.dumps(v)
    return s if len(s) <= _SHOWN else s[: _SHOWN - 3] + "..."


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def _key_differences(tool: str, mode: str, actual: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """What makes two calls' key arguments differ under ``mode`` (actual = the replay)."""
    if mode == "ignore":
        return []
    out = []
    for p in sorted(actual.keys() | expected.keys()):
        if p in actual and p in expected:
            if not _same(actual[p], expected[p]):
                out.append(f"{tool}: {p} {_shown(actual[p])} != {_shown(expected[p])}")
        elif p in expected:
            if mode in ("exact", "superset"):
                out.append(f"{tool}: {p} missing (production {_shown(expected[p])})")
        elif mode in ("exact", "subset"):
            out.append(f"{tool}: {p} {_shown(actual[p])} not in production")
    return out


def _text_compare(tool: str, actual: dict[str, str], expected: dict[str, str]) -> tuple[float | None, list[str]]:
    paths = sorted(actual.keys() | expected.keys())
    if not paths:
        return None, []
    scores, notes = [], []
    for p in paths:
        if p in actual and p in expected:
            s = text_similarity(actual[p], expected[p])
            if s < 1.0:
                notes.append(f"{tool}: {p} reworded (similarity {s:.2f}), not compared")
        else:
            s = 0.0
            notes.append(f"{tool}: {p} only in {'the replay' if p in actual else 'production'}, not compared")
        scores.append(s)
    return sum(scores) / len(scores), notes


def _demote(key: dict[str, Any], text: dict[str, str], other_text: dict[str, str]) -> None:
    """An argument that is key here and text in the other call is compared as text."""
    for p in [p for p in key if p in other_text]:
        text[p] = str(key.pop(p))


def match_split(tool: str, actual: Split, expected: Split, config: ToolMatchConfig | None = None) -> CallMatch:
    """Two calls of ``tool`` compared from their :func:`split_args` (the replay's first)."""
    a_key, a_text = dict(actual[0]), dict(actual[1])
    e_key, e_text = dict(expected[0]), dict(expected[1])
    _demote(a_key, a_text, expected[1])
    _demote(e_key, e_text, actual[1])
    diffs = _key_differences(tool, rule_for(tool, config).args, a_key, e_key)
    sim, notes = _text_compare(tool, a_text, e_text)
    return CallMatch(name_ok=True, key_ok=not diffs, text_similarity=sim, differences=diffs + notes, notes=notes)


def _get(call: Any, key: str) -> Any:
    if isinstance(call, dict):
        return call.get(key)
    return getattr(call, key, None)


def call_match(actual: Any, expected: Any, config: ToolMatchConfig | None = None) -> CallMatch:
    """The replayed call ``actual`` against production's ``expected`` (dicts or models with
    ``name`` and ``arguments``): the names, the key arguments by the tool's ``args`` mode,
    the similarity of the text arguments (None when neither has any)."""
    name, other = _get(actual, "name"), _get(expected, "name")
    if name != other:
        return CallMatch(name_ok=False, key_ok=False, text_similarity=None,
                         differences=[f"{name or '?'} called instead of {other or '?'}"])
    return match_split(name, split_args(name, _get(actual, "arguments"), config),
                       split_args(name, _get(expected, "arguments"), config), config)


# --------------------------------------------------------------------------- one turn


@dataclass(frozen=True)
class TurnMatch:
    """A turn's replayed calls against production's, paired by the trajectory ``mode``.

    ``names_ok``: the tool names pair up as the mode asks (strict and unordered: none
    missing, none extra; subset: none extra; superset: none missing); ``args_ok``: every paired
    call's key arguments match; ``passed``: both. ``precision``/``recall``/``f1`` count calls
    matched by name and key arguments (no calls made: precision 1; none expected: recall 1).
    ``missing``/``extra``: unpaired production/replay calls (listed under every mode);
    ``differing``: the key differences of paired calls; ``notes``: their text rewordings;
    ``pairs``: (replay index, production index, :class:`CallMatch`)."""

    mode: str
    names_ok: bool
    args_ok: bool
    passed: bool
    precision: float
    recall: float
    f1: float
    missing: list[str]
    extra: list[str]
    differing: list[str]
    text_similarity: float | None
    notes: list[str] = field(default_factory=list)
    pairs: list[tuple[int, int, CallMatch]] = field(default_factory=list)


def _or_one(x: float | None) -> float:
    return 1.0 if x is None else x


def _pair_best(n_actual: int, n_expected: int, grid: dict[tuple[int, int], CallMatch]) -> list[tuple[int, int]]:
    """Multiset pairing: the most calls matched by name and key arguments (augmenting paths,
    the most similar text tried first), then the rest of each tool's calls by fewest
    differences."""
    edges = {i: sorted((j for j in range(n_expected) if (i, j) in grid and grid[i, j].key_ok),
                       key=lambda j, i=i: (-_or_one(grid[i, j].text_similarity), j))
             for i in range(n_actual)}
    owner: dict[int, int] = {}  # production index -> replay index

    def augment(i: int, seen: set[int]) -> bool:
        for j in edges[i]:
            if j not in seen:
                seen.add(j)
                if j not in owner or augment(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    for i in range(n_actual):
        augment(i, set())
    used_a = set(owner.values())
    for i in range(n_actual):
        if i in used_a:
            continue
        free = [j for j in range(n_expected) if j not in owner and (i, j) in grid]
        if free:
            owner[min(free, key=lambda j, i=i: (len(grid[i, j].differences), j))] = i
    return sorted((i, j) for j, i in owner.items())


def _pair_in_order(n_actual: int, n_expected: int, grid: dict[tuple[int, int], CallMatch]) -> list[tuple[int, int]]:
    """Order-keeping pairing (a weighted longest common subsequence over the tool names): the
    most pairs, then the most matching key arguments, then the most similar texts."""
    scale = n_actual + n_expected + 2

    def weight(cm: CallMatch) -> float:
        return 1.0 + cm.key_ok / scale + (cm.text_similarity or 0.0) / scale**2

    best = [[0.0] * (n_expected + 1) for _ in range(n_actual + 1)]
    for i in range(n_actual - 1, -1, -1):
        for j in range(n_expected - 1, -1, -1):
            v = max(best[i + 1][j], best[i][j + 1])
            if (i, j) in grid:
                v = max(v, best[i + 1][j + 1] + weight(grid[i, j]))
            best[i][j] = v
    pairs, i, j = [], 0, 0
    while i < n_actual and j < n_expected:
        if (i, j) in grid and math.isclose(best[i][j], best[i + 1][j + 1] + weight(grid[i, j])):
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif math.isclose(best[i][j], best[i + 1][j]):
            i += 1
        else:
            j += 1
    return pairs


def _show_call(name: Any, split: Split) -> str:
    args = ", ".join(f"{p}={_shown(v)}" for p, v in sorted(split[0].items()))
    return f"{name or '?'}({args})"


def _scores(tp: int, n_actual: int, n_expected: int) -> tuple[float, float, float]:
    if n_actual == 0 and n_expected == 0:
        return 1.0, 1.0, 1.0
    precision = tp / n_actual if n_actual else 1.0
    recall = tp / n_expected if n_expected else 1.0
    f1 = 0.0 if tp == 0 else 2 * precision * recall / (precision + recall)
    return precision, recall, f1


def match_turn(actual_calls: Iterable[Any], expected_calls: Iterable[Any],
               config: ToolMatchConfig | None = None) -> TurnMatch:
    """A turn's replayed calls against production's (dicts or models with ``name`` and
    ``arguments``), paired by ``config.trajectory``: ``unordered`` (best pairing as
    multisets), ``strict`` (the same order), ``subset`` (every replayed call pairs with a
    production one), ``superset`` (every production call is paired)."""
    cfg = config or _DEFAULT_CONFIG
    actual, expected = list(actual_calls), list(expected_calls)
    a = [(_get(c, "name"), split_args(_get(c, "name"), _get(c, "arguments"), cfg)) for c in actual]
    e = [(_get(c, "name"), split_args(_get(c, "name"), _get(c, "arguments"), cfg)) for c in expected]
    grid = {(i, j): match_split(an, asplit, esplit, cfg)
            for i, (an, asplit) in enumerate(a) for j, (en, esplit) in enumerate(e) if an == en}
    pair = _pair_in_order if cfg.trajectory == "strict" else _pair_best
    pairs = [(i, j, grid[i, j]) for i, j in pair(len(a), len(e), grid)]
    paired_a, paired_e = {i for i, _, _ in pairs}, {j for _, j, _ in pairs}
    missing = [_show_call(*e[j]) + " missing" for j in range(len(e)) if j not in paired_e]
    extra = [_show_call(*a[i]) + " extra" for i in range(len(a)) if i not in paired_a]
    names_ok = ((not missing or cfg.trajectory == "subset") and (not extra or cfg.trajectory == "superset"))
    args_ok = all(cm.key_ok for _, _, cm in pairs)
    sims = [cm.text_similarity for _, _, cm in pairs if cm.text_similarity is not None]
    precision, recall, f1 = _scores(sum(cm.key_ok for _, _, cm in pairs), len(a), len(e))
    return TurnMatch(
        mode=cfg.trajectory, names_ok=names_ok, args_ok=args_ok, passed=names_ok and args_ok,
        precision=precision, recall=recall, f1=f1, missing=missing, extra=extra,
        differing=[d for _, _, cm in pairs for d in cm.differences[:len(cm.differences) - len(cm.notes)]],
        text_similarity=sum(sims) / len(sims) if sims else None,
        notes=[n for _, _, cm in pairs for n in cm.notes], pairs=pairs)


# --------------------------------------------------------------------------- write tools

READ_VERBS = frozenset("""
    get fetch read list lookup search find query check show describe view retrieve load count
    calculate compute estimate validate verify inspect browse track preview explain summarize
    summarise compare recommend suggest is has can poll see peek scan locate identify determine
    diagnose analyze analyse evaluate review think ask lookups export download watch print
""".split())

WRITE_VERBS = frozenset("""
    issue create cancel update delete remove add set change transfer escalate refund book
    reserve send submit pay charge apply approve reject close assign handoff handover modify
    edit upsert insert save store register enroll enrol subscribe unsubscribe activate
    deactivate enable disable block unblock lock unlock reset grant revoke confirm place
    purchase buy exchange return ship dispatch upload post put patch write publish notify email
    sms reply respond resolve reopen open archive restore credit debit void withdraw deposit
    redeem deny decline accept file record mark flag tag log rebook reschedule schedule
    initiate start stop end terminate suspend renew extend upgrade downgrade swap replace
    request process execute trigger checkout checkin signup topup optout optin setup allocate
    release move rename merge commit drop kill hand
""".split())

# write verbs that are also nouns: "refund_status", "transfer_history" are reads
_NOUN_VERBS = frozenset("""
    refund transfer charge return exchange credit debit deposit book request record file log tag
    flag post email reply schedule
""".split())
_READ_TAIL = READ_VERBS | frozenset("""
    status info information details detail history policy policies balance eligibility options
    rate rates rules summary quote quotes availability amount total fee fees limit limits
""".split())
_PHRASES = {("hand", "off"): "handoff", ("hand", "over"): "handover", ("look", "up"): "lookup",
            ("check", "out"): "checkout", ("check", "in"): "checkin", ("sign", "up"): "signup",
            ("top", "up"): "topup", ("opt", "out"): "optout", ("opt", "in"): "optin", ("set", "up"): "setup"}
# third-person verbs that open a read tool's description ("Returns the order's status.")
_DESCRIPTION_READS = frozenset("returns retrieves provides gives displays tells".split())
_AUXILIARIES = frozenset("is has can".split())  # "this tool can be used to cancel..."
_READ_ONLY = re.compile(r"\bread[- ]only\b|\bno side[- ]effects?\b|\bdoes not (?:change|modify|update|write)\b",
                        re.I)


def _merge_phrases(words: Sequence[str]) -> list[str]:
    out: list[str] = []
    for w in words:
        if out and (out[-1], w) in _PHRASES:
            out[-1] = _PHRASES[out[-1], w]
        else:
            out.append(w)
    return out


def _verb_kind(word: str, stem: bool) -> str | None:
    candidates = [word]
    if stem and word.endswith("s") and len(word) > 3:  # "issues", "searches", "applies"
        candidates += [word[:-3] + "y"] if word.endswith("ies") else []
        candidates += [word[:-2], word[:-1]] if word.endswith("es") else [word[:-1]]
    for c in candidates:
        if c in READ_VERBS:
            return "read"
        if c in WRITE_VERBS:
            return "write"
    return None


def _stemmed(word: str) -> str:
    for c in ([word[:-3] + "y"] if word.endswith("ies") else []) + [word[:-2], word[:-1], word]:
        if c in _NOUN_VERBS:
            return c
    return word


def _verdict(words: list[str], description: bool) -> bool | None:
    """Write (True), read (False) or undecided (None) from the first verb among ``words``: a
    read verb decides for read; a write verb for write, unless it is also a noun followed
    by a read word (``refund_status``, ``transfer_lookup``; in a description: within the next
    two words, ``"the refund policy"``)."""
    for k, w in enumerate(words):
        if description and w in _DESCRIPTION_READS:
            return False
        if description and w in _AUXILIARIES:
            continue
        kind = _verb_kind(w, stem=description)
        if kind == "read":
            return False
        if kind == "write":
            tail = words[k + 1: k + 3] if description else words[k + 1:]
            noun = _stemmed(w) if description else w
            return not (noun in _NOUN_VERBS and any(t in _READ_TAIL for t in tail))
    return None


def is_write_tool(name: str, description: str | None = None, config: ToolMatchConfig | None = None) -> bool:
    """Is the tool state-changing? ``ToolRule.write`` when the config sets it; else the first
    verb of its name (``issue_refund``, ``ticket_create``, ``transfer_to_human``: write;
    ``get_refund_policy``, ``lookup_order``, ``refund_status``: read); a name with no verb
    is decided by its description (its first verb; ``"read-only"`` or ``"does not modify"``
    there means read); neither: not a write tool."""
    forced = rule_for(name, config).write
    if forced is not None:
        return forced
    verdict = _verdict(_merge_phrases(_words(name)), description=False)
    if verdict is not None:
        return verdict
    if not description:
        return False
    if _READ_ONLY.search(description):
        return False
    return bool(_verdict(_merge_phrases(_words(description)), description=True))


__all__ = ["CASE_FREE_NAMES", "CallMatch", "IGNORE_NAMES", "KEY_NAMES", "READ_VERBS", "Split", "TEXT_NAMES", "ToolMatchConfigError",
           "TurnMatch", "WRITE_VERBS", "arg_kind", "call_match", "is_write_tool", "load_config", "match_split",
           "match_turn", "normalize_key", "rule_for", "split_args", "text_similarity"]
