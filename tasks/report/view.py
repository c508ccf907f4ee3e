"""The report's view model: what the page shows, built from a ``ReportData`` dict.

Plain frozen dataclasses whose texts are already formatted by Python's rules
(:mod:`tasks.report.formats`) and NOT escaped: the template (``templates/report.html.j2``,
autoescaping on) escapes every one of them; the SVG charts (:mod:`tasks.report.figures`) are
built escaped. The template only lays them out.

The page answers "better or worse, and where": the verdict banner (compare's significant
metrics and rows, and the CI gate), the KPI cards, compare's metric table, the per-chat score
distributions of both sides, then one line per production conversation (a unit of compare:
its scenario rows, their repetitions grouped) with its delta per metric, which opens the
conversation side by side: production | baseline | candidate, turn by turn.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from tasks.report import figures
from tasks.report.formats import (
    COUNT_KEYS,
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
    metric_label,
    metric_spec,
    metric_unit,
    number,
    score_text,
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
    label = src
    mt = to_int(call.get("matched_turn"))
    if mt is not None and src in ("recorded", "nearest"):
        label += f" · prod turn {mt}"
    cls = "src-" + src if src in SOURCE_HELP else "src-unknown"
    return Badge(label, cls, "answer source: " + SOURCE_HELP.get(src, "not recorded"))


def score_chip(s: dict[str, Any], with_name: bool = True) -> Chip:
    p = s.get("passed")
    cls = "pass" if p is True else "fail" if p is False else "na"
    val = score_text(s.get("value")) if to_float(s.get("value")) is not None else (s.get("label") or "—")
    tip = " · ".join(str(x) for x in (s.get("label"), s.get("reason"), s.get("source")) if x)
    return Chip(cls, text(val), tip, text(s.get("evaluator")) if with_name else None)


def _spec_of(d: dict[str, Any]):
    from models.evals import MetricSpec

    return d if isinstance(d, MetricSpec) else MetricSpec.model_validate(d)


def fmt(spec, value: Any, *, unit: bool = True, sign: bool = False) -> str:
    """A metric's value as every surface writes it (tasks.evaluate.metrics.format_value)."""
    from tasks.evaluate.metrics import format_value

    return format_value(spec, to_float(value), unit=unit, sign=sign)


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
    duration: str
    baseline_id: str | None  # None = no baseline
    baseline_name: str
    baseline_agent: str


def build_header(ex: dict[str, Any], baseline: dict[str, Any] | None) -> Header:
    b = baseline or {}
    return Header(
        title=text(ex.get("name") or ex.get("execution_id") or "execution"), status=status_badge(ex.get("status")),
        execution_id=text(ex.get("execution_id")), run_test_id=text(ex.get("run_test_id")),
        scenario_name=text(ex.get("scenario_name")), scenario_id=text(ex.get("scenario_id")),
        agent_ref=text(ex.get("agent_ref")), mode=text(ex.get("mode") or "—"),
        tool_mode=text(ex.get("tool_mode") or "—"), started=fmt_time(ex.get("started_at")),
        duration=duration(ex.get("started_at"), ex.get("ended_at")),
        baseline_id=text(b.get("execution_id")) if baseline else None,
        baseline_name=text(b.get("name") or ""), baseline_agent=text(b.get("agent_ref") or ""))


def page_title(ex: dict[str, Any]) -> str:
    title = f'Replay report · {ex.get("name") or ex.get("execution_id") or "execution"}'
    if ex.get("execution_id") and ex.get("name"):
        title += f' · {ex["execution_id"]}'
    return title


@dataclass(frozen=True)
class KpiDelta:
    cls: str  # delta_class of the matching baseline delta
    text: str  # "+4.9%", "±0"
    significant: bool


@dataclass(frozen=True)
class Kpi:
    key: str
    label: str
    value: str  # format_metric(key, value): the card's number and its data-value
    unit: str  # "" = none (always none for n/a)
    baseline: str | None = None  # the baseline's value with its unit; None = no baseline value
    delta: KpiDelta | None = None  # None = no difference to show
    measures: str = ""

    @property
    def title(self) -> str:
        return f"{self.label} ({self.key})" + (f": {self.measures}" if self.measures else "")


