"""The HTML report of one execution: a pure function from a dict to one self-contained page.

``render_report(data) -> str`` returns ONE HTML file that works offline: inline CSS and JS,
plotly.js inlined once (``plotly.offline.get_plotlyjs()``), the figures as JSON drawn with
``Plotly.newPlot``, no CDN, no external font or image, and a Content-Security-Policy that
forbids any other load. ``write_report(data, out)`` writes it atomically (temp file + rename).
No I/O besides ``write_report``: the caller (``replay report``) loads ``data`` from the catalog.

The ``data`` dict (:class:`ReportData`; every text in it is untrusted and HTML-escaped;
numbers may be int, float, Decimal or None; times a ``datetime`` (naive = UTC) or an ISO string)::

    {
      "execution": {execution_id, run_test_id, name, scenario_id, scenario_name, agent_ref,
                    mode, tool_mode, status, started_at, ended_at},
      "metrics":   {total_chats, completed_chats, completion_pct (0..100), avg_output_tokens,
                    avg_chat_latency_ms, avg_turn_count, avg_csat, avg_<evaluator>...},
                   # a row of `execution_metrics`; other keys (execution_id, evaluated_at) ignored
      "baseline":  {execution_id, metrics (same shape),              # optional, None = no baseline
                    deltas: [{metric, a, b, delta, lo, hi, significant, direction}]},
                   # tasks.compare.between: a = baseline's value, b = this execution's,
                   # delta = b - a, [lo, hi] its confidence interval, significant: bool,
                   # direction: "regression" | "improvement" | anything else = no change
                   # ("higher_is_better" / "lower_is_better" are accepted too: the verdict
                   # then follows the sign of delta)
      "scores":    [{chat_id, turn_index (None = chat-level), evaluator, value, passed (bool|None),
                     label, reason, source}],                        # rows of `eval_scores`
      "chats":     [{chat_id, row_index, repetition, origin_id, status, ended_reason,
                     divergence_turn (None = followed production), turn_count, avg_latency_ms,
                     input_tokens, output_tokens, error, branch_category, persona_name}],
      "turns":     [{chat_id, turn_index, user_message, assistant_message,
                     original_assistant_message,
                     tool_calls: [{name, arguments (dict or JSON text), result, status,
                                   source ("recorded" | "nearest" | "off_script" | "live"),
                                   matched_turn (optional: the production turn answered from)}],
                     original_tool_calls: [{name, arguments, result, status}],
                     latency_ms, similarity (0..1), user_source ("original" | "simulated"), error}],
    }

KPI cards. One card per key of ``metrics`` that is a known key (``total_chats``,
``completed_chats``, ``failed_chats``, ``completion_pct``, ``avg_chat_latency_ms``,
``avg_output_tokens``, ``avg_turn_count``, ``avg_csat``, in that order) or starts with ``avg_``
(then alphabetically). Each card is ``<div class="kpi" data-metric="KEY" data-value="TEXT">``;
the number shown in the card (``.kpi-num``) is exactly TEXT (the unit is a separate ``.kpi-unit``
span). TEXT = :func:`format_metric` ``(KEY, value)``:

- ``None`` or NaN -> ``"n/a"``
- otherwise ``format(float(value), SPEC)`` (Python's correctly rounded formatting of the double;
  compare with ``f"{v:{SPEC}}"``, not with SQL ``round()``), SPEC = :func:`metric_format_spec`:

  ============================================================  =======  =========
  key                                                           SPEC     unit
  ============================================================  =======  =========
  ``total_chats``, ``completed_chats``, ``failed_chats``        ``.0f``
  ends with ``_ms`` (``avg_chat_latency_ms``)                   ``.0f``  ms
  ends with ``_pct`` (``completion_pct``, already 0..100)       ``.1f``  %
  ends with ``_tokens`` (``avg_output_tokens``)                 ``.1f``  tokens
  ``avg_turn_count``, ``avg_csat``                              ``.2f``  turns, /10
  any other (``avg_<evaluator>``)                               ``.3f``
  ============================================================  =======  =========

With a baseline, a card also shows the baseline's value (``data-baseline-value``, same rule).

Large executions: the session table keeps ``max_sessions`` rows and the transcripts
``max_transcripts`` chats (failed chats first, then chats with a failing score or a divergence,
then the rest; each group by row_index, repetition), with a note saying how many were left out;
transcripts are collapsed ``<details>`` that a session link (``#chat-<chat_id>``) opens; a text
longer than ``MAX_TEXT`` characters is cut with a note.
"""

from __future__ import annotations

import difflib
import html
import json
import math
import os
import re
import tempfile
from collections import Counter, defaultdict
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, NotRequired, TypedDict
from urllib.parse import quote

# --------------------------------------------------------------------------- the contract


class ReportExecution(TypedDict, total=False):
    execution_id: str
    run_test_id: str
    name: str | None  # the run test's name
    scenario_id: str
    scenario_name: str | None
    agent_ref: str
    mode: str  # replay, simulate, hybrid
    tool_mode: str  # live, recorded
    status: str
    started_at: datetime | str | None
    ended_at: datetime | str | None


class ReportMetrics(TypedDict, total=False):
    """A row of ``execution_metrics``; plus one ``avg_<evaluator>: float | None`` per evaluator
    (extra keys a TypedDict cannot name)."""

    total_chats: int
    completed_chats: int
    failed_chats: int
    completion_pct: float | None  # 0..100
    avg_output_tokens: float | None
    avg_chat_latency_ms: float | None
    avg_turn_count: float | None
    avg_csat: float | None  # 1..10


class BaselineDelta(TypedDict):
    metric: str  # an evaluator name (csat, ...), or a chat figure (failed, latency, ...)
    a: float | None  # the baseline's value
    b: float | None  # this execution's value
    delta: float | None  # b - a
    lo: float | None  # confidence interval of delta
    hi: float | None
    significant: bool
    direction: str  # "regression" | "improvement" | other = no change


class ReportBaseline(TypedDict):
    execution_id: str
    metrics: ReportMetrics
    deltas: list[BaselineDelta]


class ReportScore(TypedDict):
    chat_id: str
    turn_index: int | None  # None: a chat-level score
    evaluator: str
    value: float | None
    passed: bool | None
    label: str | None
    reason: str | None
    source: str | None  # heuristic, llm:<model>, metric, custom


class ReportChat(TypedDict):
    chat_id: str
    row_index: int
    repetition: int
    origin_id: str | None
    status: str  # completed, failed
    ended_reason: str | None
    divergence_turn: int | None
    turn_count: int
    avg_latency_ms: float | None
    input_tokens: int | None
    output_tokens: int | None
    error: str | None
    branch_category: str | None
    persona_name: str | None


class ReportToolCall(TypedDict):
    name: str
    arguments: Any  # dict, or JSON text
    result: Any
    status: str | None  # ok, error
    source: str | None  # recorded, nearest, off_script, live
    matched_turn: NotRequired[int | None]


class ReportOriginalToolCall(TypedDict):
    name: str
    arguments: Any
    result: Any
    status: str | None


class ReportTurn(TypedDict):
    chat_id: str
    turn_index: int
    user_message: str | None
    assistant_message: str | None
    original_assistant_message: str | None
    tool_calls: list[ReportToolCall]
    original_tool_calls: list[ReportOriginalToolCall]
    latency_ms: float | None
    similarity: float | None
    user_source: str | None  # original, simulated
    error: str | None


class ReportData(TypedDict):
    execution: ReportExecution
    metrics: ReportMetrics
    baseline: NotRequired[ReportBaseline | None]
    scores: list[ReportScore]
    chats: list[ReportChat]
    turns: list[ReportTurn]


# --------------------------------------------------------------------------- number formats

KPI_ORDER = ("total_chats", "completed_chats", "failed_chats", "completion_pct", "avg_chat_latency_ms",
             "avg_output_tokens", "avg_turn_count", "avg_csat")
COUNT_KEYS = frozenset({"total_chats", "completed_chats", "failed_chats"})
KPI_LABELS = {"total_chats": "Chats", "completed_chats": "Completed", "failed_chats": "Failed",
              "completion_pct": "Completion", "avg_chat_latency_ms": "Avg chat latency",
              "avg_output_tokens": "Avg output tokens", "avg_turn_count": "Avg turns", "avg_csat": "Avg CSAT"}
MISSING = "n/a"
MAX_TEXT = 20_000  # characters of one message, argument or result shown
MAX_DIFF_TOKENS = 3_000  # longer texts are shown without word-level highlighting


