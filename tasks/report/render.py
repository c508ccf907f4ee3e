"""The HTML report of one execution: a pure function from a dict to one self-contained page.

``render_report(data) -> str`` returns ONE HTML file that works offline: inline CSS and JS,
plotly.js inlined once (``plotly.offline.get_plotlyjs()``), the figures as JSON drawn with
``Plotly.newPlot``, no CDN, no external font or image, and a Content-Security-Policy that
forbids any other load. ``write_report(data, out)`` writes it atomically (temp file + rename).
No I/O besides ``write_report`` (and reading this package's template and asset files once): the
caller (``replay report``) loads ``data`` from the catalog.

Where things are: :mod:`tasks.report.view` turns ``data`` into the view model (texts formatted
by the Python rules of :mod:`tasks.report.formats`), :mod:`tasks.report.figures` builds the
plotly figures, ``templates/report.html.j2`` lays the page out (Jinja2, autoescaping on) and
``assets/report.css`` / ``assets/report.js`` are inlined into it.

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

KPI cards. One card per count (``total_chats``, ``completed_chats``, ``failed_chats``) and per
metric of ``metrics`` (a column a spec describes — ``data["specs"]``, else the built-in specs —
or an ``avg_`` column), the metrics in their specs' rank. Each card is
``<div class="kpi" data-metric="KEY" data-value="TEXT">``; the number shown in the card
(``.kpi-num``) is exactly TEXT (the unit, the spec's, is a separate ``.kpi-unit`` span).
TEXT = :func:`format_metric` ``(KEY, value, specs)``: ``"n/a"`` for None or NaN, else
``format(float(value), SPEC)`` with SPEC ``.0f`` for a count, ``.{digits}f`` for a metric (the
digits of its spec: the same on every surface), ``.2f`` for an ``avg_`` column no spec describes.

With a baseline, a card also shows the baseline's value (``data-baseline-value``, same rule).

Large executions: the session table keeps ``max_sessions`` rows and the transcripts
``max_transcripts`` chats (failed chats first, then chats with a failing score or a divergence,
then the rest; each group by row_index, repetition), with a note saying how many were left out;
transcripts are collapsed ``<details>`` that a session link (``#chat-<chat_id>``) opens; a text
longer than ``MAX_TEXT`` characters is cut with a note.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from datetime import datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from jinja2 import Environment, PackageLoader, StrictUndefined
from jinja2.ext import Extension
from markupsafe import Markup

from tasks.report.figures import plotly_js
from tasks.report.formats import (
    COUNT_KEYS,
    MAX_DIFF_TOKENS,
    MAX_TEXT,
    MISSING,
    format_metric,
    kpi_keys,
    metric_format_spec,
    metric_unit,
    verdict,
    word_diff,
)
from tasks.report.view import SOURCE_HELP, build_page

__all__ = [
    "COUNT_KEYS", "CSP", "MAX_DIFF_TOKENS", "MAX_TEXT", "MISSING",
    "SOURCE_HELP", "BaselineDelta", "ReportBaseline", "ReportChat", "ReportData", "ReportExecution", "ReportMetrics",
    "ReportOriginalToolCall", "ReportScore", "ReportToolCall", "ReportTurn", "format_metric", "kpi_keys",
    "metric_format_spec", "metric_unit", "plotly_js", "render_report", "verdict", "word_diff", "write_report",
]

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


# --------------------------------------------------------------------------- template and assets

CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
       "img-src data: blob:; font-src data:; connect-src 'none'; base-uri 'none'; form-action 'none'")


class TagLineBreaks(Extension):
    """Removes a template's line breaks next to a tag (after ">" or "}", before "<" or "{")
    with the spaces around them, when the template is loaded: the templates are indented for
    reading, the page gets no whitespace between tags (it would show in pre-wrap texts and
    between inline elements). The data put into the page is not touched."""

    _BREAK = re.compile(r"(?<=[>}])[ \t]*\n\s*|[ \t]*\n\s*(?=[<{])")

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        return self._BREAK.sub("", source)


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(loader=PackageLoader("tasks.report", "templates"), autoescape=True,
                       undefined=StrictUndefined, extensions=[TagLineBreaks], auto_reload=False)


@lru_cache(maxsize=None)
def _asset(name: str) -> Markup:
    """A file of assets/, to inline in the page as is (it is ours: no escaping)."""
    source = resources.files("tasks.report").joinpath("assets", name).read_text(encoding="utf-8")
    if re.search(r"</(style|script)", source, re.IGNORECASE):
        raise ValueError(f"assets/{name} would end its <style>/<script> element early")
    return Markup(source)


def _script_json(obj: Any) -> str:
    """JSON that is safe inside a <script> element."""
    s = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=str)
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") \
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


# --------------------------------------------------------------------------- the page


def render_report(data: dict[str, Any], *, max_sessions: int = 500, max_transcripts: int = 200) -> str:
    """The whole report as one self-contained HTML page (see the module docstring for ``data``)."""
    page = build_page(data, max_sessions=max_sessions, max_transcripts=max_transcripts)
    return _environment().get_template("report.html.j2").render(
        page=page, csp=CSP, css=_asset("report.css"), js=_asset("report.js"), plotly_js=Markup(plotly_js()),
        figures_json=Markup(_script_json(page.figures)))


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
