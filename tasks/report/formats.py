"""The report's Python rules for text: how a number, a time, a tool argument, a verdict or a
word diff is written. Every function returns plain text (escaping is the template's job), except
:func:`word_diff`, which returns escaped HTML for callers outside the page."""

from __future__ import annotations

import difflib
import html
import json
import math
import re
from datetime import datetime, timezone
from typing import Any, NamedTuple

from models.evals import MetricSpec

# --------------------------------------------------------------------------- KPI numbers

COUNT_KEYS = ("total_chats", "completed_chats", "failed_chats")
COUNT_LABELS = {"total_chats": "Chats", "completed_chats": "Completed", "failed_chats": "Failed"}
MISSING = "n/a"
MAX_TEXT = 20_000  # characters of one message, argument or result shown
MAX_DIFF_TOKENS = 3_000  # longer texts are shown without word-level highlighting


def metric_spec(key: str, specs: dict[str, MetricSpec] | None = None) -> MetricSpec | None:
    """The spec of a metrics column: the execution's (``specs``), else a built-in one."""
    from tasks.evaluate.metrics import builtin_specs

    return (specs or {}).get(key) or builtin_specs().get(key)


def metric_format_spec(key: str, specs: dict[str, MetricSpec] | None = None) -> str:
    """The ``format()`` spec of a KPI card's number: counts whole, a metric with its spec's
    digits (the same on every surface), an unknown column with 2."""
    if key in COUNT_KEYS:
        return ".0f"
    spec = metric_spec(key, specs)
    return f".{spec.digits}f" if spec is not None else ".2f"


def metric_unit(key: str, specs: dict[str, MetricSpec] | None = None) -> str:
    spec = None if key in COUNT_KEYS else metric_spec(key, specs)
    return spec.unit if spec is not None else ""


def metric_label(key: str, specs: dict[str, MetricSpec] | None = None) -> str:
    spec = None if key in COUNT_KEYS else metric_spec(key, specs)
    return COUNT_LABELS.get(key) or (spec.label if spec is not None and spec.label else
                                     key.removeprefix("avg_").replace("_", " "))


def format_metric(key: str, value: Any, specs: dict[str, MetricSpec] | None = None) -> str:
    """The text of a KPI card's number and of its ``data-value``."""
    v = to_float(value)
    return MISSING if v is None else format(v, metric_format_spec(key, specs))


def kpi_keys(metrics: dict[str, Any], specs: dict[str, MetricSpec] | None = None) -> list[str]:
    """The metrics that get a card, in card order: the counts, then the metrics by rank."""
    counts = [k for k in COUNT_KEYS if k in metrics]
    ranked = [k for k in metrics if k not in COUNT_KEYS and _numberish(metrics[k])
              and (metric_spec(k, specs) is not None or k.startswith("avg_"))]
    rank = {k: (metric_spec(k, specs).rank if metric_spec(k, specs) else 1000, k) for k in ranked}
    return counts + sorted(ranked, key=rank.__getitem__)


def _numberish(v: Any) -> bool:
    """None or anything float() takes (NaN included: it shows as n/a); not a bool."""
    if v is None:
        return True
    if isinstance(v, bool):
        return False
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


# --------------------------------------------------------------------------- values

def to_float(v: Any) -> float | None:
    """A finite float, or None (None, NaN, infinities, bools and non-numbers)."""
    if v is None or isinstance(v, bool):
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def to_int(v: Any) -> int | None:
    x = to_float(v)
    return None if x is None else int(x)


def text(v: Any) -> str:
    """The text of a value as the page shows it: None is empty."""
    return "" if v is None else str(v)


def esc(v: Any) -> str:
    """HTML-escaped text (quotes too: safe in attributes)."""
    return html.escape(text(v), quote=True)


def cut(value: Any, limit: int = MAX_TEXT) -> tuple[str, int]:
    """(the text up to ``limit`` characters, how many characters were left out)."""
    s = text(value)
    return (s, 0) if len(s) <= limit else (s[:limit], len(s) - limit)


def count(n: int) -> str:
    """A count with thousands separators: 12,345."""
    return f"{n:,}"


def number(v: Any, digits: int = 0, unit: str = "") -> str:
    x = to_float(v)
    if x is None:
        return "—"
    return f"{x:,.{digits}f}" + (f" {unit}" if unit else "")


def score_text(v: Any) -> str:
    x = to_float(v)
    if x is None:
        return "—"
    s = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def sort_key_text(v: Any) -> str:
    """A ``data-sort`` value: the float's repr, or empty for None/NaN/0."""
    return text(to_float(v) or "")


