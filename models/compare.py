"""Contracts of the compare stage: an execution against a baseline execution. No I/O.

Field names are what ``replay compare A B --json`` prints (per metric: a, b, delta, ci,
significant, direction, n_units, n_rows, rows).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from models.common import Record
from models.evals import MetricSpec

Direction = Literal["improvement", "regression", "same"]


class UnitChange(Record):
    """One production conversation whose value moved by at least the metric's minimum effect
    (and more than its own noise, when repetitions measured it)."""

    origin_id: str
    rows: list[int]  # the scenario rows that replay it
    a: float
    b: float
    delta: float
    change: Literal["improvement", "regression"]
    # B's replays of this conversation against A's: the exact permutation test, significant at a
    # 5 % false discovery rate over the conversations (Benjamini-Hochberg). Needs repetitions (--repeat): one
    # replay a side can never be significant; 5 a side that all disagree can (p = 0.008)
    p_value: float | None = None
    significant: bool = False
    replays: tuple[int, int] = (1, 1)  # chats of the conversation in A and in B


class MetricComparison(Record):
    """B against A on one metric."""

    metric: str
    label: str
    unit: str
    higher_is_better: bool
    a: float | None  # A's value on the compared units (= execution_metrics when they are all of them)
    b: float | None
    delta: float | None  # b - a
    ci: tuple[float, float] | None  # 95 % interval of delta (cluster bootstrap over the units)
    p_value: float | None
    significant: bool  # CI excludes 0, |delta| >= min_effect, |delta| > noise_floor (when known)
    direction: Direction
    min_effect: float  # in unit, next to A's value
    noise_floor: float | None  # mean difference between two replays of one conversation; None: no repetition
    n_units: int  # production conversations compared (the independent unit)
    n_rows: int  # scenario rows they hold
    note: str | None = None  # why fewer units were compared (cost metrics: both sides completed)
    pass_k: tuple[float | None, float | None] | None = None  # (A, B) pass^k with repetitions
    rows: list[UnitChange] = Field(default_factory=list)


class ExecutionComparison(Record):
    """``replay compare B A``: execution B (the candidate) against A (the baseline)."""

    execution_id: str
    baseline: str
    against: Literal["execution"] = "execution"
    metrics: list[MetricComparison]
    significant_regressions: list[str]  # metric names
    significant_improvements: list[str]
    regressed_units: dict[str, list[str]]  # metric -> conversations that regressed significantly
    flaky_rows: list[int]  # rows whose repetitions disagree (quality metrics)
    specs: dict[str, MetricSpec] = Field(default_factory=dict)


__all__ = ["Direction", "ExecutionComparison", "MetricComparison", "UnitChange"]