def metric_format_spec(key: str) -> str:
    """The ``format()`` spec of a KPI card's number (see the module docstring)."""
    if key in COUNT_KEYS or key.endswith("_ms"):
        return ".0f"
    if key.endswith("_pct") or key.endswith("_tokens"):
        return ".1f"
    if key in ("avg_turn_count", "avg_csat"):
        return ".2f"
    return ".3f"


def metric_unit(key: str) -> str:
    if key.endswith("_ms"):
        return "ms"
    if key.endswith("_pct"):
        return "%"
    if key.endswith("_tokens"):
        return "tokens"
    return {"avg_turn_count": "turns", "avg_csat": "/10"}.get(key, "")


def format_metric(key: str, value: Any) -> str:
    """The text of a KPI card's number and of its ``data-value``."""
    v = _f(value)
    return MISSING if v is None else format(v, metric_format_spec(key))


def kpi_keys(metrics: dict[str, Any]) -> list[str]:
    """The metrics that get a card, in card order."""
    known = [k for k in KPI_ORDER if k in metrics]
    extra = sorted(k for k in metrics if k.startswith("avg_") and k not in KPI_ORDER and _numberish(metrics[k]))
    return known + extra


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


# --------------------------------------------------------------------------- small helpers


def _f(v: Any) -> float | None:
    """A finite float, or None (None, NaN, infinities, bools and non-numbers)."""
    if v is None or isinstance(v, bool):
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _i(v: Any) -> int | None:
    x = _f(v)
    return None if x is None else int(x)


def e(v: Any) -> str:
    """HTML-escaped text (quotes too: safe in attributes)."""
    return html.escape("" if v is None else str(v), quote=True)


def _cut(text: Any, limit: int = MAX_TEXT) -> tuple[str, int]:
    s = "" if text is None else str(text)
    return (s, 0) if len(s) <= limit else (s[:limit], len(s) - limit)


def _cut_note(n: int) -> str:
    return f'<span class="cut">… {n:,} more characters not shown</span>' if n else ""


def _num(v: Any, digits: int = 0, unit: str = "") -> str:
    x = _f(v)
    if x is None:
        return "—"
    return f"{x:,.{digits}f}" + (f" {unit}" if unit else "")


def _score_text(v: Any) -> str:
    x = _f(v)
    if x is None:
        return "—"
    s = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _pct(n: int, d: int) -> str:
    return "—" if not d else f"{100.0 * n / d:.0f}%"


def _dt(v: Any) -> datetime | None:
    if isinstance(v, datetime):
        return v
    if isinstance(v, str) and v:
        try:
            return datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def _fmt_time(v: Any) -> str:
    d = _dt(v)
    if d is None:
        return "—" if v in (None, "") else str(v)
    if d.tzinfo is not None:
        d = d.astimezone(timezone.utc)
    return d.strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(a: Any, b: Any) -> str:
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


def _anchor(chat_id: str) -> str:
    return "chat-" + chat_id


def _href(chat_id: str) -> str:
    return "#" + quote(_anchor(chat_id), safe="")