def percentile(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    k = (len(s) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


# --------------------------------------------------------------------------- times

def _dt(v: Any) -> datetime | None:
    if isinstance(v, datetime):
        return v
    if isinstance(v, str) and v:
        try:
            return datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def fmt_time(v: Any) -> str:
    d = _dt(v)
    if d is None:
        return "—" if v in (None, "") else str(v)
    if d.tzinfo is not None:
        d = d.astimezone(timezone.utc)
    return d.strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(a: Any, b: Any) -> str:
    da, db = _dt(a), _dt(b)
    if da is None or db is None:
        return "—"
    try:
        s = (db - da).total_seconds()
    except TypeError:  # naive against aware
        s = (db.replace(tzinfo=None) - da.replace(tzinfo=None)).total_seconds()
    if s < 0:
        return "—"
    if s < 60:
        return f"{s:.1f} s"
    m, s = divmod(int(round(s)), 60)
    h, m = divmod(m, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else f"{m}m {s:02d}s"


# --------------------------------------------------------------------------- tool calls

def json_text(v: Any) -> str:
    """Tool arguments / results as readable text: JSON pretty-printed when it is JSON."""
    if v is None:
        return ""
    obj = v
    if isinstance(v, (bytes, bytearray)):
        v = obj = v.decode("utf-8", "replace")
    if isinstance(v, str):
        try:
            obj = json.loads(v)
        except ValueError:
            return v
        if not isinstance(obj, (dict, list)):
            return v
    try:
        compact = json.dumps(obj, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(v)
    return compact if len(compact) <= 100 else json.dumps(obj, ensure_ascii=False, indent=2, default=str)


def canon_call(name: Any, args: Any) -> tuple[str, str]:
    """A tool call as (name, canonical JSON of its arguments): equal calls compare equal."""
    obj = args
    if isinstance(args, str):
        try:
            obj = json.loads(args) if args.strip() else None
        except ValueError:
            obj = args
    if obj in ({}, "", None):
        obj = None
    try:
        return str(name), json.dumps(obj, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(name), str(obj)


# --------------------------------------------------------------------------- word-level diff

_TOKEN = re.compile(r"\S+\s*|\s+")


class Segment(NamedTuple):
    """A run of text; ``tag`` "ins" or "del" highlights it, "" does not."""

    tag: str
    text: str


def _marked(tag: str, run: str) -> list[Segment]:
    """The highlighted run with its trailing whitespace outside the highlight."""
    body = run.rstrip()
    tail = run[len(body):]
    return ([Segment(tag, body)] if body else []) + ([Segment("", tail)] if tail else [])


def diff_segments(new: str | None, old: str | None) -> tuple[list[Segment], list[Segment]]:
    """(replayed, production) as segments: words only in the replayed answer tagged "ins",
    words only in production's tagged "del"; whitespace differences are not differences."""
    a = _TOKEN.findall(old or "")
    b = _TOKEN.findall(new or "")
    if len(a) > MAX_DIFF_TOKENS or len(b) > MAX_DIFF_TOKENS:
        return [Segment("", text(new))], [Segment("", text(old))]
    sm = difflib.SequenceMatcher(None, [t.strip() for t in a], [t.strip() for t in b], autojunk=False)
    old_segs: list[Segment] = []
    new_segs: list[Segment] = []
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            old_segs.append(Segment("", "".join(a[i1:i2])))
            new_segs.append(Segment("", "".join(b[j1:j2])))
            continue
        if i2 > i1:
            old_segs += _marked("del", "".join(a[i1:i2]))
        if j2 > j1:
            new_segs += _marked("ins", "".join(b[j1:j2]))
    return new_segs, old_segs


def segments_html(segs: list[Segment]) -> str:
    return "".join(f"<{s.tag}>{esc(s.text)}</{s.tag}>" if s.tag else esc(s.text) for s in segs)


def word_diff(new: str | None, old: str | None) -> tuple[str, str]:
    """(replayed, production) as escaped HTML: words only in the replayed answer in ``<ins>``,
    words only in production's in ``<del>``; whitespace differences are not differences."""
    new_segs, old_segs = diff_segments(new, old)
    return segments_html(new_segs), segments_html(old_segs)


# --------------------------------------------------------------------------- verdicts

def verdict(d: dict[str, Any]) -> str:
    """"regression", "improvement" or "unchanged" for a baseline delta row."""
    direction = str(d.get("direction") or "").lower()
    delta = to_float(d.get("delta"))
    if direction in ("regression", "regressed", "worse"):
        return "regression"
    if direction in ("improvement", "improved", "better"):
        return "improvement"
    if delta is None or delta == 0:
        return "unchanged"
    if direction in ("higher_is_better", "higher", "up"):
        return "improvement" if delta > 0 else "regression"
    if direction in ("lower_is_better", "lower", "down"):
        return "improvement" if delta < 0 else "regression"
    return "unchanged"


def delta_class(d: dict[str, Any] | None) -> str:
    """The CSS class of a delta: bad/good (significant), bad-weak/good-weak, or neutral."""
    if not d:
        return "neutral"
    v = verdict(d)
    if v == "unchanged":
        return "neutral"
    cls = "bad" if v == "regression" else "good"
    return cls if d.get("significant") else cls + "-weak"