def delta_for(key: str, deltas: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The comparison of the metric a KPI card shows (matched by its execution_metrics column)."""
    return next((d for d in deltas if key in (d.get("column"), d.get("metric"), "avg_" + str(d.get("metric")))), None)


def _kpi_delta(key: str, cur: Any, old: Any, deltas: list[dict[str, Any]], specs: dict[str, Any]) -> KpiDelta | None:
    """The card's change: compare's delta when compare has the metric (the number of the metric
    table and of ``replay compare``), else the difference of the two values shown."""
    cur, old = to_float(cur), to_float(old)
    if cur is None or old is None:
        return None
    d = delta_for(key, deltas)
    change = to_float(d.get("delta")) if d else None
    change = cur - old if change is None else change
    spec = metric_spec(key, specs) if key not in COUNT_KEYS else None
    digits = spec.digits if spec is not None else 0 if key in COUNT_KEYS else 2
    if round(change, digits) == 0:
        dv = "±0"
    else:
        dv = fmt(spec, change, unit=False, sign=True) if spec is not None else f"{change:+.{digits}f}"
    return KpiDelta(delta_class(d), dv, bool(d and d.get("significant")))


def build_kpis(metrics: dict[str, Any], baseline: dict[str, Any] | None,
               specs: dict[str, Any] | None = None) -> list[Kpi]:
    bm = (baseline or {}).get("metrics") or {}
    deltas = (baseline or {}).get("deltas") or []
    cards = []
    keys = [k for k in kpi_keys(metrics, specs)
            if not (k == "completed_chats" and "completion_pct" in metrics or k == "failed_chats" and "failed_pct" in metrics)]
    for key in keys:
        value = format_metric(key, metrics[key], specs)
        spec = metric_spec(key, specs) if key not in COUNT_KEYS else None
        unit = metric_unit(key, specs) if value != MISSING else ""
        base = None
        if baseline is not None and key in bm:
            base = fmt(spec, bm[key], unit=False) if spec is not None else format_metric(key, bm[key], specs)
        cards.append(Kpi(key, metric_label(key, specs), value, unit, base,
                         _kpi_delta(key, metrics[key], bm[key], deltas, specs or {}) if base is not None else None,
                         spec.measures if spec is not None else ""))
    return cards


# --------------------------------------------------------------------------- the metric table


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
    chart: Markup  # the interval, as SVG


def _delta_row(d: dict[str, Any], specs: dict[str, Any]) -> DeltaRow:
    from tasks.evaluate.metrics import infer_spec

    spec = metric_spec(str(d.get("column")), specs) or infer_spec(str(d.get("metric")), "chat", [])
    lo, hi = to_float(d.get("lo")), to_float(d.get("hi"))
    ci = (f"[{fmt(spec, lo, unit=False, sign=True)}, {fmt(spec, hi, unit=False, sign=True)}]"
          if lo is not None and hi is not None else "—")
    cls = delta_class(d)
    return DeltaRow(
        metric=text(d.get("metric")), label=text(d.get("label") or d.get("metric")), verdict=verdict(d),
        significant=bool(d.get("significant")), a=fmt(spec, d.get("a")), b=fmt(spec, d.get("b")),
        delta=fmt(spec, d.get("delta"), sign=True), ci=ci,
        units=f"{d.get('n_units', '—')}/{d.get('n_rows', '—')}", note=text(d.get("note") or ""), cls=cls,
        chart=Markup(figures.interval_svg(d.get("delta"), lo, hi, d.get("min_effect"), cls)))


# --------------------------------------------------------------------------- the verdict banner


@dataclass(frozen=True)
class BannerGroup:
    kind: str  # regression, improvement, unchanged, failed, diverged, same
    title: str
    items: list[str]


@dataclass(frozen=True)
class Banner:
    cls: str  # fail, pass, info
    headline: str
    gate: str  # the CI gate's result, in words
    gate_cls: str  # fail, pass, none
    groups: list[BannerGroup]


def _rows_text(rows: list[int]) -> str:
    return ("row " if len(rows) == 1 else "rows ") + ", ".join(map(str, rows))


def _row_moves(changes: dict[str, list[dict[str, Any]]], labels: dict[str, str], kind: str) -> list[str]:
    out = []
    for metric, units in changes.items():
        rows = sorted(r for u in units if u.get("change") == kind and u.get("significant") for r in u.get("rows", []))
        if rows:
            out.append(f"{labels.get(metric, metric)} {'worse' if kind == 'regression' else 'better'} on "
                       f"{_rows_text(rows)}")
    return out


def _some(rows: list[str], what: str) -> str:
    """ "2 conversations (rows 1, 6)", "no conversation". """
    if not rows:
        return f"no {what}"
    return f"{len(rows)} {what}{'s' if len(rows) != 1 else ''} ({_rows_text([int(r) for x in rows for r in x.split(', ')])})"


def baseline_banner(baseline: dict[str, Any], units: list[UnitLine], specs: dict[str, Any], ids: tuple[str, str]
                    ) -> Banner:
    """Compare's verdict: the metrics that changed significantly over the conversations, the
    rows that changed significantly on their own, what did not change, and the CI gate."""
    deltas = baseline.get("deltas") or []
    labels = {str(d["metric"]): str(d.get("label") or d["metric"]) for d in deltas}
    changes = baseline.get("changes") or {}
    sig = {k: [f"{labels[str(d['metric'])]} {fmt(_spec_for(d, specs), d.get('delta'), sign=True)}"
               for d in deltas if d.get("significant") and verdict(d) == k] for k in ("regression", "improvement")}
    moved = {str(m) for m, us in changes.items() if any(u.get("significant") for u in us)}
    moved |= {str(d["metric"]) for d in deltas if d.get("significant")}
    unchanged = [labels[m] for m in labels if m not in moved]
    gate = [str(g) for g in baseline.get("gate") or []]
    candidate, base = ids
    n_units = max((int(d.get("n_units") or 0) for d in deltas), default=0)
    worse = [u.rows_text for u in units if u.verdicts.get("quality") == "regressed"]
    better = [u.rows_text for u in units if u.verdicts.get("quality") == "improved"]
    headline = (f"Against the baseline, over {n_units} production conversations: "
                + (f"{len(sig['regression'])} metric{'s' if len(sig['regression']) != 1 else ''} worse, "
                   if sig["regression"] else "")
                + (f"{len(sig['improvement'])} better, " if sig["improvement"] else "")
                + ("no metric changed significantly; " if not (sig["regression"] or sig["improvement"]) else "")
                + f"{_some(worse, 'conversation')} worse and {_some(better, 'conversation')} better on a quality metric.")
    groups = [
        BannerGroup("regression", "Regressions", sig["regression"] + _row_moves(changes, labels, "regression")),
        BannerGroup("improvement", "Improvements", sig["improvement"] + _row_moves(changes, labels, "improvement")),
        BannerGroup("unchanged", "Unchanged", [", ".join(unchanged)] if unchanged else [])]
    gate_text = (f"CI gate: FAIL — replay compare {candidate} {base} --fail-on-regression exits 1: "
                 f"significant regression in {', '.join(gate)}" if gate else
                 f"CI gate: PASS — replay compare {candidate} {base} --fail-on-regression exits 0")
    return Banner("fail" if gate else "pass", headline, gate_text, "fail" if gate else "pass",
                  [g for g in groups if g.items])


def production_banner(vs: dict[str, Any], chats: list[dict[str, Any]], units: list[UnitLine], execution_id: str
                      ) -> Banner:
    """Without a baseline: how many replays failed or left the production conversation, where."""
    failed = [c for c in chats if c.get("status") == "failed"]
    div = int(vs.get("diverged_chats") or 0)
    by: dict[str, list[str]] = defaultdict(list)
    for u in units:
        by[u.verdicts.get("production", "")].append(u.rows_text)

    def rows(key: str) -> list[str]:
        return [("row " if len(by[key]) == 1 else "rows ") + ", ".join(by[key])] if by[key] else []

    headline = (f"Against production (no baseline): {div} of {len(chats)} chats diverged from the production "
                f"conversation, {len(failed)} failed.")
    groups = [BannerGroup("failed", "Failed", rows("failed")), BannerGroup("diverged", "Diverged", rows("diverged")),
              BannerGroup("as_production", "As production", rows("as_production"))]
    return Banner("fail" if failed else "info", headline,
                  f"No CI gate without a baseline: replay report {execution_id} --baseline OTHER_EXECUTION "
                  "compares two executions of this scenario", "none", [g for g in groups if g.items])


def _spec_for(d: dict[str, Any], specs: dict[str, Any]):
    from tasks.evaluate.metrics import infer_spec

    return metric_spec(str(d.get("column")), specs) or infer_spec(str(d.get("metric")), "chat", [])


# --------------------------------------------------------------------------- distributions


@dataclass(frozen=True)
class Distribution:
    metric: str
    label: str
    sub: str  # "60 chats each · baseline 29.9% → 34.7%"
    svg: Markup


def build_distributions(units: list[dict[str, Any]], has_baseline: bool, values: dict[str, tuple[str, str]]
                        ) -> list[Distribution]:
    """One chart per quality metric (chat metrics aside): the per-chat values of both sides."""
    out = []
    for m in sorted(units, key=lambda m: (_spec_of(m["spec"]).rank, m["metric"])):
        spec = _spec_of(m["spec"])
        if spec.kind != "quality" or spec.name in ("completion", "failed"):
            continue
        a = [v for u in m["units"].values() for v in u.get("a_values") or []] if has_baseline else None
        b = [v for u in m["units"].values() for v in u.get("b_values") or []]
        svg = figures.histogram_svg(a, b, scale=tuple(spec.scale), unit=spec.unit)
        if not svg:
            continue
        va, vb = values.get(spec.name, ("", ""))
        sub = (f"{len(b)} chats · " + (f"{va} → {vb}" if has_baseline else vb))
        out.append(Distribution(spec.name, spec.label or spec.name, sub, Markup(svg)))
    return out


# --------------------------------------------------------------------------- one line a conversation


@dataclass(frozen=True)
class MetricCell:
    text: str  # B's value (the candidate's)
    delta: str  # "" = no baseline or no change to show
    cls: str  # bad, good, bad-weak, good-weak, neutral
    sort: str  # data-sort: the delta with a baseline, else the value
    title: str
    why: str = ""  # replays compared, and compare's test of this conversation


@dataclass(frozen=True)
class Column:
    metric: str
    label: str
    unit: str


@dataclass(frozen=True)
class ToolLine:
    name: str
    key_args: str  # "order_id=A1150 · amount=64.9"; "" = none
    badges: list[Badge]
    args: str  # the whole arguments, cut
    result: str
    error: bool


@dataclass(frozen=True)
class Cell:
    """One side of one turn."""

    present: bool  # False: this side has no such turn
    user: str  # the user message this side got ("" when it is the shared one)
    segments: list[Segment]
    tools: list[ToolLine]
    chips: list[Chip]
    badges: list[Badge]
    error: str


@dataclass(frozen=True)
class TurnRow:
    index: int
    user: str  # the user message, when every side got the same; else ""
    cells: list[Cell]
    diverged: bool  # the candidate left production here


@dataclass(frozen=True)
class SideHead:
    title: str
    sub: str  # chat id, status
    badges: list[Badge]
    chips: list[Chip]
    error: str


@dataclass(frozen=True)
class Pair:
    """A pair of replays shown side by side (the k-th of each side), with production."""

    id: str
    heads: list[SideHead]
    turns: list[TurnRow]


@dataclass(frozen=True)
class Pick:
    label: str
    pair_id: str


@dataclass(frozen=True)
class MetricLine:
    label: str
    a: str
    b: str
    delta: str
    cls: str
    note: str
    moved: bool  # compare lists this conversation among the ones that moved on this metric


@dataclass(frozen=True)
class Detail:
    columns: list[str]
    metrics: list[MetricLine]  # in rank order

    @property
    def moved(self) -> list[MetricLine]:
        return [m for m in self.metrics if m.moved]

    @property
    def still(self) -> list[MetricLine]:
        return [m for m in self.metrics if not m.moved]
    pairs: list[Pair]
    picks: list[Pick]  # one per repetition; empty when every repetition gave the same conversations
    note: str  # "all 5 replays of each side gave the same conversation"


@dataclass(frozen=True)
class UnitLine:
    origin_id: str
    anchor: str
    rows: list[int]
    rows_text: str
    row_sort: int
    persona: str
    branch: str
    first_user: str
    replays: str  # "5 · 5"
    flaky: bool
    diverged: str  # the candidate's chats that diverged from production: "5/5 at turn 0"
    diverged_sort: int
    verdicts: dict[str, str]  # selector -> regressed | improved | unchanged (| failed | diverged | same)
    cells: list[MetricCell]
    detail: Detail | None  # None: left out (too many)

    @property
    def verdict(self) -> str:
        return self.verdicts.get("quality") or self.verdicts.get("production") or "unchanged"


@dataclass(frozen=True)
class FilterButton:
    key: str
    label: str


@dataclass(frozen=True)
class UnitTable:
    columns: list[Column]
    units: list[UnitLine]
    selectors: list[tuple[str, str]]  # (key, label) of the verdict rules: "quality", "any", a metric
    buttons: list[FilterButton]
    total: int
    has_baseline: bool
    side_names: tuple[str, str]

    @property
    def left_out(self) -> int:
        return self.total - len(self.units)


def _row_verdict(changes: list[dict[str, Any]]) -> str:
    if any(u.get("change") == "regression" and u.get("significant") for u in changes):
        return "regressed"
    if any(u.get("change") == "improvement" and u.get("significant") for u in changes):
        return "improved"
    return "unchanged"


def unit_verdicts(origin: str, changes: dict[str, list[dict[str, Any]]], quality: set[str]) -> dict[str, str]:
    """A conversation's verdict per rule: per metric (compare's significant UnitChange of it),
    over the quality metrics, over every metric."""
    mine = {m: [u for u in us if u.get("origin_id") == origin] for m, us in changes.items()}
    out = {m: _row_verdict(us) for m, us in mine.items()}
    out["quality"] = _row_verdict([u for m, us in mine.items() if m in quality for u in us])
    out["any"] = _row_verdict([u for us in mine.values() for u in us])
    return out


def interest(units: list[dict[str, Any]], changes: dict[str, list[dict[str, Any]]], limit: int = 6) -> list[str]:
    """The metrics that get a column: the quality metrics (the chat metrics aside), then the cost
    metrics some conversation moved significantly on, in rank order, at most ``limit``."""
    specs = {m["metric"]: _spec_of(m["spec"]) for m in units}
    moved = {m for m, us in changes.items() if any(u.get("significant") for u in us)}
    names = [n for n, s in specs.items() if s.name not in ("completion", "failed")
             and (s.kind == "quality" or n in moved)]
    return sorted(names, key=lambda n: (specs[n].rank, n))[:limit]


def _cell(spec, u: dict[str, Any] | None, change: dict[str, Any] | None, has_baseline: bool, names) -> MetricCell:
    if u is None or (u.get("b") is None and u.get("a") is None):
        return MetricCell("—", "", "neutral", "", "no value")
    compact = spec.unit in ("%", "/10")  # other units are in the column's header
    b_text = fmt(spec, u.get("b"), unit=compact)
    if not has_baseline:
        return MetricCell(b_text, "", "neutral", text(u.get("b") if u.get("b") is not None else ""),
                          f"mean of {len(u.get('b_values') or [])} replays")
    d = to_float(u.get("delta"))
    if change is not None:  # compare's own numbers for the conversations that moved
        d = to_float(change.get("delta"))
        cls = ("bad" if change["change"] == "regression" else "good") + ("" if change.get("significant") else "-weak")
        sig = (f"significant (p = {change.get('p_value')})" if change.get("significant")
               else f"not significant (p = {change.get('p_value')})")
    else:
        cls, sig = "neutral", "less than the minimum effect or within the noise"
    why = f"{len(u.get('a_values') or [])} · {len(u.get('b_values') or [])} replays; {sig}"
    title = f"baseline {fmt(spec, u.get('a'))} → candidate {fmt(spec, u.get('b'))}; {why}"
    delta = "" if d is None or round(d, spec.digits) == 0 else fmt(spec, d, unit=compact, sign=True)
    return MetricCell(b_text, delta, cls, text(d if d is not None else ""), title, why)


# --------------------------------------------------------------------------- side by side


def key_args(name: Any, arguments: Any) -> str:
    """The call's key arguments as the tool matcher sees them (ids, amounts, dates), else its text."""
    from tasks.simulate.arguments import parse_args
    from tasks.simulate.toolmatch import split_args

    try:
        key, free = split_args(str(name or ""), arguments)
        raw = parse_args(arguments)
    except (TypeError, ValueError):
        key, free, raw = {}, {}, None

    def written(path: str, value: Any) -> Any:  # as the agent wrote it, not the matcher's normal form
        return raw[path] if isinstance(raw, dict) and path in raw and not isinstance(raw[path], (dict, list)) else value

    shown = ([f"{k}={written(k, v)}" for k, v in key.items()]
             or [f"{k}={cut(written(k, v), 40)[0]}" for k, v in free.items()])
    return cut(" · ".join(shown), 160)[0]


