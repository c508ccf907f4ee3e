"""The report's charts: plotly figures as JSON-ready dicts ``{"data", "layout"}`` that the page
draws with ``Plotly.newPlot``; plotly.js itself is inlined once (:func:`plotly_js`)."""

from __future__ import annotations

from collections import Counter, defaultdict
from functools import lru_cache
from typing import Any

from tasks.report.formats import delta_class, esc, percentile, to_float

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
    return esc(s)


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


def scores_figure(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    import plotly.graph_objects as go

    numeric = [(v, r.get("passed")) for r in rows if (v := to_float(r.get("value"))) is not None]
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


def latency_figure(latencies: list[float]) -> dict[str, Any] | None:
    import plotly.graph_objects as go

    if not latencies:
        return None
    fig = go.Figure(go.Histogram(x=latencies, marker_color=BLUE, name="turns",
                                 hovertemplate="%{x} ms: %{y} turns<extra></extra>"))
    for q, name, color in ((0.5, "p50", GREEN), (0.95, "p95", RED)):
        x = percentile(latencies, q)
        fig.add_vline(x=x, line_width=1.5, line_dash="dash", line_color=color,
                      annotation_text=name, annotation_position="top right",
                      annotation_font=dict(color=color, size=11))
    fig.update_layout(xaxis_title="turn latency (ms)", yaxis=dict(title="turns", **_count_axis(len(latencies))),
                      showlegend=False)
    return _figure(fig)


def _short(s: str, n: int = 14) -> str:
    return s if len(s) <= n else s[: n // 2 - 1] + "…" + s[-(n // 2 - 1):]


def tokens_figure(chats: list[dict[str, Any]]) -> dict[str, Any] | None:
    import plotly.graph_objects as go

    rows = [(str(c["chat_id"]), to_float(c.get("input_tokens")) or 0.0, to_float(c.get("output_tokens")) or 0.0) for c in chats]
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


def branches_figure(chats: list[dict[str, Any]], scores: list[dict[str, Any]],
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


def deltas_figure(deltas: list[dict[str, Any]]) -> dict[str, Any] | None:
    """One row per metric, each on its own scale centred on 0 (metrics do not share units);
    a delta's ``label``, ``delta_text`` and ``ci_text``, when given, are what it shows (the
    delta table's words and numbers)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = [d for d in deltas if to_float(d.get("delta")) is not None]
    if not rows:
        return None
    fig = make_subplots(rows=len(rows), cols=1, vertical_spacing=min(0.04, 0.5 / len(rows)))
    colors = {"bad": RED, "bad-weak": "#ff818266", "good": GREEN, "good-weak": "#4ac26b66", "neutral": GREY}
    for i, d in enumerate(rows, start=1):
        delta, lo, hi = to_float(d["delta"]), to_float(d.get("lo")), to_float(d.get("hi"))
        err = None
        if lo is not None and hi is not None:
            err = dict(type="data", symmetric=False, array=[max(hi - delta, 0)], arrayminus=[max(delta - lo, 0)],
                       color="#24292f", thickness=1.5, width=6)
        name = _label(d.get("label") or d.get("metric"))
        ci = (f" {d['ci_text']}" if d.get("ci_text") else f" [{lo:.4g}, {hi:.4g}]") if err else ""
        text = _label(d.get("delta_text") or f"{delta:+.4g}")
        fig.add_trace(go.Bar(x=[delta], y=[name], orientation="h", marker_color=colors[delta_class(d)],
                             error_x=err, width=0.55,
                             hovertemplate=f"{name}: Δ {text}{_label(ci)}<extra></extra>"), row=i, col=1)
        span = max(abs(v) for v in (delta, lo, hi) if v is not None) * 1.1 or 1.0
        fig.update_xaxes(range=[-span, span], zeroline=True, zerolinewidth=1.5, zerolinecolor="#57606a",
                         showgrid=False, showticklabels=False, row=i, col=1)
        fig.update_yaxes(showgrid=False, row=i, col=1)
        yref = "y domain" if i == 1 else f"y{i} domain"
        fig.add_annotation(x=1.01, xref="paper", xanchor="left", y=0.5, yref=yref, showarrow=False, align="left",
                           text=f"<b>{text}</b>" + (f"  <span style='color:#656d76'>CI{_label(ci)}</span>" if ci else ""),
                           font=dict(size=11, color=RED if delta_class(d) == "bad" else "#24292f"))
    fig.update_layout(showlegend=False, height=24 + 44 * len(rows), margin=dict(l=8, r=190, t=8, b=8))
    return _figure(fig)
