"""The HTML report of one execution: a pure function from a dict to one self-contained page.

``render_report(data) -> str`` returns ONE HTML file that works offline: inline CSS and JS,
the charts as inline SVG (:mod:`tasks.report.figures`: no chart library), no CDN, no external
font or image, and a Content-Security-Policy that forbids any other load.
``write_report(data, out)`` writes it atomically (temp file + rename), readable by all (0644).
No I/O besides ``write_report`` (and reading this package's template and asset files once): the
caller (``replay report``) loads ``data`` from the catalog (:mod:`tasks.report.data`).

Where things are: :mod:`tasks.report.view` turns ``data`` into the view model (texts formatted
by the Python rules of :mod:`tasks.report.formats`), ``templates/report.html.j2`` lays the page
out (Jinja2, autoescaping on) and ``assets/report.css`` / ``assets/report.js`` are inlined into it.

The page answers "better or worse, and where": a verdict banner (compare's significant metrics
and rows; the CI gate = what ``replay compare B A --fail-on-regression`` returns), KPI cards,
compare's metric table, the per-chat score distributions of both sides overlaid, and one line
per production conversation (compare's unit: its rows, their repetitions grouped) with its
delta per metric, a regressed / improved / unchanged filter and sortable columns; a line opens
production | baseline | candidate side by side, turn by turn, with word-level differences
(candidate against baseline) and the tool calls (name, key arguments, answer source). Without a
baseline the same page compares the candidate with production.

The ``data`` dict (:class:`ReportData`; every text in it is untrusted and HTML-escaped;
numbers may be int, float, Decimal or None; times a ``datetime`` (naive = UTC) or an ISO string)::

    {
      "execution": {execution_id, run_test_id, name, scenario_id, scenario_name, agent_ref,
                    mode, tool_mode, status, started_at, ended_at},
      "metrics":   {total_chats, completed_chats, completion_pct, failed_pct, avg_<evaluator>...},
                   # a row of `execution_metrics`; other keys (execution_id, evaluated_at) ignored
      "specs":     {execution_metrics column: MetricSpec (or its dict)},   # how each metric is written
      "chats", "turns", "scores":  the candidate's (shapes below)
      "production": {row_index: {origin_id, persona_name, branch_category,
                                 turns: [{turn_index, user_message, assistant_message, tool_calls}]}},
      "units":     [{metric, spec, units: {origin_id: {rows, a, b, delta, a_values, b_values}}}],
                   # per metric, per production conversation: the unit values compare tests
                   # (a = baseline, b = candidate; *_values: its chats' values)
      "baseline":  None, or {execution_id, name, agent_ref, metrics (same shape),
                    deltas: [{metric, column, label, a, b, delta, lo, hi, significant, direction,
                              n_units, n_rows, note, min_effect}],     # tasks.compare.between
                    verdicts: [str],                                    # compare.verdict_lines
                    gate: [str],              # compare.regression_gate: [] = the CI gate passes
                    changes: {metric: [UnitChange as a dict]},         # the conversations that moved
                    chats, turns, scores},                              # the baseline's
      "vs_production": {diverged_chats, chats, summary},               # without a baseline
      "repeatability": {k, pass_k, flaky_rows} or None,
    }
    chats:  [{chat_id, row_index, repetition, origin_id, status, ended_reason, divergence_turn,
              turn_count, avg_latency_ms, input_tokens, output_tokens, error, branch_category,
              persona_name}]
    turns:  [{chat_id, turn_index, user_message, assistant_message, tool_calls: [{name, arguments,
              result, status, source ("recorded" | "nearest" | "off_script" | "live"),
              matched_turn}], latency_ms, similarity (0..1), user_source, error}]
    scores: [{chat_id, turn_index (None = chat-level), evaluator, value, passed, label, reason, source}]

KPI cards. One card per count (``total_chats``, ``completed_chats``, ``failed_chats``) and per
metric of ``metrics`` (a column a spec describes, or an ``avg_`` column), the metrics in their
specs' rank. Each card is ``<div class="kpi" data-metric="KEY" data-value="TEXT">``; the number
shown (``.kpi-num``) is exactly TEXT and the unit, the spec's, a separate ``.kpi-unit`` span.
TEXT = :func:`format_metric` ``(KEY, value, specs)``: ``"n/a"`` for None or NaN, else
``format(float(value), SPEC)`` with SPEC ``.0f`` for a count, ``.{digits}f`` for a metric (the
digits of its spec: the same on every surface), ``.2f`` for an ``avg_`` column no spec describes.
With a baseline a card also shows the baseline's value (``data-baseline-value``, with its unit)
and compare's delta.

Large executions: the table keeps ``max_units`` conversations and opens ``max_details`` of them
(regressed or failed first); a text longer than ``MAX_TEXT`` characters is cut.
"""

from __future__ import annotations

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
    "metric_format_spec", "metric_unit", "render_report", "verdict", "word_diff", "write_report",
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
    verdicts: NotRequired[list[str]]
    gate: NotRequired[list[str]]  # [] = the CI gate passes
    changes: NotRequired[dict[str, list[dict[str, Any]]]]  # metric -> compare's UnitChanges
    chats: NotRequired[list[ReportChat]]
    turns: NotRequired[list[ReportTurn]]
    scores: NotRequired[list[ReportScore]]


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
    specs: NotRequired[dict[str, Any]]
    production: NotRequired[dict[int, dict[str, Any]]]
    units: NotRequired[list[dict[str, Any]]]
    vs_production: NotRequired[dict[str, Any]]
    repeatability: NotRequired[dict[str, Any] | None]


# --------------------------------------------------------------------------- template and assets

FILE_MODE = 0o644  # the report: readable by all, like any page one publishes

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


# --------------------------------------------------------------------------- the page


def render_report(data: dict[str, Any], *, max_units: int = 500, max_details: int = 200) -> str:
    """The whole report as one self-contained HTML page (see the module docstring for ``data``)."""
    page = build_page(data, max_units=max_units, max_details=max_details)
    return _environment().get_template("report.html.j2").render(
        page=page, csp=CSP, css=_asset("report.css"), js=_asset("report.js"))


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
            os.fchmod(fh.fileno(), FILE_MODE)  # mkstemp's 0600 would hide the report from a web server or a teammate
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out