def tool_line(c: dict[str, Any], other: set[tuple[str, str]] | None, replayed: bool, other_name: str) -> ToolLine:
    status = str(c.get("status") or "")
    badges = [source_badge(c)] if replayed else []
    if status and status != "ok":
        badges.append(Badge(status, "err"))
    if other is not None and canon_call(c.get("name"), c.get("arguments")) not in other:
        same_name = str(c.get("name")) in {n for n, _ in other}
        badges.append(Badge("arguments differ" if same_name else f"not in {other_name}", "warn",
                            f"{other_name} called this tool with other arguments" if same_name
                            else f"{other_name} did not make this call in this turn"))
    return ToolLine(text(c.get("name")), key_args(c.get("name"), c.get("arguments")), badges,
                    cut(json_text(c.get("arguments")), 2000)[0], cut(json_text(c.get("result")), 2000)[0],
                    status == "error")


def _calls(turn: dict[str, Any] | None) -> list[dict[str, Any]]:
    return list((turn or {}).get("tool_calls") or [])


def _canon(turn: dict[str, Any] | None) -> set[tuple[str, str]]:
    return {canon_call(c.get("name"), c.get("arguments")) for c in _calls(turn)}


@dataclass
class SideTurns:
    """One side's conversation: its turns by index, its turn scores by index, its chat."""

    name: str
    replayed: bool
    turns: dict[int, dict[str, Any]]
    scores: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    chat: dict[str, Any] | None = None


