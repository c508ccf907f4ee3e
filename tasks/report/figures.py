"""The report's charts as small inline SVG, drawn here in Python: no chart library in the page.

Why not plotly: the page inlined plotly.js (4.8 MB of the demo's 5.8 MB report). The plotly
Python package ships only the full bundle, and its partial bundles (``plotly.js-basic-dist-min``,
1.1 MB, without histograms) are an npm download, not something the package can produce
offline; the charts the page needs — overlaid histograms and confidence intervals — are a few
rectangles and lines, here a few kilobytes, drawn without JavaScript (they print, and they show
with scripts off). Every text put into an SVG is escaped (:func:`tasks.report.formats.esc`).
"""

from __future__ import annotations

import math
from typing import Any

from tasks.report.formats import esc, to_float

BASE_FILL, CAND_FILL = "#8c959f", "#0969da"
COLORS = {"bad": "#cf222e", "good": "#1a7f37", "bad-weak": "#e5868d", "good-weak": "#6fbf85", "neutral": "#57606a"}


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def bins_for(values: list[float], scale: tuple[Any, Any] = (None, None), unit: str = "") -> list[tuple[float, float]]:
    """Histogram bins ``[(lo, hi), ...]``: ten of 10 points on a 0..100 % scale, one per whole
    value on a small whole scale (csat 1..10), else up to 12 even bins over the values."""
    lo_s, hi_s = to_float(scale[0]), to_float(scale[1])
    if unit == "%" and lo_s == 0 and hi_s == 100:
        return [(10.0 * i, 10.0 * (i + 1)) for i in range(10)]
    lo = lo_s if lo_s is not None else min(values, default=0.0)
    hi = hi_s if hi_s is not None else max(values, default=1.0)
    if values:
        lo, hi = min(lo, min(values)), max(hi, max(values))
    whole = all(float(v).is_integer() for v in values)
    if whole and float(lo).is_integer() and float(hi).is_integer() and 0 < hi - lo <= 12:
        return [(v - 0.5, v + 0.5) for v in range(int(lo), int(hi) + 1)]
    if hi <= lo:
        return [(lo - 0.5, hi + 0.5)]
    step = (hi - lo) / 12
    return [(lo + i * step, lo + (i + 1) * step) for i in range(12)]


def _counts(values: list[float], bins: list[tuple[float, float]]) -> list[int]:
    out = [0] * len(bins)
    for v in values:
        for i, (lo, hi) in enumerate(bins):
            if lo <= v < hi or (i == len(bins) - 1 and v == hi):
                out[i] += 1
                break
    return out


def _bin_label(lo: float, hi: float, unit: str) -> str:
    if hi - lo == 1 and (lo + 0.5).is_integer():
        return f"{_num(lo + 0.5)}{unit}"
    return f"{_num(lo)}–{_num(hi)}{unit}"


