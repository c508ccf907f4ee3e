"""The report's view model: what the page shows, built from a ``ReportData`` dict.

Plain frozen dataclasses whose texts are already formatted by Python's rules
(:mod:`tasks.report.formats`) and NOT escaped: the template (``templates/report.html.j2``,
autoescaping on) escapes every one of them. The template only lays them out.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from tasks.report import figures
from tasks.report.formats import (
    MISSING,
    Segment,
    canon_call,
    count,
    cut,
    delta_class,
    diff_segments,
    duration,
    fmt_time,
    format_metric,
    json_text,
    kpi_keys,
    metric_format_spec,
    metric_label,
    metric_spec,
    metric_unit,
    number,
    percentile,
    score_text,
    sort_key_text,
    text,
    to_float,
    to_int,
    verdict,
)

# --------------------------------------------------------------------------- small pieces


@dataclass(frozen=True)
class Badge:
    text: str
    cls: str  # ok, err, warn, info, muted, src-<source>
    title: str = ""  # "" = no tooltip


@dataclass(frozen=True)
class Chip:
    """A score: ``[evaluator] value`` coloured by its verdict (pass, fail, na)."""

    cls: str
    value: str
    tip: str
    name: str | None = None  # the evaluator shown before the value; None = not shown


@dataclass(frozen=True)
class Cut:
    """A text shown up to a limit; ``more`` = how many characters were left out ("" = none)."""

    text: str
    more: str = ""


def _cut(value: Any) -> Cut:
    s, n = cut(value)
    return Cut(s, count(n) if n else "")


STATUS_CLASS = {"completed": "ok", "failed": "err", "running": "info", "COMPLETED": "ok", "FAILED": "err"}


def status_badge(status: Any) -> Badge:
    s = str(status or "unknown")
    return Badge(s, STATUS_CLASS.get(s, "muted"))


SOURCE_HELP = {
    "recorded": "answered from production's recorded result of this call",
    "nearest": "no exact recorded call: answered from the nearest recorded call of this tool",
    "off_script": "no recorded call matched: the agent got an error (off script)",
    "live": "the real tool answered (live tools)",
}


def source_badge(call: dict[str, Any]) -> Badge:
    """Where a replayed tool call's answer came from."""
    src = str(call.get("source") or "unknown")
    label = "answer: " + src
    mt = to_int(call.get("matched_turn"))
    if mt is not None and src in ("recorded", "nearest"):
        label += f" (prod turn {mt})"
    cls = "src-" + src if src in SOURCE_HELP else "src-unknown"
    return Badge(label, cls, SOURCE_HELP.get(src, "where the answer came from is not recorded"))


def score_chip(s: dict[str, Any], with_name: bool = True) -> Chip:
    p = s.get("passed")
    cls = "pass" if p is True else "fail" if p is False else "na"
    val = score_text(s.get("value")) if to_float(s.get("value")) is not None else (s.get("label") or "—")
    tip = " · ".join(str(x) for x in (s.get("label"), s.get("reason"), s.get("source")) if x)
    return Chip(cls, text(val), tip, text(s.get("evaluator")) if with_name else None)


def chat_anchor(chat_id: str) -> str:
    return "chat-" + chat_id


def chat_href(chat_id: str) -> str:
    return "#" + quote(chat_anchor(chat_id), safe="")


# --------------------------------------------------------------------------- header and KPI cards


@dataclass(frozen=True)
class Header:
    title: str
    status: Badge
    execution_id: str
    run_test_id: str
    scenario_name: str  # "" = unknown: only the id is shown
    scenario_id: str
    agent_ref: str
    mode: str
    tool_mode: str
    started: str
    ended: str
    duration: str
    baseline_id: str | None  # None = no baseline