def _make_cell(side: SideTurns, idx: int, shared_user: bool, segments: list[Segment] | None,
               other: SideTurns | None, div: int | None) -> Cell:
    t = side.turns.get(idx)
    if t is None:
        return Cell(False, "", [], [], [], [], "")
    msg = cut(t.get("assistant_message"), 20_000)[0]
    badges = []
    if side.replayed and div is not None and idx == div:
        badges.append(Badge("⚑ left production here", "warn", "the first turn this replay diverged from production"))
    other_calls = _canon(other.turns.get(idx)) if other is not None else None
    return Cell(True, "" if shared_user else text(t.get("user_message")),
                segments if segments is not None else [Segment("", msg)],
                [tool_line(c, other_calls, side.replayed, other.name if other else "") for c in _calls(t)],
                [score_chip(s) for s in side.scores.get(idx, [])], badges, cut(t.get("error") or "", 2000)[0])


def side_by_side(sides: list[SideTurns], diff: tuple[int, int]) -> list[TurnRow]:
    """The turns of every side aligned by index; the words of side ``diff[1]`` not in side
    ``diff[0]`` are marked ``ins`` and the other way round ``del`` (difflib on words), and each
    side's tool calls are checked against the other side of the diff."""
    n = max((max(s.turns) + 1 for s in sides if s.turns), default=0)
    old, new = sides[diff[0]], sides[diff[1]]
    div = to_int((new.chat or {}).get("divergence_turn"))
    rows = []
    for i in range(n):
        users = {text(s.turns[i].get("user_message")) for s in sides if i in s.turns}
        shared = len(users) == 1
        segs: dict[int, list[Segment]] = {}
        if i in old.turns and i in new.turns:
            segs[diff[1]], segs[diff[0]] = diff_segments(cut(new.turns[i].get("assistant_message"), 20_000)[0],
                                                         cut(old.turns[i].get("assistant_message"), 20_000)[0])
        cells = []
        for k, s in enumerate(sides):
            other = new if k == diff[0] else old if k == diff[1] else None
            cells.append(_make_cell(s, i, shared, segs.get(k), other, to_int((s.chat or {}).get("divergence_turn"))))
        rows.append(TurnRow(i, next(iter(users)) if shared and users else "", cells, div is not None and i == div))
    return rows