def histogram_svg(a: list[float] | None, b: list[float], *, scale: tuple[Any, Any] = (None, None), unit: str = "",
                  width: int = 300, height: int = 128, names: tuple[str, str] = ("baseline", "candidate")) -> str:
    """Per-chat values of the baseline (``a``, grey outline; None = no baseline) and of the
    candidate (``b``, blue) over the same bins, as shares of each side's chats (the sides may
    have different numbers of chats). Each bar's tooltip says how many chats it holds."""
    vals = [*(a or []), *b]
    if not vals:
        return ""
    bins = bins_for(vals, scale, unit)
    shown_unit = unit if unit in ("%",) else ""
    ca, cb = _counts(a or [], bins), _counts(b, bins)
    na, nb = max(len(a or []), 1), max(len(b), 1)
    top = max([x / na for x in ca] + [x / nb for x in cb] + [1e-9])
    left, bottom, pad_top = 4, 18, 6
    plot_w, plot_h = width - 2 * left, height - bottom - pad_top
    bw = plot_w / len(bins)
    parts = [f'<svg class="hist" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
             f'xmlns="http://www.w3.org/2000/svg">',
             f'<line x1="{left}" y1="{pad_top + plot_h}" x2="{left + plot_w}" y2="{pad_top + plot_h}" class="axis"/>']
    for i, (lo, hi) in enumerate(bins):
        x = left + i * bw
        label = esc(_bin_label(lo, hi, unit))
        if b:
            h = plot_h * (cb[i] / nb) / top
            parts.append(f'<rect class="cand" x="{x + bw * 0.18:.1f}" y="{pad_top + plot_h - h:.1f}" '
                         f'width="{bw * 0.64:.1f}" height="{h:.1f}"><title>{esc(names[1])}: {cb[i]} of {len(b)} chats '
                         f'at {label}</title></rect>')
        if a is not None:
            h = plot_h * (ca[i] / na) / top
            if ca[i]:
                parts.append(f'<rect class="base" x="{x + bw * 0.08:.1f}" y="{pad_top + plot_h - h:.1f}" '
                             f'width="{bw * 0.84:.1f}" height="{h:.1f}"><title>{esc(names[0])}: {ca[i]} of {len(a)} '
                             f'chats at {label}</title></rect>')
    for i in (0, len(bins) // 2, len(bins) - 1) if len(bins) > 2 else range(len(bins)):
        lo, hi = bins[i]
        text = _num(lo + 0.5) if hi - lo == 1 and (lo + 0.5).is_integer() else _num(lo if i < len(bins) - 1 else hi)
        anchor = "start" if i == 0 else "end" if i == len(bins) - 1 else "middle"
        x = left if i == 0 else left + plot_w if i == len(bins) - 1 else left + (i + 0.5) * bw
        parts.append(f'<text x="{x:.1f}" y="{height - 4}" text-anchor="{anchor}">{esc(text + shown_unit)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def interval_svg(delta: float | None, lo: float | None, hi: float | None, min_effect: float | None, cls: str,
                 *, width: int = 150, height: int = 20) -> str:
    """B - A with its 95 % interval on a scale centred on 0, the minimum meaningful effect as a
    grey band around 0: a bar outside the band whose interval excludes 0 is a real change."""
    d = to_float(delta)
    if d is None:
        return ""
    lo_f, hi_f, me = to_float(lo), to_float(hi), to_float(min_effect) or 0.0
    span = max(abs(x) for x in (d, lo_f or 0.0, hi_f or 0.0, me)) * 1.15 or 1.0
    mid, half = width / 2, width / 2 - 4

    def x(v: float) -> float:
        return mid + half * v / span

    color = COLORS.get(cls, COLORS["neutral"])
    parts = [f'<svg class="ci" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
             f'xmlns="http://www.w3.org/2000/svg" aria-hidden="true">']
    if me > 0:
        parts.append(f'<rect class="band" x="{x(-me):.1f}" y="2" width="{x(me) - x(-me):.1f}" height="{height - 4}"/>')
    parts.append(f'<line class="zero" x1="{mid}" y1="1" x2="{mid}" y2="{height - 1}"/>')
    if lo_f is not None and hi_f is not None and not (math.isclose(lo_f, hi_f)):
        y = height / 2
        parts.append(f'<line x1="{x(lo_f):.1f}" y1="{y}" x2="{x(hi_f):.1f}" y2="{y}" stroke="{color}" stroke-width="2"/>'
                     f'<line x1="{x(lo_f):.1f}" y1="{y - 4}" x2="{x(lo_f):.1f}" y2="{y + 4}" stroke="{color}" stroke-width="1.5"/>'
                     f'<line x1="{x(hi_f):.1f}" y1="{y - 4}" x2="{x(hi_f):.1f}" y2="{y + 4}" stroke="{color}" stroke-width="1.5"/>')
    parts.append(f'<circle cx="{x(d):.1f}" cy="{height / 2}" r="4" fill="{color}"/></svg>')
    return "".join(parts)


__all__ = ["bins_for", "histogram_svg", "interval_svg"]
