"""Metrics: an execution's scores -> one number per evaluator, computed one way, used everywhere.

Every surface — the ``execution_metrics`` row, ``replay run``'s output, ``replay compare``, the
report's cards and tables, the nightly summary — reads the numbers this module computes, with
the same rounding (4 decimals; each surface shows ``spec.digits`` of them).

How a number is made (each metric's :class:`models.evals.MetricSpec` says which rule applies):

1. **A chat's value.** ``pass_rate``: 100 x the share of the chat's scored items (its turns, or
   the chat itself) that passed; ``mean``: the mean of its values. Scores that are evaluator
   failures (``error`` set) or that say nothing (no production turn to compare: value and
   passed None) are left out; a chat with nothing scored has no value. A chat that FAILED gets
   the worst value on a ``quality`` metric (0 %, or the bottom of the scale: a crash is a failed
   task) and no value on a ``cost`` metric (latency, tokens, turns: a crash is not a saving).
2. **A unit's value.** The unit is the production conversation a chat replays (``origin_id``):
   the rows that repeat the same conversation and the repetitions of a row are the same unit,
   and its value is the mean of its chats' values.
3. **The execution's value.** The mean of its units' values: each production conversation
   weighs the same, however many rows or repetitions replay it. ``completion`` and ``failed``
   (derived from the chats, not from scores) are the share of CHATS completed / failed.

``pass^k`` (with repetitions): the share of units all of whose chats passed every item (a
pass-rate metric's chat value of 100), over the units with at least 2 chats.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from models.evals import EvalScore, MetricSpec
from tasks.evaluate.evaluators.base import infer_spec

# metrics of the chats themselves (not of an evaluator's scores)
COMPLETION = MetricSpec(name="completion", label="Completed chats", level="chat", aggregation="pass_rate", unit="%",
                        scale=(0.0, 100.0), min_effect=1.0, column="completion_pct", rank=0,
                        measures="share of the chats that ran to their end")
FAILED = MetricSpec(name="failed", label="Failed chats", level="chat", aggregation="pass_rate", unit="%",
                    scale=(0.0, 100.0), higher_is_better=False, min_effect=1.0, column="failed_pct", rank=1,
                    measures="share of the chats that failed (an agent error, a timeout, off-script)")
CHAT_METRICS = (COMPLETION, FAILED)
DIGITS = 4  # the one rounding of every stored and compared number


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        return None
    return float(x)


def _mean(xs: Sequence[float]) -> float | None:
    return math.fsum(xs) / len(xs) if xs else None


def rounded(x: float | None) -> float | None:
    return None if x is None else round(x, DIGITS)


# --------------------------------------------------------------------------- chats and units
def is_chat_metric(spec: MetricSpec) -> bool:
    """Whether the metric counts chats (completion, failed) rather than an evaluator's scores."""
    return spec.name in (COMPLETION.name, FAILED.name)


def chat_value(spec: MetricSpec, chat: Any, scores: Iterable[EvalScore]) -> float | None:
    """One chat's value of a metric (module doc, rule 1); ``scores``: the chat's scores of it."""
    failed = _get(chat, "status") == "failed"
    if is_chat_metric(spec):
        completed = _get(chat, "status") == "completed"
        return 100.0 if completed == (spec.name == COMPLETION.name) else 0.0
    if failed:
        return spec.worst() if spec.kind == "quality" else None
    usable = [s for s in scores if s.error is None]
    if spec.aggregation == "pass_rate":
        flags = [s.passed for s in usable if s.passed is not None]
        return 100.0 * sum(flags) / len(flags) if flags else None
    return _mean([v for v in (_num(s.value) for s in usable) if v is not None])


@dataclass(frozen=True)
class Unit:
    """One production conversation's part of a metric: the values of the chats that replayed it."""

    origin_id: str
    rows: tuple[int, ...]
    values: tuple[float, ...]  # its chats' values (chats without one left out)
    complete: bool  # every chat of the unit completed

    @property
    def value(self) -> float | None:
        return _mean(self.values)


@dataclass(frozen=True)
class Metric:
    """A metric of one execution: its spec and its units (module doc)."""

    spec: MetricSpec
    units: dict[str, Unit] = field(default_factory=dict)

    def comparable(self) -> list[str]:
        """The units a comparison may use: all units with a value; for a cost metric only the
        units whose chats all completed."""
        return sorted(u.origin_id for u in self.units.values()
                      if u.value is not None and (self.spec.kind != "cost" or u.complete))

    def statistic(self, origin_ids: Sequence[str]) -> float | None:
        """The metric over these units (repeats allowed: the bootstrap resamples them)."""
        if is_chat_metric(self.spec):  # share of chats: pooled over the chats of the units
            values = [v for o in origin_ids for v in self.units[o].values]
            return _mean(values)
        return _mean([v for v in (self.units[o].value for o in origin_ids) if v is not None])

    @property
    def value(self) -> float | None:
        """The execution's value (module doc, rule 3), rounded."""
        return rounded(self.statistic([o for o, u in self.units.items() if u.value is not None]))

    @property
    def pass_k(self) -> float | None:
        """pass^k: the share of units (with >= 2 chats) whose every chat passed every item."""
        if self.spec.aggregation != "pass_rate" or is_chat_metric(self.spec):
            return None
        multi = [u for u in self.units.values() if len(u.values) >= 2]
        if not multi:
            return None
        best = 100.0 if self.spec.higher_is_better else 0.0
        return rounded(100.0 * sum(all(v == best for v in u.values) for u in multi) / len(multi))