def _signature(chat: dict[str, Any] | None, turns: list[dict[str, Any]]) -> tuple:
    """What a replay said and did: two replays with the same signature look the same."""
    if chat is None:
        return ()
    return (chat.get("status"), chat.get("error"), tuple(
        (t.get("user_message"), t.get("assistant_message"),
         tuple(canon_call(c.get("name"), c.get("arguments")) + (str(c.get("source")),) for c in _calls(t)))
        for t in turns))


def _head(title: str, chat: dict[str, Any] | None, chat_scores: list[dict[str, Any]]) -> SideHead:
    if chat is None:
        return SideHead(title, "", [], [], "")
    sub = f"{chat['chat_id']} · row {chat.get('row_index')} · replay {to_int(chat.get('repetition') or 0) + 1}"
    badges = [status_badge(chat.get("status"))]
    div = to_int(chat.get("divergence_turn"))
    badges.append(Badge(f"left production at turn {div}" if div is not None else "followed production",
                        "warn" if div is not None else "ok"))
    return SideHead(title, sub, badges, [score_chip(s) for s in chat_scores
                                         if s.get("turn_index") is None and s.get("passed") is not None],
                    cut(chat.get("error") or "", 2000)[0])


# --------------------------------------------------------------------------- inputs


@dataclass
class Side:
    """One execution's chats, turns and scores, indexed."""

    chats: list[dict[str, Any]]
    turns: dict[str, list[dict[str, Any]]]
    scores: dict[str, list[dict[str, Any]]]

    @classmethod
    def of(cls, chats, turns, scores) -> Side:
        chats = [dict(c, chat_id=str(c["chat_id"])) for c in chats or []]
        by_turn: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for t in turns or []:
            by_turn[str(t["chat_id"])].append(t)
        for ts in by_turn.values():
            ts.sort(key=lambda t: to_int(t.get("turn_index")) or 0)
        by_score: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for s in scores or []:
            by_score[str(s["chat_id"])].append(dict(s, evaluator=str(s.get("evaluator"))))
        return cls(chats, by_turn, by_score)

    def of_origin(self, origin: str) -> list[dict[str, Any]]:
        return sorted((c for c in self.chats if str(c.get("origin_id")) == origin),
                      key=lambda c: (to_int(c.get("row_index")) or 0, to_int(c.get("repetition")) or 0))

    def side(self, name: str, chat: dict[str, Any] | None) -> SideTurns:
        if chat is None:
            return SideTurns(name, True, {})
        turns = self.turns.get(chat["chat_id"], [])
        scores: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for s in self.scores.get(chat["chat_id"], []):
            if s.get("turn_index") is not None:
                scores[to_int(s["turn_index"]) or 0].append(s)
        return SideTurns(name, True, {to_int(t.get("turn_index")) or 0: t for t in turns}, scores, chat)