def _percentile(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    k = (len(s) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def _json_text(v: Any) -> str:
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


def _canon(name: Any, args: Any) -> tuple[str, str]:
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


def _mark(tag: str, text: str) -> str:
    """<tag>word</tag> with the trailing whitespace outside the highlight."""
    body = text.rstrip()
    tail = text[len(body):]
    return (f"<{tag}>{e(body)}</{tag}>" if body else "") + e(tail)


def word_diff(new: str | None, old: str | None) -> tuple[str, str]:
    """(replayed, production) as escaped HTML: words only in the replayed answer in ``<ins>``,
    words only in production's in ``<del>``; whitespace differences are not differences."""
    a = _TOKEN.findall(old or "")
    b = _TOKEN.findall(new or "")
    if len(a) > MAX_DIFF_TOKENS or len(b) > MAX_DIFF_TOKENS:
        return e(new), e(old)
    sm = difflib.SequenceMatcher(None, [t.strip() for t in a], [t.strip() for t in b], autojunk=False)
    old_html: list[str] = []
    new_html: list[str] = []
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            old_html.append(e("".join(a[i1:i2])))
            new_html.append(e("".join(b[j1:j2])))
            continue
        if i2 > i1:
            old_html.append(_mark("del", "".join(a[i1:i2])))
        if j2 > j1:
            new_html.append(_mark("ins", "".join(b[j1:j2])))
    return "".join(new_html), "".join(old_html)


# --------------------------------------------------------------------------- verdicts


def verdict(d: dict[str, Any]) -> str:
    """"regression", "improvement" or "unchanged" for a baseline delta row."""
    direction = str(d.get("direction") or "").lower()
    delta = _f(d.get("delta"))
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


def _delta_class(d: dict[str, Any] | None) -> str:
    if not d:
        return "neutral"
    v = verdict(d)
    if v == "unchanged":
        return "neutral"
    cls = "bad" if v == "regression" else "good"
    return cls if d.get("significant") else cls + "-weak"


# --------------------------------------------------------------------------- charts

GREEN, RED, GREY, BLUE, AMBER, PURPLE = "#1a7f37", "#cf222e", "#8c959f", "#0969da", "#bf8700", "#8250df"
COLORWAY = [BLUE, PURPLE, "#1b7c83", AMBER, "#bc4c00", "#4d2d8c", "#0550ae", "#6e7781"]
FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'


@lru_cache(maxsize=1)
def _template():
    import plotly.graph_objects as go

    axis = dict(gridcolor="#eaeef2", linecolor="#d0d7de", zerolinecolor="#afb8c1", automargin=True,
                ticks="", title=dict(font=dict(size=11, color="#57606a")))
    return go.layout.Template(layout=dict(
        font=dict(family=FONT, size=11, color="#24292f"), paper_bgcolor="#ffffff", plot_bgcolor="#ffffff",
        colorway=COLORWAY, margin=dict(l=8, r=12, t=8, b=8), xaxis=axis, yaxis=axis, bargap=0.08,
        legend=dict(orientation="h", x=0, xanchor="left", y=1.0, yanchor="bottom", font=dict(size=11)),
        hoverlabel=dict(font=dict(family=FONT, size=12)),
    ))


@lru_cache(maxsize=1)
def plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def _label(s: Any) -> str:
    """A text for plotly: escaped, because plotly renders a subset of HTML in labels."""
    return e(s)


def _figure(fig) -> dict[str, Any]:
    fig.update_layout(template=_template())
    d = fig.to_plotly_json()
    return {"data": d.get("data", []), "layout": d.get("layout", {})}


def _bins(values: list[float]) -> tuple[dict[str, float] | None, dict[str, Any]]:
    """(histogram bins, x-axis settings): one bar per value on small integer (or half) scales
    such as csat 1..10 or pass/fail 0/1, 20 bins on 0..1, plotly's choice otherwise."""
    lo, hi = min(values), max(values)
    if all(float(2 * v).is_integer() for v in values) and hi - lo <= 30 and (hi > 1 or all(v in (0, 1) for v in values)):
        size = 1.0 if all(float(v).is_integer() for v in values) else 0.5
        if 0 <= lo and 1 < hi <= 10:  # a 1..10 scale: show all of it
            lo, hi = 1.0, 10.0
        bins = dict(start=lo - size / 2, end=hi + size / 2, size=size)
        return bins, dict(dtick=1, range=[bins["start"], bins["end"]])
    if 0 <= lo and hi <= 1:
        return dict(start=0, end=1.0001, size=0.05), dict(range=[0, 1.05])
    return None, {}


def _count_axis(most: int) -> dict[str, Any]:
    """Whole-number ticks on a count axis that would otherwise show 0.5 steps."""
    return dict(dtick=1, rangemode="tozero") if most <= 8 else dict(rangemode="tozero")


def _fig_scores(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    import plotly.graph_objects as go

    numeric = [(v, r.get("passed")) for r in rows if (v := _f(r.get("value"))) is not None]
    if numeric:
        bins, xaxis = _bins([v for v, _ in numeric])
        fig = go.Figure()
        for name, want, color in (("pass", True, GREEN), ("fail", False, RED), ("no verdict", None, GREY)):
            xs = [v for v, p in numeric if (p is None if want is None else p is want)]
            if xs:
                fig.add_trace(go.Histogram(x=xs, name=name, marker_color=color, xbins=bins, bingroup="1",
                                           hovertemplate="%{x}: %{y}<extra>" + name + "</extra>"))
        fig.update_layout(barmode="stack", showlegend=True, yaxis=dict(title="count", **_count_axis(len(numeric))),
                          xaxis=dict(title="value", **xaxis), legend=dict(traceorder="normal"))
        return _figure(fig)
    labels = Counter(str(r.get("label")) for r in rows if r.get("label") is not None)
    if not labels:
        return None
    fig = go.Figure(go.Bar(x=[_label(k) for k in labels], y=list(labels.values()), marker_color=BLUE))
    fig.update_layout(yaxis=dict(title="count", **_count_axis(max(labels.values()))), xaxis_title="label")
    return _figure(fig)


def _fig_latency(latencies: list[float]) -> dict[str, Any] | None:
    import plotly.graph_objects as go

    if not latencies:
        return None
    fig = go.Figure(go.Histogram(x=latencies, marker_color=BLUE, name="turns",
                                 hovertemplate="%{x} ms: %{y} turns<extra></extra>"))
    for q, name, color in ((0.5, "p50", GREEN), (0.95, "p95", RED)):
        x = _percentile(latencies, q)
        fig.add_vline(x=x, line_width=1.5, line_dash="dash", line_color=color,
                      annotation_text=name, annotation_position="top right",
                      annotation_font=dict(color=color, size=11))
    fig.update_layout(xaxis_title="turn latency (ms)", yaxis=dict(title="turns", **_count_axis(len(latencies))),
                      showlegend=False)
    return _figure(fig)


def _short(s: str, n: int = 14) -> str:
    return s if len(s) <= n else s[: n // 2 - 1] + "…" + s[-(n // 2 - 1):]


def _fig_tokens(chats: list[dict[str, Any]]) -> dict[str, Any] | None:
    import plotly.graph_objects as go

    rows = [(str(c["chat_id"]), _f(c.get("input_tokens")) or 0.0, _f(c.get("output_tokens")) or 0.0) for c in chats]
    if not rows or not any(i or o for _, i, o in rows):
        return None
    fig = go.Figure()
    if len(rows) <= 40:
        ids = [_label(r[0]) for r in rows]
        fig.add_trace(go.Bar(x=ids, y=[r[1] for r in rows], name="input", marker_color="#9ec5fe",
                             hovertemplate="%{x}<br>input %{y:,} tokens<extra></extra>"))
        fig.add_trace(go.Bar(x=ids, y=[r[2] for r in rows], name="output", marker_color=BLUE,
                             hovertemplate="%{x}<br>output %{y:,} tokens<extra></extra>"))
        fig.update_layout(barmode="stack", yaxis_title="tokens per chat", legend=dict(traceorder="normal"),
                          xaxis=dict(tickvals=ids, ticktext=[_label(_short(r[0])) for r in rows], tickangle=-30))
    else:
        fig.add_trace(go.Histogram(x=[r[1] for r in rows], name="input", marker_color="#9ec5fe", opacity=0.75))
        fig.add_trace(go.Histogram(x=[r[2] for r in rows], name="output", marker_color=BLUE, opacity=0.75))
        fig.update_layout(barmode="overlay", xaxis_title="tokens per chat", yaxis_title="chats",
                          legend=dict(traceorder="normal"))
    return _figure(fig)


def _fig_branches(chats: list[dict[str, Any]], scores: list[dict[str, Any]],
                  evaluators: list[str]) -> dict[str, Any] | None:
    import plotly.graph_objects as go

    if not chats:
        return None
    cat = {str(c["chat_id"]): str(c.get("branch_category") or "(none)") for c in chats}
    cats = sorted(set(cat.values()))
    fig = go.Figure()
    done = Counter(cat[str(c["chat_id"])] for c in chats if c.get("status") == "completed")
    total = Counter(cat.values())
    series = [("completed", {k: (done[k], total[k]) for k in cats})]
    passed: dict[str, Counter] = defaultdict(Counter)
    judged: dict[str, Counter] = defaultdict(Counter)
    for s in scores:
        k = cat.get(str(s.get("chat_id")))
        if k is None or s.get("passed") is None:
            continue
        judged[s["evaluator"]][k] += 1
        passed[s["evaluator"]][k] += bool(s["passed"])
    for ev in evaluators:
        if judged[ev]:
            series.append((ev, {k: (passed[ev][k], judged[ev][k]) for k in cats if judged[ev][k]}))
    for i, (name, by_cat) in enumerate(series):
        xs = list(by_cat)
        fig.add_trace(go.Bar(
            x=[_label(k) for k in xs], y=[n / d if d else None for n, d in by_cat.values()],
            customdata=[[n, d] for n, d in by_cat.values()], name=_label(name),
            texttemplate="%{y:.0%}", textposition="outside", cliponaxis=False, textfont=dict(size=10),
            marker_color=GREY if i == 0 else COLORWAY[(i - 1) % len(COLORWAY)],
            hovertemplate="%{x}<br>" + _label(name) + ": %{y:.0%} (%{customdata[0]}/%{customdata[1]})<extra></extra>"))
    fig.update_layout(barmode="group", yaxis=dict(tickformat=".0%", range=[0, 1.12], title="pass rate"),
                      xaxis=dict(type="category"), legend=dict(traceorder="normal"), bargroupgap=0.06)
    return _figure(fig)


def _fig_deltas(deltas: list[dict[str, Any]]) -> dict[str, Any] | None:
    """One row per metric, each on its own scale centred on 0 (metrics do not share units)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = [d for d in deltas if _f(d.get("delta")) is not None]
    if not rows:
        return None
    fig = make_subplots(rows=len(rows), cols=1, vertical_spacing=min(0.04, 0.5 / len(rows)))
    colors = {"bad": RED, "bad-weak": "#ff818266", "good": GREEN, "good-weak": "#4ac26b66", "neutral": GREY}
    for i, d in enumerate(rows, start=1):
        delta, lo, hi = _f(d["delta"]), _f(d.get("lo")), _f(d.get("hi"))
        err = None
        if lo is not None and hi is not None:
            err = dict(type="data", symmetric=False, array=[max(hi - delta, 0)], arrayminus=[max(delta - lo, 0)],
                       color="#24292f", thickness=1.5, width=6)
        name = _label(d.get("metric"))
        ci = f" [{lo:.4g}, {hi:.4g}]" if err else ""
        fig.add_trace(go.Bar(x=[delta], y=[name], orientation="h", marker_color=colors[_delta_class(d)],
                             error_x=err, width=0.55,
                             hovertemplate=f"{name}: Δ %{{x:.4g}}{_label(ci)}<extra></extra>"), row=i, col=1)
        span = max(abs(v) for v in (delta, lo, hi) if v is not None) * 1.1 or 1.0
        fig.update_xaxes(range=[-span, span], zeroline=True, zerolinewidth=1.5, zerolinecolor="#57606a",
                         showgrid=False, showticklabels=False, row=i, col=1)
        fig.update_yaxes(showgrid=False, row=i, col=1)
        yref = "y domain" if i == 1 else f"y{i} domain"
        fig.add_annotation(x=1.01, xref="paper", xanchor="left", y=0.5, yref=yref, showarrow=False, align="left",
                           text=f"<b>{delta:+.4g}</b>" + (f"  <span style='color:#656d76'>CI{_label(ci)}</span>" if ci else ""),
                           font=dict(size=11, color=RED if _delta_class(d) == "bad" else "#24292f"))
    fig.update_layout(showlegend=False, height=24 + 44 * len(rows), margin=dict(l=8, r=190, t=8, b=8))
    return _figure(fig)


# --------------------------------------------------------------------------- page parts


def _badge(text: str, cls: str, title: str = "") -> str:
    t = f' title="{e(title)}"' if title else ""
    return f'<span class="badge {cls}"{t}>{e(text)}</span>'


def _status_badge(status: Any) -> str:
    s = str(status or "unknown")
    cls = {"completed": "ok", "failed": "err", "running": "info", "COMPLETED": "ok", "FAILED": "err"}.get(s, "muted")
    return _badge(s, cls)


SOURCE_HELP = {
    "recorded": "answered from production's recorded result of this call",
    "nearest": "no exact recorded call: answered from the nearest recorded call of this tool",
    "off_script": "no recorded call matched: the agent got an error (off script)",
    "live": "the real tool answered (live tools)",
}


def _source_badge(call: dict[str, Any]) -> str:
    src = str(call.get("source") or "unknown")
    text = "answer: " + src
    mt = _i(call.get("matched_turn"))
    if mt is not None and src in ("recorded", "nearest"):
        text += f" (prod turn {mt})"
    cls = "src-" + src if src in SOURCE_HELP else "src-unknown"
    return _badge(text, cls, SOURCE_HELP.get(src, "where the answer came from is not recorded"))


def _score_chip(s: dict[str, Any], with_name: bool = True) -> str:
    p = s.get("passed")
    cls = "pass" if p is True else "fail" if p is False else "na"
    val = _score_text(s.get("value")) if _f(s.get("value")) is not None else (s.get("label") or "—")
    name = f'<span class="sc-name">{e(s.get("evaluator"))}</span> ' if with_name else ""
    tip = " · ".join(str(x) for x in (s.get("label"), s.get("reason"), s.get("source")) if x)
    return f'<span class="score {cls}" title="{e(tip)}">{name}<b>{e(val)}</b></span>'


def _header(ex: dict[str, Any], baseline: dict[str, Any] | None) -> str:
    title = ex.get("name") or ex.get("execution_id") or "execution"
    scen = ex.get("scenario_name") or ""
    scen = f'{e(scen)} <span class="dim">{e(ex.get("scenario_id"))}</span>' if scen else e(ex.get("scenario_id"))
    meta = [
        ("Execution", f'<code>{e(ex.get("execution_id"))}</code>'),
        ("Run test", f'<code>{e(ex.get("run_test_id"))}</code>'),
        ("Scenario", scen),
        ("Agent", f'<code>{e(ex.get("agent_ref"))}</code>'),
        ("Mode", f'{e(ex.get("mode") or "—")} · tools {e(ex.get("tool_mode") or "—")}'),
        ("Started", e(_fmt_time(ex.get("started_at")))),
        ("Ended", e(_fmt_time(ex.get("ended_at")))),
        ("Duration", e(_duration(ex.get("started_at"), ex.get("ended_at")))),
    ]
    if baseline:
        meta.append(("Baseline", f'<code>{e(baseline.get("execution_id"))}</code>'))
    dl = "".join(f'<div{" class=wide" if k == "Scenario" else ""}><dt>{k}</dt><dd>{v}</dd></div>' for k, v in meta)
    return (f'<header class="top" id="top"><div class="eyebrow">Replay report</div>'
            f'<h1>{e(title)} {_status_badge(ex.get("status"))}</h1><dl class="meta">{dl}</dl></header>')


def _nav(has_baseline: bool) -> str:
    links = [("overview", "Overview"), ("charts", "Charts")]
    if has_baseline:
        links.append(("baseline", "Baseline"))
    links += [("sessions-section", "Sessions"), ("transcripts", "Transcripts")]
    return '<nav class="bar">' + "".join(f'<a href="#{i}">{t}</a>' for i, t in links) + "</nav>"


# the figures of tasks.compare.between that a KPI card stands for (besides avg_<metric>)
DELTA_ALIASES = {"avg_chat_latency_ms": ("latency", "chat_latency_ms", "avg_latency_ms"),
                 "avg_output_tokens": ("output_tokens",), "avg_turn_count": ("turn_count",),
                 "completion_pct": ("failed", "completed")}


def _delta_for(key: str, deltas: list[dict[str, Any]]) -> dict[str, Any] | None:
    for d in deltas:
        m = str(d.get("metric"))
        if key in (m, "avg_" + m) or m in DELTA_ALIASES.get(key, ()):
            return d
    return None


def _kpis(metrics: dict[str, Any], baseline: dict[str, Any] | None) -> str:
    bm = (baseline or {}).get("metrics") or {}
    deltas = (baseline or {}).get("deltas") or []
    cards = []
    for key in kpi_keys(metrics):
        text = format_metric(key, metrics[key])
        label = KPI_LABELS.get(key) or key.removeprefix("avg_").replace("_", " ")
        unit = metric_unit(key) if text != MISSING else ""
        unit_html = f'<span class="kpi-unit">{e(unit)}</span>' if unit else ""
        base_html, base_attr = "", ""
        if baseline is not None and key in bm:
            btext = format_metric(key, bm[key])
            base_attr = f' data-baseline-value="{e(btext)}"'
            cur, old = _f(metrics[key]), _f(bm[key])
            diff = ""
            if cur is not None and old is not None:
                dv = format(cur - old, "+" + metric_format_spec(key)) if cur != old else "±0"
                d = _delta_for(key, deltas)
                sig = " · significant" if d and d.get("significant") else ""
                arrow = "▲" if cur > old else "▼" if cur < old else "="
                diff = f' <span class="delta {_delta_class(d)}">{arrow} {e(dv)}{sig}</span>'
            base_html = f'<div class="kpi-base">baseline {e(btext)}{diff}</div>'
        full = f"{label} ({key})"
        cards.append(f'<div class="kpi" data-metric="{e(key)}" data-value="{e(text)}"{base_attr} title="{e(full)}">'
                     f'<div class="kpi-label">{e(label)}</div>'
                     f'<div class="kpi-value"><span class="kpi-num">{e(text)}</span>{unit_html}</div>'
                     f"{base_html}</div>")
    return f'<section id="overview"><div class="kpis">{"".join(cards)}</div></section>'


def _chart_box(div_id: str, title: str, sub: str, fig: dict[str, Any] | None, height: int,
               figs: list[dict[str, Any]], wide: bool = False) -> str:
    cls = "chart-box wide" if wide else "chart-box"
    head = f'<h3>{title}</h3>' + (f'<div class="sub">{sub}</div>' if sub else "")
    if fig is None:
        return f'<div class="{cls}">{head}<div class="empty">no data</div></div>'
    fig["layout"].setdefault("height", height)
    figs.append({"id": div_id, **fig})
    h = fig["layout"]["height"]
    return f'<div class="{cls}">{head}<div class="chart" id="{e(div_id)}" style="height:{int(h)}px"></div></div>'


def _charts(chats, turns, scores, evaluators, figs) -> str:
    boxes = []
    by_ev: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in scores:
        by_ev[s["evaluator"]].append(s)
    for n, ev in enumerate(evaluators):
        rows = by_ev[ev]
        judged = [r for r in rows if r.get("passed") is not None]
        ok = sum(1 for r in judged if r["passed"])
        lvl = "turn" if any(r.get("turn_index") is not None for r in rows) else "chat"
        sub = f"{len(rows)} {lvl} scores · pass {ok}/{len(judged)} ({_pct(ok, len(judged))})" if judged \
            else f"{len(rows)} {lvl} scores"
        boxes.append(_chart_box(f"chart-score-{n}", f"Score · {e(ev)}", sub, _fig_scores(rows), 220, figs))
    lat = [x for t in turns if (x := _f(t.get("latency_ms"))) is not None]
    sub = (f"{len(lat)} turns · p50 {_num(_percentile(lat, .5), 0, 'ms')} · p95 {_num(_percentile(lat, .95), 0, 'ms')}"
           if lat else "")
    boxes.append(_chart_box("chart-latency", "Turn latency", sub, _fig_latency(lat), 260, figs))
    tin = sum(_f(c.get("input_tokens")) or 0 for c in chats)
    tout = sum(_f(c.get("output_tokens")) or 0 for c in chats)
    boxes.append(_chart_box("chart-tokens", "Tokens per chat", f"{tin:,.0f} in · {tout:,.0f} out",
                            _fig_tokens(chats), 260, figs))
    boxes.append(_chart_box("chart-branches", "Pass rate per branch category",
                            "share of completed chats and of passed scores, per conversation branch",
                            _fig_branches(chats, scores, evaluators), 280, figs, wide=True))
    return f'<section id="charts"><h2>Charts</h2><div class="charts">{"".join(boxes)}</div></section>'


def _baseline(baseline: dict[str, Any], figs) -> str:
    deltas = baseline.get("deltas") or []
    rows = []
    for d in deltas:
        v = verdict(d)
        cls = _delta_class(d)
        lo, hi = _f(d.get("lo")), _f(d.get("hi"))
        ci = f"[{lo:.4g}, {hi:.4g}]" if lo is not None and hi is not None else "—"
        dv = _f(d.get("delta"))
        text = v + (" (significant)" if d.get("significant") else "")
        rows.append(f'<tr data-metric="{e(d.get("metric"))}" data-verdict="{e(v)}" '
                    f'data-significant="{"true" if d.get("significant") else "false"}">'
                    f'<td>{e(d.get("metric"))}</td><td class="n">{e(_score_text(d.get("a")))}</td>'
                    f'<td class="n">{e(_score_text(d.get("b")))}</td>'
                    f'<td class="n">{e("—" if dv is None else format(dv, "+.4g"))}</td><td class="n">{e(ci)}</td>'
                    f'<td><span class="delta {cls}">{e(text)}</span></td></tr>')
    regress = [d for d in deltas if d.get("significant") and verdict(d) == "regression"]
    note = (f'<p class="alert">{len(regress)} significant regression{"s" if len(regress) != 1 else ""}: '
            f'{e(", ".join(str(d.get("metric")) for d in regress))}</p>' if regress
            else '<p class="okline">No significant regression against the baseline.</p>')
    table = (f'<table class="grid deltas"><thead><tr><th>metric</th><th class="n">baseline (a)</th>'
             f'<th class="n">this run (b)</th><th class="n">Δ = b − a</th><th class="n">95% CI</th><th>verdict</th>'
             f'</tr></thead><tbody>{"".join(rows)}</tbody></table>') if rows else '<p class="dim">No deltas.</p>'
    chart = _chart_box("chart-deltas", "Δ against the baseline",
                       "bar: b − a · whiskers: its confidence interval · each metric on its own scale, 0 in the "
                       "middle · red: significant regression, green: significant improvement, pale: not significant",
                       _fig_deltas(deltas), 200, figs, wide=True)
    return (f'<section id="baseline"><h2>Against baseline <code>{e(baseline.get("execution_id"))}</code></h2>'
            f'{note}<div class="baseline-grid">{chart}<div class="chart-box wide">{table}</div></div></section>')


def _chat_order(chats, fail_chats: set[str]) -> list[dict[str, Any]]:
    def key(c):
        cid = str(c["chat_id"])
        group = 0 if c.get("status") == "failed" else 1 if (cid in fail_chats or c.get("divergence_turn") is not None) else 2
        return (group, _i(c.get("row_index")) or 0, _i(c.get("repetition")) or 0, cid)

    return sorted(chats, key=key)


def _ev_cell(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return '<td class="n dim" data-sort="">—</td>'
    chat_level = [r for r in rows if r.get("turn_index") is None]
    if chat_level:
        r = chat_level[0]
        return f'<td class="n" data-sort="{e(_f(r.get("value")) if _f(r.get("value")) is not None else "")}">' \
               f'{_score_chip(r, with_name=False)}</td>'
    vals = [v for r in rows if (v := _f(r.get("value"))) is not None]
    judged = [r for r in rows if r.get("passed") is not None]
    ok = sum(1 for r in judged if r["passed"])
    mean = sum(vals) / len(vals) if vals else None
    cls = "na" if not judged else "pass" if ok == len(judged) else "fail"
    txt = _score_text(mean) + (f" · {ok}/{len(judged)}" if judged else "")
    return (f'<td class="n" data-sort="{e(mean if mean is not None else "")}"><span class="score {cls}" '
            f'title="mean of {len(rows)} turn scores; passed {ok}/{len(judged)}"><b>{e(txt)}</b></span></td>')


def _sessions(ordered, shown_transcripts: set[str], scores_by_chat, evaluators, max_sessions: int,
              execution_id: Any) -> str:
    head = ["Chat", "Row", "Persona · branch", "Status · ended", "Diverged", "Turns", "Avg latency",
            "Tokens in / out"] + [e(ev) for ev in evaluators]
    ths = "".join(f'<th data-col="{i}">{h}</th>' for i, h in enumerate(head))
    rows = []
    for c in ordered[:max_sessions]:
        cid = str(c["chat_id"])
        link = (f'<a href="{_href(cid)}" class="chat-link">{e(cid)}</a>' if cid in shown_transcripts
                else f'<span title="transcript not included (see the note below)">{e(cid)}</span>')
        div = _i(c.get("divergence_turn"))
        by_ev: dict[str, list] = defaultdict(list)
        for s in scores_by_chat.get(cid, []):
            by_ev[s["evaluator"]].append(s)
        err = f'<div class="err-line" title="{e(c.get("error"))}">{e(_cut(c.get("error"), 140)[0])}</div>' \
            if c.get("error") else ""
        status = str(c.get("status") or "")
        cells = [
            f'<td>{link}<div class="dim small">{e(c.get("origin_id"))}</div></td>',
            f'<td class="n" data-sort="{e(_i(c.get("row_index")))}">{e(c.get("row_index"))}'
            f'<span class="dim">·{e(c.get("repetition"))}</span></td>',
            f'<td class="who-cell">{e(c.get("persona_name") or "—")}'
            f'<div class="dim small">{e(c.get("branch_category") or "")}</div></td>',
            f'<td data-sort="{e(status)}">{_status_badge(status)} <span class="dim small">'
            f'{e(c.get("ended_reason") or "")}</span>{err}</td>',
            f'<td class="n" data-sort="{"" if div is None else div}">'
            + ("—" if div is None else f'<span class="badge warn">turn {div}</span>') + "</td>",
            f'<td class="n">{e(c.get("turn_count"))}</td>',
            f'<td class="n" data-sort="{e(_f(c.get("avg_latency_ms")) or "")}">{_num(c.get("avg_latency_ms"), 0, "ms")}</td>',
            f'<td class="n" data-sort="{e(_f(c.get("output_tokens")) or "")}">'
            f'{_num(c.get("input_tokens"))} / {_num(c.get("output_tokens"))}</td>',
        ] + [_ev_cell(by_ev.get(ev, [])) for ev in evaluators]
        cls = "row-failed" if status == "failed" else "row-diverged" if div is not None else ""
        rows.append(f'<tr data-chat-id="{e(cid)}" data-status="{e(status)}" class="{cls}">{"".join(cells)}</tr>')
    note = ""
    if len(ordered) > max_sessions:
        note = (f'<p class="note">Showing {max_sessions:,} of {len(ordered):,} chats (failed first, then failing '
                f'or diverged). All of them: <code>replay sql "SELECT * FROM chats WHERE execution_id = '
                f"'{e(execution_id)}'\"</code></p>")
    return (f'<section id="sessions-section"><h2>Sessions <span class="dim">({len(ordered):,})</span></h2>'
            f'<div class="tools-row"><input id="session-filter" type="search" placeholder="Filter sessions…" '
            f'aria-label="Filter sessions"><span id="session-count" class="dim"></span>'
            f'<span class="dim small">click a column header to sort</span></div>'
            f'<div class="table-wrap"><table class="grid sessions" id="sessions"><thead><tr>{ths}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>{note}</section>')


def _tool_list(calls: list[dict[str, Any]], other: set[tuple[str, str]], replayed: bool) -> str:
    if not calls:
        return ""
    items = []
    other_names = {n for n, _ in other}
    for c in calls:
        status = str(c.get("status") or "")
        flag = ""
        if _canon(c.get("name"), c.get("arguments")) not in other:
            if str(c.get("name")) in other_names:
                flag = _badge("arguments differ", "muted",
                              "the other side called this tool with other arguments")
            else:
                flag = _badge("not in production" if replayed else "not replayed", "muted",
                              "the other side did not call this tool in this turn")
        src = _source_badge(c) if replayed else ""
        st = _badge(status, "err") if status and status != "ok" else ""
        args, n_args = _cut(_json_text(c.get("arguments")))
        res, n_res = _cut(_json_text(c.get("result")))
        items.append(
            f'<div class="tool{" tool-error" if status == "error" else ""}">'
            f'<div class="tool-head"><span class="tool-icon">⚙</span><code class="tool-name">{e(c.get("name"))}</code>'
            f"{src}{st}{flag}</div>"
            f'<div class="kv"><span class="k">args</span><pre>{e(args) or "<span class=dim>none</span>"}{_cut_note(n_args)}</pre></div>'
            f'<div class="kv"><span class="k">result</span><pre>{e(res) or "<span class=dim>none</span>"}{_cut_note(n_res)}</pre></div>'
            f"</div>")
    return f'<div class="tools">{"".join(items)}</div>'


def _turn(chat_id: str, t: dict[str, Any], div: int | None, turn_scores: list[dict[str, Any]]) -> str:
    idx = _i(t.get("turn_index")) or 0
    new, n_new = _cut(t.get("assistant_message"))
    old_raw = t.get("original_assistant_message")
    old, n_old = _cut(old_raw)
    calls = list(t.get("tool_calls") or [])
    ocalls = list(t.get("original_tool_calls") or [])
    has_prod = old_raw is not None or bool(ocalls)
    if has_prod:
        new_html, old_html = word_diff(new, old)
    else:
        new_html, old_html = e(new), ""
    canon_new = {_canon(c.get("name"), c.get("arguments")) for c in calls}
    canon_old = {_canon(c.get("name"), c.get("arguments")) for c in ocalls}
    user, n_user = _cut(t.get("user_message"))
    usrc = str(t.get("user_source") or "original")
    usrc_badge = _badge("simulated user" if usrc == "simulated" else "production user", "muted" if usrc != "simulated" else "info")
    sim = _f(t.get("similarity"))
    bits = [f"<b>Turn {idx}</b>", usrc_badge]
    if _f(t.get("latency_ms")) is not None:
        bits.append(f'<span class="dim">{_num(t.get("latency_ms"), 0, "ms")}</span>')
    if sim is not None:
        bits.append(f'<span class="sim {"lo" if sim < 0.6 else ""}" title="similarity to production\'s answer (0..1)">'
                    f"similarity {sim:.2f}</span>")
    cls = "turn"
    marker = ""
    if div is not None and idx == div:
        cls += " diverged"
        bits.append(_badge("⚑ first divergence", "warn", "the replay stopped following production at this turn"))
        marker = '<div class="div-marker"><span>diverged from production here</span></div>'
    elif div is not None and idx > div:
        cls += " after-div"
    if turn_scores:
        bits.append('<span class="chips">' + "".join(_score_chip(s) for s in turn_scores) + "</span>")
    failing = [s for s in turn_scores if s.get("passed") is False and s.get("reason")]
    reasons = "".join(f'<div class="reason"><b>{e(s.get("evaluator"))}</b>: {e(_cut(s.get("reason"), 600)[0])}</div>'
                      for s in failing)
    err = f'<div class="err-box">turn error: {e(_cut(t.get("error"), 2000)[0])}</div>' if t.get("error") else ""
    replayed = (_tool_list(calls, canon_old, True)
                + (f'<div class="msg">{new_html}{_cut_note(n_new)}</div>' if new else '<div class="msg dim">(no answer)</div>'))
    if has_prod:
        production = (_tool_list(ocalls, canon_new, False)
                      + (f'<div class="msg">{old_html}{_cut_note(n_old)}</div>' if old else '<div class="msg dim">(no answer)</div>'))
    else:
        production = '<div class="msg dim">no production turn at this index</div>'
    return (f'{marker}<article class="{cls}" id="{e(f"turn-{chat_id}-{idx}")}" data-turn-index="{idx}">'
            f'<div class="turn-head">{" ".join(bits)}</div>'
            f'<div class="user-msg"><span class="who">user</span><div class="msg">{e(user)}{_cut_note(n_user)}</div></div>'
            f'<div class="sxs"><div class="side replayed"><div class="side-label">replayed · dev build</div>{replayed}</div>'
            f'<div class="side production"><div class="side-label">production</div>{production}</div></div>'
            f"{reasons}{err}</article>")


def _transcript(c: dict[str, Any], turns: list[dict[str, Any]], scores: list[dict[str, Any]]) -> str:
    cid = str(c["chat_id"])
    div = _i(c.get("divergence_turn"))
    chat_scores = [s for s in scores if s.get("turn_index") is None]
    by_turn: dict[int, list] = defaultdict(list)
    for s in scores:
        if s.get("turn_index") is not None:
            by_turn[_i(s["turn_index"])].append(s)
    badges = [_status_badge(c.get("status"))]
    if div is not None:
        badges.append(f'<a class="badge warn" href="#{e(quote(f"turn-{cid}-{div}", safe=""))}">diverged at turn {div}</a>')
    who = " · ".join(e(x) for x in (c.get("persona_name"), c.get("branch_category")) if x)
    chips = "".join(_score_chip(s) for s in chat_scores)
    summary = (f'<summary><span class="chev">▸</span><code class="cid">{e(cid)}</code> {"".join(badges)}'
               f'<span class="dim">{who}</span><span class="dim">{e(c.get("turn_count"))} turn{"" if _i(c.get("turn_count")) == 1 else "s"}</span>'
               f'<span class="chips">{chips}</span></summary>')
    facts = [("origin", e(c.get("origin_id"))), ("row", f'{e(c.get("row_index"))} · repetition {e(c.get("repetition"))}'),
             ("ended", e(c.get("ended_reason") or "—")), ("avg latency", _num(c.get("avg_latency_ms"), 0, "ms")),
             ("tokens", f'{_num(c.get("input_tokens"))} in / {_num(c.get("output_tokens"))} out')]
    facts_html = "".join(f"<span><b>{k}</b> {v}</span>" for k, v in facts)
    err = f'<div class="err-box">chat error: {e(_cut(c.get("error"), 4000)[0])}</div>' if c.get("error") else ""
    score_rows = "".join(
        f'<tr><td>{e(s.get("evaluator"))}</td><td>{_score_chip(s, with_name=False)}</td><td>{e(s.get("label") or "")}</td>'
        f'<td class="reason-cell">{e(_cut(s.get("reason"), 2000)[0])}</td><td class="dim">{e(s.get("source") or "")}</td></tr>'
        for s in chat_scores)
    score_table = (f'<table class="grid chat-scores"><thead><tr><th>evaluator</th><th>score</th><th>label</th>'
                   f'<th>reason</th><th>source</th></tr></thead><tbody>{score_rows}</tbody></table>') if score_rows else ""
    body = "".join(_turn(cid, t, div, by_turn.get(_i(t.get("turn_index")), [])) for t in turns) \
        or '<p class="dim">No turns recorded.</p>'
    cls = "chat" + (" chat-failed" if c.get("status") == "failed" else "") + (" chat-diverged" if div is not None else "")
    return (f'<section class="{cls}" id="{e(_anchor(cid))}" data-chat-id="{e(cid)}"><details>{summary}'
            f'<div class="chat-body"><div class="facts">{facts_html}</div>{err}{score_table}'
            f'<div class="turns">{body}</div></div></details></section>')


# --------------------------------------------------------------------------- CSS and JS

CSS = """
:root{--fg:#1f2328;--dim:#656d76;--line:#d0d7de;--soft:#f6f8fa;--blue:#0969da;--green:#1a7f37;--red:#cf222e;
--amber:#9a6700;--bg:#ffffff;--ins:#dafbe1;--del:#ffebe9}
*{box-sizing:border-box}
body{margin:0;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:#f6f8fa}
main{max-width:1320px;margin:0 auto;padding:0 20px 48px}
code,pre{font-family:ui-monospace,SFMono-Regular,"SF Mono",Menlo,Consolas,"Liberation Mono",monospace;font-size:12px}
h1{font-size:22px;margin:2px 0 12px;display:flex;align-items:center;gap:10px;flex-wrap:wrap;word-break:break-word}
h2{font-size:17px;margin:28px 0 12px}
h3{font-size:13px;margin:0;font-weight:600}
a{color:var(--blue);text-decoration:none}a:hover{text-decoration:underline}
.dim{color:var(--dim)}.small{font-size:12px}
header.top{background:var(--bg);border-bottom:1px solid var(--line);padding:18px 20px 14px}
header.top>*{max-width:1280px;margin-left:auto;margin-right:auto}
.eyebrow{font-size:11px;letter-spacing:.08em;text-transform:uppercase;color:var(--dim);font-weight:600}
.meta{display:grid;grid-template-columns:repeat(auto-fill,minmax(230px,1fr));gap:6px 20px;margin:0}
.meta div{min-width:0}.meta div.wide{grid-column:span 2}.meta dt{font-size:11px;color:var(--dim);text-transform:uppercase;letter-spacing:.04em}
.meta dd{margin:0;overflow-wrap:anywhere}
nav.bar{position:sticky;top:0;z-index:10;background:rgba(255,255,255,.96);border-bottom:1px solid var(--line);
padding:8px max(20px,calc((100% - 1280px) / 2));display:flex;gap:18px;font-weight:500;backdrop-filter:blur(4px)}
section{scroll-margin-top:52px}
.kpis{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:12px;margin-top:20px}
.kpi{background:var(--bg);border:1px solid var(--line);border-radius:8px;padding:12px 14px;min-width:0}
.kpi-label{font-size:12px;color:var(--dim);white-space:nowrap;overflow:hidden;text-overflow:ellipsis;text-transform:capitalize}
.kpi-value{font-size:26px;font-weight:600;line-height:1.25;margin-top:2px;font-variant-numeric:tabular-nums}
.kpi-unit{font-size:13px;font-weight:500;color:var(--dim);margin-left:4px}
.kpi-base{font-size:12px;color:var(--dim);margin-top:4px}
.delta{font-weight:600;white-space:nowrap;border-radius:4px;padding:0 4px}
.delta.bad{color:#fff;background:var(--red)}.delta.good{color:#fff;background:var(--green)}
.delta.bad-weak{color:var(--red)}.delta.good-weak{color:var(--green)}.delta.neutral{color:var(--dim)}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:12px}
.chart-box{background:var(--bg);border:1px solid var(--line);border-radius:8px;padding:12px 14px;min-width:0}
.chart-box.wide{grid-column:1/-1}
.chart-box .sub{font-size:12px;color:var(--dim);margin:2px 0 6px}
.chart{width:100%}
.empty{color:var(--dim);padding:30px 0;text-align:center}
.baseline-grid{display:grid;grid-template-columns:1fr;gap:12px}
.alert{background:#ffebe9;border:1px solid #ff8182;color:#82071e;border-radius:6px;padding:8px 12px;font-weight:500}
.okline{background:#dafbe1;border:1px solid #4ac26b;color:#116329;border-radius:6px;padding:8px 12px}
table.grid{border-collapse:collapse;width:100%;background:var(--bg);font-size:13px}
table.grid th,table.grid td{border-bottom:1px solid #eaeef2;padding:6px 10px;text-align:left;vertical-align:top}
table.grid th{background:var(--soft);font-size:12px;font-weight:600;color:#424a53;white-space:nowrap}
.table-wrap th{position:sticky;top:0;z-index:1}
table.grid td.n,table.grid th.n{text-align:right;font-variant-numeric:tabular-nums}
.table-wrap{overflow:auto;max-height:70vh;border:1px solid var(--line);border-radius:8px}
table.sessions th{cursor:pointer;user-select:none}
table.sessions th.sorted-asc::after{content:" ▲";font-size:10px}table.sessions th.sorted-desc::after{content:" ▼";font-size:10px}
table.sessions tr.row-failed td:first-child{box-shadow:inset 3px 0 0 var(--red)}
table.sessions tr.row-diverged td:first-child{box-shadow:inset 3px 0 0 #d4a72c}
table.sessions tbody tr:hover{background:#f6f8fa}
.err-line{color:var(--red);font-size:12px;max-width:240px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.who-cell{max-width:220px;overflow-wrap:anywhere}
.tools-row{display:flex;gap:12px;align-items:center;margin-bottom:8px}
#session-filter{font:inherit;padding:5px 10px;border:1px solid var(--line);border-radius:6px;width:280px}
.note{color:var(--dim);font-size:12px;margin:8px 0}
.badge{display:inline-block;font-size:11px;font-weight:600;line-height:18px;padding:0 7px;border-radius:10px;
border:1px solid transparent;white-space:nowrap;vertical-align:middle}
.badge.ok{background:#dafbe1;color:#116329;border-color:#aceebb}.badge.err{background:#ffebe9;color:#a40e26;border-color:#ffcecb}
.badge.warn{background:#fff8c5;color:#7d4e00;border-color:#f5e0a0}.badge.info{background:#ddf4ff;color:#0550ae;border-color:#b6e3ff}
.badge.muted{background:#f6f8fa;color:#57606a;border-color:#d0d7de}
h1 .badge{font-size:12px}
.src-recorded{background:#dafbe1;color:#116329;border-color:#aceebb}.src-nearest{background:#fff8c5;color:#7d4e00;border-color:#f5e0a0}
.src-off_script{background:#ffebe9;color:#a40e26;border-color:#ffcecb}.src-live{background:#ddf4ff;color:#0550ae;border-color:#b6e3ff}
.src-unknown{background:#f6f8fa;color:#57606a;border-color:#d0d7de}
.score{display:inline-flex;gap:4px;align-items:baseline;font-size:12px;padding:0 6px;border-radius:4px;white-space:nowrap;line-height:20px}
.score.pass{background:#dafbe1;color:#116329}.score.fail{background:#ffebe9;color:#a40e26}.score.na{background:#f6f8fa;color:#57606a}
.sc-name{font-weight:400}
.chips{display:inline-flex;flex-wrap:wrap;gap:4px}
.toolbar{display:flex;gap:8px;margin-bottom:10px}
button{font:inherit;font-size:12px;padding:4px 10px;border:1px solid var(--line);border-radius:6px;background:var(--bg);cursor:pointer}
button:hover{background:var(--soft)}
section.chat{background:var(--bg);border:1px solid var(--line);border-radius:8px;margin-bottom:10px}
section.chat.chat-failed{border-left:3px solid var(--red)}section.chat.chat-diverged{border-left:3px solid #d4a72c}
section.chat.flash{box-shadow:0 0 0 3px #54aeff66}
summary{list-style:none;cursor:pointer;padding:10px 14px;display:flex;gap:10px;align-items:center;flex-wrap:wrap}
summary::-webkit-details-marker{display:none}
.chev{display:inline-block;color:var(--dim)}details[open] .chev{transform:rotate(90deg)}
.cid{font-size:13px;font-weight:600}
.chat-body{padding:0 14px 14px;border-top:1px solid #eaeef2}
.facts{display:flex;flex-wrap:wrap;gap:4px 18px;font-size:12px;color:var(--dim);padding:8px 0}
.facts b{color:var(--fg);font-weight:600;margin-right:3px}
.err-box{background:#ffebe9;border:1px solid #ffcecb;color:#82071e;border-radius:6px;padding:6px 10px;margin:6px 0;
font-size:12px;white-space:pre-wrap;word-break:break-word}
table.chat-scores{margin:6px 0 10px;font-size:12px}.reason-cell{white-space:pre-wrap;word-break:break-word}
.turn{border:1px solid #eaeef2;border-radius:6px;margin-top:10px;padding:8px 10px;background:#fff}
.turn.diverged{border-color:#d4a72c;box-shadow:inset 3px 0 0 #d4a72c;background:#fffdf3}
.turn.after-div{background:#fffef8}
.turn-head{display:flex;gap:8px;align-items:center;flex-wrap:wrap;font-size:12px;margin-bottom:6px}
.sim{font-size:12px;color:var(--dim)}.sim.lo{color:var(--red);font-weight:600}
.div-marker{display:flex;align-items:center;gap:8px;margin:14px 0 -4px;color:#9a6700;font-size:11px;font-weight:600;
text-transform:uppercase;letter-spacing:.05em}
.div-marker::before,.div-marker::after{content:"";flex:1;border-top:2px dashed #d4a72c}
.user-msg{display:flex;gap:8px;background:#f6f8fa;border-radius:6px;padding:6px 10px;margin-bottom:8px}
.who{font-size:11px;font-weight:600;color:var(--dim);text-transform:uppercase;padding-top:2px}
.msg{white-space:pre-wrap;word-break:break-word;overflow-wrap:anywhere;min-width:0}
.sxs{display:grid;grid-template-columns:1fr 1fr;gap:10px}
.side{min-width:0;border:1px solid #eaeef2;border-radius:6px;padding:6px 10px}
.side.replayed{background:#fbfdff}.side.production{background:#fcfcfc}
.side-label{font-size:11px;font-weight:600;color:var(--dim);text-transform:uppercase;letter-spacing:.04em;margin-bottom:4px}
ins{background:var(--ins);color:#116329;text-decoration:none;border-radius:2px}
del{background:var(--del);color:#a40e26;text-decoration:none;border-radius:2px}
.tools{display:flex;flex-direction:column;gap:6px;margin-bottom:6px}
.tool{border:1px solid #eaeef2;border-radius:6px;padding:4px 8px;background:#fff;font-size:12px}
.tool.tool-error{border-color:#ffcecb;background:#fffafa}
.tool-head{display:flex;gap:6px;align-items:center;flex-wrap:wrap;margin-bottom:2px}
.tool-icon{color:var(--dim)}.tool-name{font-weight:600}
.kv{display:grid;grid-template-columns:46px 1fr;gap:6px;align-items:start}
.k{font-size:11px;color:var(--dim);padding-top:2px}
.kv pre{margin:0;white-space:pre-wrap;word-break:break-word;max-height:180px;overflow:auto;background:#f6f8fa;
border-radius:4px;padding:2px 6px}
.cut{color:var(--dim);font-style:italic}
.reason{font-size:12px;color:#82071e;margin-top:6px}
footer{color:var(--dim);font-size:12px;text-align:center;margin-top:32px}
@media (max-width:800px){.sxs{grid-template-columns:1fr}.charts{grid-template-columns:1fr}}
@media print{nav.bar{display:none}details{display:block}}
"""

JS = r"""
(function () {
  "use strict";
  function drawCharts() {
    var holder = document.getElementById("report-figures");
    if (!holder) return;
    var figs = JSON.parse(holder.textContent);
    // no "Share chart..." button: it would upload the data (transcripts' labels) to Plotly Cloud
    var config = {displaylogo: false, responsive: true, showLink: false, showSendToCloud: false,
                  showEditInChartStudio: false,
                  modeBarButtonsToRemove: ["sendChartToCloud", "sendDataToCloud", "editInChartStudio", "select2d",
                                           "lasso2d", "autoScale2d", "toggleSpikelines"]};
    figs.forEach(function (f) {
      var div = document.getElementById(f.id);
      if (!div) return;
      if (typeof Plotly === "undefined") { div.textContent = "chart unavailable: plotly.js did not load"; return; }
      Plotly.newPlot(div, f.data, f.layout, config);
    });
  }
  function targetOfHash() {
    var h = location.hash.slice(1);
    if (!h) return null;
    try { h = decodeURIComponent(h); } catch (err) { return null; }
    return document.getElementById(h);
  }
  function reveal(scroll) {
    var el = targetOfHash();
    if (!el) return;
    var det = el.tagName === "SECTION" ? el.querySelector("details") : el.closest("details");
    if (det && !det.open) det.open = true;
    if (scroll) el.scrollIntoView({block: "start"});
    var box = el.closest("section.chat") || el;
    box.classList.add("flash");
    setTimeout(function () { box.classList.remove("flash"); }, 1600);
  }
  function sessionTable() {
    var table = document.getElementById("sessions");
    if (!table) return;
    var body = table.tBodies[0], input = document.getElementById("session-filter"),
        count = document.getElementById("session-count");
    function update() {
      var q = (input.value || "").toLowerCase(), shown = 0, rows = body.rows;
      for (var i = 0; i < rows.length; i++) {
        var hit = !q || rows[i].textContent.toLowerCase().indexOf(q) >= 0;
        rows[i].style.display = hit ? "" : "none";
        if (hit) shown++;
      }
      count.textContent = shown + " / " + rows.length + " shown";
    }
    input.addEventListener("input", update);
    update();
    var ths = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(ths, function (th, col) {
      th.addEventListener("click", function () {
        var asc = !th.classList.contains("sorted-asc");
        Array.prototype.forEach.call(ths, function (x) { x.classList.remove("sorted-asc", "sorted-desc"); });
        th.classList.add(asc ? "sorted-asc" : "sorted-desc");
        var rows = Array.prototype.slice.call(body.rows);
        function key(r) {
          var c = r.cells[col], s = c.hasAttribute("data-sort") ? c.getAttribute("data-sort") : c.textContent.trim();
          if (s === "" || s === "—") return null;
          var n = Number(s.replace(/,/g, ""));
          return isNaN(n) ? s.toLowerCase() : n;
        }
        rows.sort(function (a, b) {
          var x = key(a), y = key(b);
          if (x === null) return 1; if (y === null) return -1;
          if (typeof x !== typeof y) { x = String(x); y = String(y); }
          return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  }
  function toggles() {
    var open = document.getElementById("expand-all"), close = document.getElementById("collapse-all");
    function all(v) { document.querySelectorAll("section.chat > details").forEach(function (d) { d.open = v; }); }
    if (open) open.addEventListener("click", function () { all(true); });
    if (close) close.addEventListener("click", function () { all(false); });
  }
  window.addEventListener("hashchange", function () { reveal(true); });
  document.addEventListener("click", function (ev) {
    var a = ev.target.closest ? ev.target.closest("a[href^='#']") : null;
    if (a && a.getAttribute("href") === location.hash) setTimeout(function () { reveal(true); }, 0);
  });
  document.addEventListener("DOMContentLoaded", function () {
    sessionTable();
    toggles();
    drawCharts();
    reveal(true);
  });
})();
"""

CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
       "img-src data: blob:; font-src data:; connect-src 'none'; base-uri 'none'; form-action 'none'")


def _script_json(obj: Any) -> str:
    """JSON that is safe inside a <script> element."""
    s = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=str)
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") \
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


# --------------------------------------------------------------------------- the page


def render_report(data: dict[str, Any], *, max_sessions: int = 500, max_transcripts: int = 200) -> str:
    """The whole report as one self-contained HTML page (see the module docstring for ``data``)."""
    ex = dict(data.get("execution") or {})
    metrics = dict(data.get("metrics") or {})
    baseline = data.get("baseline") or None
    chats = [dict(c, chat_id=str(c["chat_id"])) for c in data.get("chats") or []]
    chat_ids = {c["chat_id"] for c in chats}
    scores = [dict(s, chat_id=str(s["chat_id"]), evaluator=str(s.get("evaluator")))
              for s in data.get("scores") or [] if str(s.get("chat_id")) in chat_ids]
    turns_by_chat: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for t in data.get("turns") or []:
        turns_by_chat[str(t["chat_id"])].append(t)
    for ts in turns_by_chat.values():
        ts.sort(key=lambda t: _i(t.get("turn_index")) or 0)
    all_turns = [t for cid in chat_ids for t in turns_by_chat.get(cid, [])]
    evaluators = sorted({s["evaluator"] for s in scores})
    scores_by_chat: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in scores:
        scores_by_chat[s["chat_id"]].append(s)
    fail_chats = {s["chat_id"] for s in scores if s.get("passed") is False}
    ordered = _chat_order(chats, fail_chats)
    shown = ordered[:max_transcripts]
    shown_ids = {c["chat_id"] for c in shown}

    figs: list[dict[str, Any]] = []
    parts = [_kpis(metrics, baseline), _charts(chats, all_turns, scores, evaluators, figs)]
    if baseline:
        parts.append(_baseline(baseline, figs))
    parts.append(_sessions(ordered, shown_ids, scores_by_chat, evaluators, max_sessions, ex.get("execution_id")))
    transcripts = "".join(_transcript(c, turns_by_chat.get(c["chat_id"], []), scores_by_chat.get(c["chat_id"], []))
                          for c in shown)
    t_note = ""
    if len(ordered) > max_transcripts:
        t_note = (f'<p class="note">Transcripts of {max_transcripts:,} of {len(ordered):,} chats (failed first, then '
                  f'failing or diverged). Any other: <code>replay sql "SELECT * FROM chat_turns WHERE chat_id = '
                  f"'…' ORDER BY turn_index\"</code></p>")
    legend = ('<p class="legend small dim">Each turn: the user message, then the replayed answer (dev build) beside '
              "production's. <ins>words only in the replay</ins> · <del>words only in production</del>. "
              "Tool answers: " + " ".join(_source_badge({"source": s}) for s in SOURCE_HELP) + "</p>")
    parts.append(f'<section id="transcripts"><h2>Transcripts</h2>{legend}<div class="toolbar">'
                 f'<button type="button" id="expand-all">Expand all</button>'
                 f'<button type="button" id="collapse-all">Collapse all</button></div>{t_note}{transcripts}</section>')

    title = f'Replay report · {ex.get("name") or ex.get("execution_id") or "execution"}'
    if ex.get("execution_id") and ex.get("name"):
        title += f' · {ex["execution_id"]}'
    return "".join([
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{e(CSP)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="generator" content="replay">',
        f"<title>{e(title)}</title><style>{CSS}</style>",
        f'<script type="text/javascript">{plotly_js()}</script>',
        "</head><body>",
        _header(ex, baseline), _nav(bool(baseline)),
        "<main>", *parts,
        '<footer>Generated by Replay · one self-contained file: works offline</footer></main>',
        f'<script type="application/json" id="report-figures">{_script_json(figs)}</script>',
        f"<script>{JS}</script>",
        "</body></html>\n",
    ])


def write_report(data: dict[str, Any], out: Path, **kwargs: Any) -> Path:
    """Render and write the report atomically (a temp file in the same folder, then a rename)."""
    out = Path(out)
    text = render_report(data, **kwargs)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out