def metrics(chats: Iterable[Any], scores: Iterable[EvalScore], specs: Iterable[MetricSpec]) -> dict[str, Metric]:
    """Every metric of an execution: the chat metrics and one per spec (by name)."""
    chats = list(chats)
    by_key: dict[tuple[str, str], list[EvalScore]] = defaultdict(list)
    for s in scores:
        by_key[(s.evaluator, s.chat_id)].append(s)
    out: dict[str, Metric] = {}
    for spec in (*CHAT_METRICS, *specs):
        acc: dict[str, dict[str, Any]] = {}
        for c in chats:
            origin = str(_get(c, "origin_id"))
            unit = acc.setdefault(origin, {"rows": set(), "values": [], "complete": True})
            unit["rows"].add(int(_get(c, "row_index") or 0))
            unit["complete"] &= _get(c, "status") == "completed"
            v = chat_value(spec, c, by_key.get((spec.name, str(_get(c, "chat_id"))), ()))
            if v is not None:
                unit["values"].append(v)
        out[spec.name] = Metric(spec, {o: Unit(o, tuple(sorted(u["rows"])), tuple(u["values"]), u["complete"])
                                       for o, u in sorted(acc.items())})
    return out


# --------------------------------------------------------------------------- the catalog row
def execution_metrics(execution_id: str, chats: Iterable[Any], scores: Iterable[EvalScore],
                      specs: Iterable[MetricSpec]) -> dict[str, Any]:
    """The ``execution_metrics`` row: the chat counts, then each metric's value in its column
    (and ``passk_<name>`` when repetitions give one)."""
    chats = [c for c in chats if _get(c, "execution_id") in (None, execution_id)]
    scores = [s for s in scores if s.execution_id in ("", execution_id)]
    row: dict[str, Any] = {"execution_id": execution_id, "total_chats": len(chats),
                           "completed_chats": sum(1 for c in chats if _get(c, "status") == "completed")}
    for m in metrics(chats, scores, specs).values():
        row[m.spec.metric_column] = m.value
        if m.pass_k is not None:
            row["passk_" + m.spec.metric_column.removeprefix("avg_")] = m.pass_k
    return row


def format_value(spec: MetricSpec, value: float | None, *, unit: bool = True, sign: bool = False) -> str:
    """How every surface writes a metric's value: ``spec.digits`` decimals, its unit."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if round(value, spec.digits) == 0:
        value = 0.0  # no "-0": a change smaller than the last digit shown is none
    text = format(value, ("+" if sign else "") + f".{spec.digits}f")
    if not unit or not spec.unit:
        return text
    return text + spec.unit if spec.unit in ("%", "/10") else f"{text} {spec.unit}"


def builtin_specs() -> dict[str, MetricSpec]:
    """The specs of the chat metrics and the built-in evaluators, by execution_metrics column."""
    from tasks.evaluate.evaluators import BUILTINS

    return {s.metric_column: s for s in (*CHAT_METRICS, *(c.spec for c in BUILTINS.values()))}


def described(row: Mapping[str, Any], specs: Mapping[str, MetricSpec] | None = None) -> list[tuple[MetricSpec, Any]]:
    """The metrics of an execution_metrics row, with their specs, in rank order (columns with no
    known spec: a plain mean, by name)."""
    specs = dict(specs or builtin_specs())
    out = []
    for col, value in row.items():
        if col in specs:
            out.append((specs[col], value))
        elif col.startswith("avg_"):
            out.append((MetricSpec(name=col[4:], label=col[4:], rank=1000, digits=2), value))
    return sorted(out, key=lambda sv: (sv[0].rank, sv[0].name))


def eval_errors(scores: Iterable[EvalScore]) -> int:
    """How many score rows are evaluator failures (``error`` set)."""
    return sum(1 for s in scores if s.error is not None)


__all__ = ["CHAT_METRICS", "COMPLETION", "DIGITS", "FAILED", "Metric", "Unit", "builtin_specs", "chat_value",
           "described", "eval_errors", "format_value",
           "execution_metrics", "infer_spec", "is_chat_metric", "metrics", "rounded"]