def _production_side(prod: dict[str, Any] | None) -> SideTurns:
    turns = {to_int(t.get("turn_index")) or 0: t for t in (prod or {}).get("turns") or []}
    return SideTurns("production", False, turns)


def build_detail(origin: str, prod: dict[str, Any] | None, cand: Side, base: Side | None,
                 metric_lines: list[MetricLine], names: tuple[str, str]) -> Detail:
    """The conversation side by side: production | baseline | candidate (production | candidate
    without a baseline), one panel per distinct pair of replays, a picker per repetition."""
    bc, cc = (base.of_origin(origin) if base else []), cand.of_origin(origin)
    k = max(len(bc), len(cc))
    columns = ["production"] + ([f"baseline · {names[0]}"] if base else []) + [f"candidate · {names[1]}"]
    pairs: dict[tuple, Pair] = {}
    picks: list[Pick] = []
    for i in range(k):
        b_chat, c_chat = (bc[i] if i < len(bc) else None), (cc[i] if i < len(cc) else None)
        sig = (_signature(b_chat, base.turns.get(b_chat["chat_id"], []) if base and b_chat else []),
               _signature(c_chat, cand.turns.get(c_chat["chat_id"], []) if c_chat else []))
        if sig not in pairs:
            sides = [_production_side(prod)]
            heads = [SideHead("production", origin, [], [], "")]
            if base:
                sides.append(base.side("baseline", b_chat))
                heads.append(_head(f"baseline · {names[0]}", b_chat, base.scores.get(b_chat["chat_id"], []) if b_chat else []))
            sides.append(cand.side("candidate", c_chat))
            heads.append(_head(f"candidate · {names[1]}", c_chat, cand.scores.get(c_chat["chat_id"], []) if c_chat else []))
            diff = (1, 2) if base else (0, 1)
            pairs[sig] = Pair(f"{_anchor(origin)}-p{len(pairs)}", heads, side_by_side(sides, diff))
        chat = c_chat or b_chat or {}
        picks.append(Pick(f"row {chat.get('row_index')} · replay {(to_int(chat.get('repetition')) or 0) + 1}",
                          pairs[sig].id))
    note = ""
    if len(pairs) == 1:
        if k > 1:
            note = (f"all {k} replays of each side gave the same conversation: one shown" if base
                    else f"all {k} replays gave the same conversation: one shown")
        picks = []
    return Detail(columns, metric_lines, list(pairs.values()), picks, note)