def build_header(ex: dict[str, Any], baseline: dict[str, Any] | None) -> Header:
    return Header(
        title=text(ex.get("name") or ex.get("execution_id") or "execution"), status=status_badge(ex.get("status")),
        execution_id=text(ex.get("execution_id")), run_test_id=text(ex.get("run_test_id")),
        scenario_name=text(ex.get("scenario_name")), scenario_id=text(ex.get("scenario_id")),
        agent_ref=text(ex.get("agent_ref")), mode=text(ex.get("mode") or "—"),
        tool_mode=text(ex.get("tool_mode") or "—"),
        started=fmt_time(ex.get("started_at")), ended=fmt_time(ex.get("ended_at")),
        duration=duration(ex.get("started_at"), ex.get("ended_at")),
        baseline_id=text(baseline.get("execution_id")) if baseline else None)


def page_title(ex: dict[str, Any]) -> str:
    title = f'Replay report · {ex.get("name") or ex.get("execution_id") or "execution"}'
    if ex.get("execution_id") and ex.get("name"):
        title += f' · {ex["execution_id"]}'
    return title


@dataclass(frozen=True)
class KpiDelta:
    cls: str  # delta_class of the matching baseline delta
    arrow: str  # ▲ ▼ =
    text: str  # "+0.25", "±0", with " · significant" when it is


@dataclass(frozen=True)
class Kpi:
    key: str
    label: str
    value: str  # format_metric(key, value): the card's number and its data-value
    unit: str  # "" = none (always none for n/a)
    baseline: str | None = None  # the baseline's value; None = no baseline value
    delta: KpiDelta | None = None  # None = no difference to show

    @property
    def title(self) -> str:
        return f"{self.label} ({self.key})"