def _anchor(origin: str) -> str:
    return "conv-" + "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in origin)


# --------------------------------------------------------------------------- the table


@dataclass
class _Context:
    cand: Side
    base: Side | None
    production: dict[int, dict[str, Any]]
    units: list[dict[str, Any]]  # data["units"]
    changes: dict[str, list[dict[str, Any]]]
    names: tuple[str, str]


def _unit_origins(ctx: _Context) -> list[str]:
    origins = {str(c.get("origin_id")) for c in ctx.cand.chats}
    if ctx.base:
        origins |= {str(c.get("origin_id")) for c in ctx.base.chats}
    for m in ctx.units:
        origins |= set(m["units"])
    return sorted(origins)


def _first_user(prod: dict[str, Any] | None, chats: list[dict[str, Any]], side: Side) -> str:
    turns = (prod or {}).get("turns") or []
    if turns:
        return text(turns[0].get("user_message"))
    first = side.turns.get(chats[0]["chat_id"], []) if chats else []
    return text(first[0].get("user_message")) if first else ""


def _diverged(chats: list[dict[str, Any]]) -> tuple[str, int]:
    div = [to_int(c.get("divergence_turn")) for c in chats if c.get("divergence_turn") is not None]
    if not chats:
        return "—", -1
    if not div:
        return f"0/{len(chats)}", 0
    return f"{len(div)}/{len(chats)} · turn {min(div)}", len(div)


def _production_verdict(chats: list[dict[str, Any]]) -> str:
    if any(c.get("status") == "failed" for c in chats):
        return "failed"
    return "diverged" if any(c.get("divergence_turn") is not None for c in chats) else "as_production"


def unit_line(origin: str, ctx: _Context, columns: list[Column], quality: set[str], flaky_rows: set[int],
              with_detail: bool) -> UnitLine:
    cc = ctx.cand.of_origin(origin)
    bc = ctx.base.of_origin(origin) if ctx.base else []
    rows = sorted({to_int(c.get("row_index")) or 0 for c in cc + bc}
                  | {r for m in ctx.units for r in (m["units"].get(origin) or {}).get("rows", [])})
    prod = next((ctx.production.get(r) for r in rows if r in ctx.production), None)
    first = cc[0] if cc else bc[0] if bc else {}
    change_of = {m: next((u for u in us if u.get("origin_id") == origin), None) for m, us in ctx.changes.items()}
    cells, lines = [], []
    for m in sorted(ctx.units, key=lambda m: (_spec_of(m["spec"]).rank, m["metric"])):
        spec, u = _spec_of(m["spec"]), m["units"].get(origin)
        c = _cell(spec, u, change_of.get(m["metric"]), ctx.base is not None, ctx.names)
        if m["metric"] in {col.metric for col in columns}:
            cells.append((m["metric"], c))
        if u is not None:
            lines.append(MetricLine(spec.label or spec.name, fmt(spec, u.get("a")) if ctx.base else "",
                                    fmt(spec, u.get("b")), c.delta, c.cls, c.why,
                                    change_of.get(m["metric"]) is not None))
    order = {col.metric: i for i, col in enumerate(columns)}
    verdicts = (unit_verdicts(origin, ctx.changes, quality) if ctx.base is not None
                else {"production": _production_verdict(cc)})
    div_text, div_sort = _diverged(cc)
    return UnitLine(
        origin_id=origin, anchor=_anchor(origin), rows=rows, rows_text=", ".join(map(str, rows)),
        row_sort=rows[0] if rows else 0, persona=text((prod or first).get("persona_name") or ""),
        branch=text((prod or first).get("branch_category") or ""),
        first_user=cut(_first_user(prod, cc or bc, ctx.cand if cc else ctx.base or ctx.cand), 160)[0],
        replays=(f"{len(bc)} · {len(cc)}" if ctx.base else str(len(cc))), flaky=bool(flaky_rows & set(rows)),
        diverged=div_text, diverged_sort=div_sort, verdicts=verdicts,
        cells=[c for _, c in sorted(cells, key=lambda mc: order[mc[0]])],
        detail=build_detail(origin, prod, ctx.cand, ctx.base, lines, ctx.names) if with_detail else None)


VERDICT_ORDER = {"regressed": 0, "failed": 0, "improved": 1, "diverged": 1, "unchanged": 2, "as_production": 2}


def build_table(ctx: _Context, flaky_rows: set[int], max_units: int, max_details: int) -> UnitTable:
    specs = {m["metric"]: _spec_of(m["spec"]) for m in ctx.units}
    cols = interest(ctx.units, ctx.changes)
    columns = [Column(n, specs[n].label or n, "" if specs[n].unit in ("%", "/10") else specs[n].unit) for n in cols]
    quality = {n for n, s in specs.items() if s.kind == "quality"}
    origins = _unit_origins(ctx)
    lines = [unit_line(o, ctx, columns, quality, flaky_rows, False) for o in origins]
    lines.sort(key=lambda u: (VERDICT_ORDER.get(u.verdict, 3), u.row_sort))
    lines = lines[:max_units]
    detailed = {u.origin_id for u in lines[:max_details]}
    lines = [unit_line(u.origin_id, ctx, columns, quality, flaky_rows, True) if u.origin_id in detailed else u
             for u in lines]
    lines.sort(key=lambda u: u.row_sort)
    if ctx.base is not None:
        moved = [m for m in cols if any(u.get("significant") for u in ctx.changes.get(m, []))]
        selectors = [("quality", "quality metrics"), ("any", "any metric")] + [(m, specs[m].label or m) for m in moved]
        buttons = [FilterButton("all", "all"), FilterButton("regressed", "regressed"),
                   FilterButton("improved", "improved"), FilterButton("unchanged", "unchanged")]
    else:
        selectors = [("production", "production")]
        buttons = [FilterButton("all", "all"), FilterButton("failed", "failed"), FilterButton("diverged", "diverged"),
                   FilterButton("as_production", "as production")]
    return UnitTable(columns, lines, selectors, buttons, len(origins), ctx.base is not None, ctx.names)


# --------------------------------------------------------------------------- the page


@dataclass(frozen=True)
class Page:
    title: str
    header: Header
    banner: Banner
    kpis: list[Kpi]
    repeatability: dict[str, Any] | None  # {k, pass_k: [[label, text]], flaky_rows}; None: no repetition
    deltas: list[DeltaRow]  # compare's metric table; [] without a baseline
    verdicts: list[str]  # compare's verdict lines
    distributions: list[Distribution]
    table: UnitTable
    legend: list[Badge]  # the tool-answer sources


def _specs(data: dict[str, Any]) -> dict[str, Any]:
    """The metric specs the data carries (by execution_metrics column), as MetricSpecs."""
    return {k: _spec_of(v) for k, v in (data.get("specs") or {}).items()}


def _side_names(ex: dict[str, Any], baseline: dict[str, Any] | None) -> tuple[str, str]:
    return (text((baseline or {}).get("execution_id") or "baseline"), text(ex.get("execution_id") or "candidate"))


def _values(baseline: dict[str, Any] | None, metrics: dict[str, Any], units: list[dict[str, Any]]
            ) -> dict[str, tuple[str, str]]:
    """Each metric's two values as the cards show them (compare's a and b with a baseline)."""
    out = {}
    deltas = {str(d.get("metric")): d for d in (baseline or {}).get("deltas") or []}
    for m in units:
        spec = _spec_of(m["spec"])
        d = deltas.get(spec.name)
        out[spec.name] = ((fmt(spec, d.get("a")), fmt(spec, d.get("b"))) if d
                          else ("", fmt(spec, metrics.get(spec.metric_column))))
    return out


def build_page(data: dict[str, Any], *, max_units: int = 500, max_details: int = 200) -> Page:
    """The view model of the whole page (see tasks.report.render for ``data``)."""
    ex = dict(data.get("execution") or {})
    baseline = data.get("baseline") or None
    specs = _specs(data)
    names = _side_names(ex, baseline)
    cand = Side.of(data.get("chats"), data.get("turns"), data.get("scores"))
    base = Side.of(baseline.get("chats"), baseline.get("turns"), baseline.get("scores")) if baseline else None
    production = {to_int(k) or 0: v for k, v in (data.get("production") or {}).items()}
    units = list(data.get("units") or [])
    ctx = _Context(cand, base, production, units, dict((baseline or {}).get("changes") or {}), names)
    rep = data.get("repeatability")
    table = build_table(ctx, set((rep or {}).get("flaky_rows") or []), max_units, max_details)
    banner = (baseline_banner(baseline, table.units, specs, (names[1], names[0])) if baseline
              else production_banner(data.get("vs_production") or {}, cand.chats, table.units, names[1]))
    return Page(
        title=page_title(ex), header=build_header(ex, baseline), banner=banner,
        kpis=build_kpis(dict(data.get("metrics") or {}), baseline, specs), repeatability=rep,
        deltas=[_delta_row(d, specs) for d in (baseline or {}).get("deltas") or []],
        verdicts=[str(v) for v in (baseline or {}).get("verdicts") or []][1:],
        distributions=build_distributions(units, baseline is not None,
                                          _values(baseline, dict(data.get("metrics") or {}), units)),
        table=table, legend=[source_badge({"source": s}) for s in SOURCE_HELP])


__all__ = ["SOURCE_HELP", "Banner", "Kpi", "Page", "UnitLine", "build_page", "count", "interest", "key_args",
           "number", "side_by_side", "unit_verdicts"]