def delta_for(key: str, deltas: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The comparison of the metric a KPI card shows (matched by its execution_metrics column)."""
    return next((d for d in deltas if key in (d.get("column"), d.get("metric"), "avg_" + str(d.get("metric")))), None)


def _kpi_delta(key: str, cur: Any, old: Any, deltas: list[dict[str, Any]], specs: dict[str, Any]) -> KpiDelta | None:
    """The card's change: compare's delta when compare has the metric (the same number as the
    delta table and ``replay compare``, with its note when it is on fewer conversations), else
    the difference of the two values shown."""
    cur, old = to_float(cur), to_float(old)
    if cur is None or old is None:
        return None
    d = delta_for(key, deltas)
    change = to_float(d.get("delta")) if d else None
    change = cur - old if change is None else change
    dv = format(change, "+" + metric_format_spec(key, specs)) if change != 0 else "±0"
    sig = (" · significant" if d and d.get("significant") else "") + (f" · {d['note']}" if d and d.get("note") else "")
    arrow = "▲" if change > 0 else "▼" if change < 0 else "="
    return KpiDelta(delta_class(d), arrow, dv + sig)


def build_kpis(metrics: dict[str, Any], baseline: dict[str, Any] | None,
               specs: dict[str, Any] | None = None) -> list[Kpi]:
    bm = (baseline or {}).get("metrics") or {}
    deltas = (baseline or {}).get("deltas") or []
    cards = []
    for key in kpi_keys(metrics, specs):
        value = format_metric(key, metrics[key], specs)
        kpi = Kpi(key, metric_label(key, specs), value, metric_unit(key, specs) if value != MISSING else "")
        if baseline is not None and key in bm:
            kpi = replace(kpi, baseline=format_metric(key, bm[key], specs),
                          delta=_kpi_delta(key, metrics[key], bm[key], deltas, specs))
        cards.append(kpi)
    return cards


# --------------------------------------------------------------------------- charts


@dataclass(frozen=True)
class ChartBox:
    """A chart in the page (its title is the template's): plotly draws figure ``id`` of the page's JSON into it."""

    id: str
    height: int | None  # px; None = no data
    sub: str = ""  # the subtitle, when it has numbers; "" = the template's or none
    name: str = ""  # what a chart of several of a kind is of (the evaluator of a score chart)


class Charts:
    """Makes the chart boxes and keeps the figures they show (the page's JSON, in the order made)."""

    def __init__(self) -> None:
        self.figures: list[dict[str, Any]] = []

    def box(self, div_id: str, fig: dict[str, Any] | None, height: int, sub: str = "", name: str = "") -> ChartBox:
        if fig is None:
            return ChartBox(div_id, None, sub, name)
        fig["layout"].setdefault("height", height)
        self.figures.append({"id": div_id, **fig})
        return ChartBox(div_id, int(fig["layout"]["height"]), sub, name)


@dataclass(frozen=True)
class ChartsView:
    scores: list[ChartBox]  # one per evaluator
    latency: ChartBox
    tokens: ChartBox
    branches: ChartBox


def _score_sub(rows: list[dict[str, Any]]) -> str:
    judged = [r for r in rows if r.get("passed") is not None]
    ok = sum(1 for r in judged if r["passed"])
    lvl = "turn" if any(r.get("turn_index") is not None for r in rows) else "chat"
    if not judged:
        return f"{len(rows)} {lvl} scores"
    # a count, not a rate: the metric's rate (the card) averages per conversation first
    return f"{len(rows)} {lvl} scores · {ok} of {len(judged)} passed"


def _latency_sub(lat: list[float]) -> str:
    if not lat:
        return ""
    p50, p95 = number(percentile(lat, .5), 0, "ms"), number(percentile(lat, .95), 0, "ms")
    return f"{len(lat)} turns · p50 {p50} · p95 {p95}"


def build_charts(charts: Charts, chats, turns, scores, evaluators: list[str]) -> ChartsView:
    by_ev: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in scores:
        by_ev[s["evaluator"]].append(s)
    score_boxes = [charts.box(f"chart-score-{n}", figures.scores_figure(by_ev[ev]), 220, _score_sub(by_ev[ev]), ev)
                   for n, ev in enumerate(evaluators)]
    lat = [x for t in turns if (x := to_float(t.get("latency_ms"))) is not None]
    latency = charts.box("chart-latency", figures.latency_figure(lat), 260, _latency_sub(lat))
    tin = sum(to_float(c.get("input_tokens")) or 0 for c in chats)
    tout = sum(to_float(c.get("output_tokens")) or 0 for c in chats)
    tokens = charts.box("chart-tokens", figures.tokens_figure(chats), 260, f"{tin:,.0f} in · {tout:,.0f} out")
    branches = charts.box("chart-branches", figures.branches_figure(chats, scores, evaluators), 280)
    return ChartsView(score_boxes, latency, tokens, branches)


# --------------------------------------------------------------------------- baseline


@dataclass(frozen=True)
class DeltaRow:
    metric: str
    label: str
    verdict: str  # regression, improvement, unchanged
    significant: bool
    a: str  # format_value by the metric's spec: the numbers of the cards and of `replay compare`
    b: str
    delta: str
    ci: str
    units: str  # "conversations/rows" compared
    note: str  # "" = on every conversation
    cls: str  # delta_class


@dataclass(frozen=True)
class BaselineView:
    execution_id: str
    rows: list[DeltaRow]
    regressions: list[str]  # the metrics of the significant regressions
    verdicts: list[str]  # compare's verdict lines: the overall one, then the rows that moved per metric
    chart: ChartBox


def _delta_row(d: dict[str, Any], specs: dict[str, Any]) -> DeltaRow:
    from tasks.evaluate.metrics import format_value, infer_spec

    spec = metric_spec(str(d.get("column")), specs) or infer_spec(str(d.get("metric")), "chat", [])
    lo, hi = to_float(d.get("lo")), to_float(d.get("hi"))
    ci = (f"[{format_value(spec, lo, unit=False, sign=True)}, {format_value(spec, hi, unit=False, sign=True)}]"
          if lo is not None and hi is not None else "—")
    return DeltaRow(
        metric=text(d.get("metric")), label=text(d.get("label") or d.get("metric")), verdict=verdict(d),
        significant=bool(d.get("significant")), a=format_value(spec, to_float(d.get("a"))),
        b=format_value(spec, to_float(d.get("b"))), delta=format_value(spec, to_float(d.get("delta")), sign=True),
        ci=ci, units=f"{d.get('n_units', '—')}/{d.get('n_rows', '—')}", note=text(d.get("note") or ""),
        cls=delta_class(d))


def build_baseline(charts: Charts, baseline: dict[str, Any], specs: dict[str, Any] | None = None) -> BaselineView:
    deltas = baseline.get("deltas") or []
    rows = [_delta_row(d, specs or {}) for d in deltas]
    shown = [{**d, "label": r.label, "delta_text": r.delta, "ci_text": r.ci if r.ci != "—" else ""}
             for d, r in zip(deltas, rows, strict=True)]
    chart = charts.box("chart-deltas", figures.deltas_figure(shown), 200)
    regressions = [str(d.get("label") or d.get("metric")) for d in deltas
                   if d.get("significant") and verdict(d) == "regression"]
    # and the metrics that regressed significantly on some rows (each such row tested on its own)
    regressions += [f"{r['label']} on row{'s' if len(r['rows']) > 1 else ''} {', '.join(map(str, r['rows']))}"
                    for r in baseline.get("row_regressions") or []]
    return BaselineView(execution_id=text(baseline.get("execution_id")), rows=rows, regressions=regressions,
                        verdicts=[str(v) for v in baseline.get("verdicts") or []], chart=chart)


# --------------------------------------------------------------------------- sessions


@dataclass(frozen=True)
class ScoreCell:
    sort: str  # data-sort; "" = no score
    chip: Chip | None  # None = no score of this evaluator


@dataclass(frozen=True)
class SessionRow:
    chat_id: str
    href: str  # the transcript's anchor; "" = its transcript is not in the page
    origin_id: str
    row: str
    row_sort: str
    repetition: str
    persona: str
    branch: str
    status: str
    status_badge: Badge
    ended_reason: str
    error: str  # "" = none
    error_short: str
    divergence: int | None
    turn_count: str
    latency: str
    latency_sort: str
    tokens_in: str
    tokens_out: str
    tokens_sort: str
    scores: list[ScoreCell]

    @property
    def cls(self) -> str:
        return "row-failed" if self.status == "failed" else "row-diverged" if self.divergence is not None else ""


@dataclass(frozen=True)
class Sessions:
    evaluators: list[str]  # a score column each, after the template's columns
    rows: list[SessionRow]
    total: int
    execution_id: str

    @property
    def left_out(self) -> bool:
        return self.total > len(self.rows)

    @property
    def total_text(self) -> str:
        return count(self.total)

    @property
    def shown_text(self) -> str:
        return count(len(self.rows))


def score_cell(rows: list[dict[str, Any]]) -> ScoreCell:
    """The session table's cell of one evaluator: the chat-level score, else the mean of the turn scores."""
    if not rows:
        return ScoreCell("", None)
    chat_level = [r for r in rows if r.get("turn_index") is None]
    if chat_level:
        v = to_float(chat_level[0].get("value"))
        return ScoreCell(text("" if v is None else v), score_chip(chat_level[0], with_name=False))
    vals = [v for r in rows if (v := to_float(r.get("value"))) is not None]
    judged = [r for r in rows if r.get("passed") is not None]
    ok = sum(1 for r in judged if r["passed"])
    mean = sum(vals) / len(vals) if vals else None
    cls = "na" if not judged else "pass" if ok == len(judged) else "fail"
    value = score_text(mean) + (f" · {ok}/{len(judged)}" if judged else "")
    return ScoreCell(text("" if mean is None else mean),
                     Chip(cls, value, f"mean of {len(rows)} turn scores; passed {ok}/{len(judged)}"))


def session_row(c: dict[str, Any], linked: bool, scores: list[dict[str, Any]], evaluators: list[str]) -> SessionRow:
    cid = c["chat_id"]
    by_ev: dict[str, list] = defaultdict(list)
    for s in scores:
        by_ev[s["evaluator"]].append(s)
    status = str(c.get("status") or "")
    return SessionRow(
        chat_id=cid, href=chat_href(cid) if linked else "", origin_id=text(c.get("origin_id")),
        row=text(c.get("row_index")), row_sort=text(to_int(c.get("row_index"))), repetition=text(c.get("repetition")),
        persona=text(c.get("persona_name") or "—"), branch=text(c.get("branch_category") or ""),
        status=status, status_badge=status_badge(status), ended_reason=text(c.get("ended_reason") or ""),
        error=text(c.get("error") or ""), error_short=cut(c.get("error") or "", 140)[0],
        divergence=to_int(c.get("divergence_turn")), turn_count=text(c.get("turn_count")),
        latency=number(c.get("avg_latency_ms"), 0, "ms"), latency_sort=sort_key_text(c.get("avg_latency_ms")),
        tokens_in=number(c.get("input_tokens")), tokens_out=number(c.get("output_tokens")),
        tokens_sort=sort_key_text(c.get("output_tokens")),
        scores=[score_cell(by_ev.get(ev, [])) for ev in evaluators])


def build_sessions(ordered, linked: set[str], scores_by_chat, evaluators: list[str], max_sessions: int,
                   execution_id: Any) -> Sessions:
    rows = [session_row(c, c["chat_id"] in linked, scores_by_chat.get(c["chat_id"], []), evaluators)
            for c in ordered[:max_sessions]]
    return Sessions(evaluators, rows, len(ordered), text(execution_id))


# --------------------------------------------------------------------------- transcripts


@dataclass(frozen=True)
class ToolView:
    name: str
    error: bool  # status "error"
    badges: list[Badge]  # where the answer came from, a status other than ok, a call the other side did not make
    args: Cut
    result: Cut


@dataclass(frozen=True)
class Message:
    segments: list[Segment]  # the text, with the words the other side lacks tagged ins/del
    more: str  # characters left out ("" = none)


@dataclass(frozen=True)
class Side:
    tools: list[ToolView]
    message: Message | None  # None = no answer


@dataclass(frozen=True)
class TurnView:
    id: str  # turn-<chat_id>-<index>
    index: int
    diverged_here: bool  # the chat's first divergence from production
    after_divergence: bool
    simulated_user: bool
    latency: str  # "" = unknown
    similarity: str  # to production's answer, 0..1; "" = unknown
    similarity_low: bool  # below 0.6
    chips: list[Chip]
    user: Cut
    replayed: Side
    production: Side | None  # None = no production turn at this index
    reasons: list[tuple[str, str]]  # (evaluator, reason) of the failing scores
    error: str  # "" = none

    @property
    def cls(self) -> str:
        return "turn diverged" if self.diverged_here else "turn after-div" if self.after_divergence else "turn"


def tool_view(c: dict[str, Any], other: set[tuple[str, str]], replayed: bool) -> ToolView:
    status = str(c.get("status") or "")
    badges = [source_badge(c)] if replayed else []
    if status and status != "ok":
        badges.append(Badge(status, "err"))
    if canon_call(c.get("name"), c.get("arguments")) not in other:
        if str(c.get("name")) in {n for n, _ in other}:
            badges.append(Badge("arguments differ", "muted", "the other side called this tool with other arguments"))
        else:
            badges.append(Badge("not in production" if replayed else "not replayed", "muted",
                                "the other side did not call this tool in this turn"))
    return ToolView(text(c.get("name")), status == "error", badges,
                    _cut(json_text(c.get("arguments"))), _cut(json_text(c.get("result"))))


def _side(calls, other_calls, replayed: bool, answer: Cut, segments: list[Segment]) -> Side:
    other = {canon_call(c.get("name"), c.get("arguments")) for c in other_calls}
    return Side([tool_view(c, other, replayed) for c in calls], Message(segments, answer.more) if answer.text else None)


def turn_view(chat_id: str, t: dict[str, Any], div: int | None, turn_scores: list[dict[str, Any]]) -> TurnView:
    idx = to_int(t.get("turn_index")) or 0
    new, old = _cut(t.get("assistant_message")), _cut(t.get("original_assistant_message"))
    calls, ocalls = list(t.get("tool_calls") or []), list(t.get("original_tool_calls") or [])
    has_prod = t.get("original_assistant_message") is not None or bool(ocalls)
    sim = to_float(t.get("similarity"))
    new_segs, old_segs = diff_segments(new.text, old.text) if has_prod else ([Segment("", new.text)], [])
    return TurnView(
        id=f"turn-{chat_id}-{idx}", index=idx, diverged_here=div is not None and idx == div,
        after_divergence=div is not None and idx > div,
        simulated_user=str(t.get("user_source") or "original") == "simulated",
        latency=number(t.get("latency_ms"), 0, "ms") if to_float(t.get("latency_ms")) is not None else "",
        similarity="" if sim is None else f"{sim:.2f}", similarity_low=sim is not None and sim < 0.6,
        chips=[score_chip(s) for s in turn_scores],
        user=_cut(t.get("user_message")), replayed=_side(calls, ocalls, True, new, new_segs),
        production=_side(ocalls, calls, False, old, old_segs) if has_prod else None,
        reasons=[(text(s.get("evaluator")), cut(s.get("reason"), 600)[0])
                 for s in turn_scores if s.get("passed") is False and s.get("reason")],
        error=cut(t.get("error") or "", 2000)[0])


@dataclass(frozen=True)
class ScoreRow:
    evaluator: str
    chip: Chip
    label: str
    reason: str
    source: str


@dataclass(frozen=True)
class TranscriptView:
    chat_id: str
    status: Badge
    divergence: int | None
    who: str  # persona · branch
    turn_count: str
    one_turn: bool
    chips: list[Chip]  # the chat-level scores
    facts: list[tuple[str, str]]
    error: str  # "" = none
    scores: list[ScoreRow]  # the chat-level scores, as a table
    turns: list[TurnView]
    failed: bool

    @property
    def anchor(self) -> str:
        return chat_anchor(self.chat_id)

    @property
    def divergence_href(self) -> str:
        return "#" + quote(f"turn-{self.chat_id}-{self.divergence}", safe="")

    @property
    def cls(self) -> str:
        diverged = self.divergence is not None
        return "chat" + (" chat-failed" if self.failed else "") + (" chat-diverged" if diverged else "")


def _facts(c: dict[str, Any]) -> list[tuple[str, str]]:
    return [("origin", text(c.get("origin_id"))),
            ("row", f'{text(c.get("row_index"))} · repetition {text(c.get("repetition"))}'),
            ("ended", text(c.get("ended_reason") or "—")), ("avg latency", number(c.get("avg_latency_ms"), 0, "ms")),
            ("tokens", f'{number(c.get("input_tokens"))} in / {number(c.get("output_tokens"))} out')]


def transcript_view(c: dict[str, Any], turns: list[dict[str, Any]], scores: list[dict[str, Any]]) -> TranscriptView:
    cid = c["chat_id"]
    div = to_int(c.get("divergence_turn"))
    chat_scores = [s for s in scores if s.get("turn_index") is None]
    by_turn: dict[int | None, list] = defaultdict(list)
    for s in scores:
        if s.get("turn_index") is not None:
            by_turn[to_int(s["turn_index"])].append(s)
    return TranscriptView(
        chat_id=cid, status=status_badge(c.get("status")), divergence=div,
        who=" · ".join(str(x) for x in (c.get("persona_name"), c.get("branch_category")) if x),
        turn_count=text(c.get("turn_count")), one_turn=to_int(c.get("turn_count")) == 1,
        chips=[score_chip(s) for s in chat_scores], facts=_facts(c),
        error=cut(c.get("error") or "", 4000)[0],
        scores=[ScoreRow(text(s.get("evaluator")), score_chip(s, with_name=False), text(s.get("label") or ""),
                         cut(s.get("reason"), 2000)[0], text(s.get("source") or "")) for s in chat_scores],
        turns=[turn_view(cid, t, div, by_turn.get(to_int(t.get("turn_index")), [])) for t in turns],
        failed=c.get("status") == "failed")


# --------------------------------------------------------------------------- the page


@dataclass(frozen=True)
class Page:
    title: str
    header: Header
    kpis: list[Kpi]
    repeatability: dict[str, Any] | None  # {k, pass_k: [[label, text]], flaky_rows}; None: no repetition
    charts: ChartsView
    baseline: BaselineView | None
    sessions: Sessions
    transcripts: list[TranscriptView]
    transcripts_total: int  # chats; more than len(transcripts) = some transcripts left out
    legend: list[Badge]  # the tool-answer sources
    figures: list[dict[str, Any]]  # plotly figures {"id", "data", "layout"}, drawn into the chart boxes

    @property
    def transcripts_left_out(self) -> bool:
        return self.transcripts_total > len(self.transcripts)

    @property
    def transcripts_note(self) -> tuple[str, str]:
        """(shown, total) chats, as text."""
        return count(len(self.transcripts)), count(self.transcripts_total)


def chat_order(chats, fail_chats: set[str]) -> list[dict[str, Any]]:
    """Failed chats first, then chats with a failing score or a divergence, then the rest."""
    def key(c):
        cid = str(c["chat_id"])
        flagged = cid in fail_chats or c.get("divergence_turn") is not None
        group = 0 if c.get("status") == "failed" else 1 if flagged else 2
        return (group, to_int(c.get("row_index")) or 0, to_int(c.get("repetition")) or 0, cid)

    return sorted(chats, key=key)


@dataclass
class _Input:
    """``data`` normalized: chat ids as text, scores of known chats, turns by chat in turn order."""

    chats: list[dict[str, Any]]
    scores: list[dict[str, Any]]
    turns_by_chat: dict[str, list[dict[str, Any]]]
    chat_ids: set[str]

    @classmethod
    def of(cls, data: dict[str, Any]) -> _Input:
        chats = [dict(c, chat_id=str(c["chat_id"])) for c in data.get("chats") or []]
        chat_ids = {c["chat_id"] for c in chats}
        scores = [dict(s, chat_id=str(s["chat_id"]), evaluator=str(s.get("evaluator")))
                  for s in data.get("scores") or [] if str(s.get("chat_id")) in chat_ids]
        turns_by_chat: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for t in data.get("turns") or []:
            turns_by_chat[str(t["chat_id"])].append(t)
        for ts in turns_by_chat.values():
            ts.sort(key=lambda t: to_int(t.get("turn_index")) or 0)
        return cls(chats, scores, turns_by_chat, chat_ids)


def build_page(data: dict[str, Any], *, max_sessions: int, max_transcripts: int) -> Page:
    """The view model of the whole page (see tasks.report.render for ``data``)."""
    ex = dict(data.get("execution") or {})
    baseline = data.get("baseline") or None
    inp = _Input.of(data)
    all_turns = [t for cid in inp.chat_ids for t in inp.turns_by_chat.get(cid, [])]
    evaluators = sorted({s["evaluator"] for s in inp.scores})
    scores_by_chat: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in inp.scores:
        scores_by_chat[s["chat_id"]].append(s)
    ordered = chat_order(inp.chats, {s["chat_id"] for s in inp.scores if s.get("passed") is False})
    shown = ordered[:max_transcripts]
    charts = Charts()
    boxes = build_charts(charts, inp.chats, all_turns, inp.scores, evaluators)
    return Page(
        title=page_title(ex), header=build_header(ex, baseline),
        kpis=build_kpis(dict(data.get("metrics") or {}), baseline, _specs(data)),
        repeatability=data.get("repeatability"),
        charts=boxes, baseline=build_baseline(charts, baseline, _specs(data)) if baseline else None,
        sessions=build_sessions(ordered, {c["chat_id"] for c in shown}, scores_by_chat, evaluators, max_sessions,
                                ex.get("execution_id")),
        transcripts=[transcript_view(c, inp.turns_by_chat.get(c["chat_id"], []), scores_by_chat.get(c["chat_id"], []))
                     for c in shown],
        transcripts_total=len(ordered), legend=[source_badge({"source": s}) for s in SOURCE_HELP],
        figures=charts.figures)


def _specs(data: dict[str, Any]) -> dict[str, Any]:
    """The metric specs the data carries (by execution_metrics column), as MetricSpecs."""
    from models.evals import MetricSpec

    return {k: v if isinstance(v, MetricSpec) else MetricSpec.model_validate(v)
            for k, v in (data.get("specs") or {}).items()}
