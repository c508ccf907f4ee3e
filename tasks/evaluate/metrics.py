"""Execution metrics: one row of ``execution_metrics`` from an execution's chats and its
``eval_scores``. Pure: no I/O.

Chat columns (over the execution's chats, failed ones included):

- ``total_chats``; ``completed_chats`` (status ``completed``); ``completion_pct`` =
  100 * completed / total, rounded to 1 decimal (None when there are no chats);
- ``avg_output_tokens``, ``avg_turn_count``: the mean over all chats;
- ``avg_chat_latency_ms``: the mean of the chats' ``avg_latency_ms`` (chats without one,
  e.g. no turn ran, are left out);
- ``avg_csat``: the mean ``value`` of the ``csat`` scores (1..10).

Only the contract's columns and ``avg_*`` ones are returned (the catalog adds a DOUBLE column
per new ``avg_*`` key); :func:`eval_errors` counts the failure rows for a summary.

One ``avg_<evaluator>`` column per evaluator present in the scores (the name with every
character outside ``[a-z0-9_]`` turned into ``_``, lower-cased); the chat columns above win a
name clash. Scores with ``error`` set or ``value`` None (e.g. "no production answer to
compare") are left out; a turn-level evaluator is averaged over its turns (each scored turn
counts once). By :func:`metric_kind`:

- ``percent`` (ground_truth_match, tool_call_match, task_completion: 0..1 scores):
  mean(value) * 100, i.e. 0..100;
- ``mean`` (csat 1..10, and the metrics latency, input_tokens, output_tokens, turn_count, or
  any evaluator whose scores have source ``metric``): the plain mean, in its own unit;
- ``pass_rate`` (any other evaluator with at least one score whose ``passed`` is set):
  mean(passed) * 100 over the scores with ``passed`` set, i.e. 0..100;
- otherwise (a custom score without pass/fail): mean(value), times 100 when every value is
  within 0..1.

Every average is rounded to 4 decimals; no scores for a column -> None (never a division by
zero). :func:`chat_values` / :func:`row_values` give the same per-chat numbers per row, for
:mod:`tasks.stats` (``replay compare``).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from models.evals import EvalScore

PERCENT_EVALUATORS = frozenset({"ground_truth_match", "tool_call_match", "task_completion"})
MEAN_EVALUATORS = frozenset({"csat", "latency", "input_tokens", "output_tokens", "turn_count"})
Kind = Literal["percent", "mean", "pass_rate", "custom"]
BASE_COLUMNS = ("execution_id", "total_chats", "completed_chats", "completion_pct",
                "avg_output_tokens", "avg_chat_latency_ms", "avg_turn_count", "avg_csat")


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        return None
    return float(x)


def _mean(values: Iterable[Any]) -> float | None:
    xs = [v for v in (_num(x) for x in values) if v is not None]
    return round(sum(xs) / len(xs), 4) if xs else None


def column_name(evaluator: str) -> str:
    """``avg_<evaluator>``, the name made SQL-safe: lower case, ``[a-z0-9_]`` only."""
    return "avg_" + re.sub(r"[^a-z0-9_]", "_", str(evaluator).lower())


def _usable(scores: Iterable[EvalScore]) -> list[EvalScore]:
    return [s for s in scores if s.error is None]


def metric_kind(evaluator: str, scores: Iterable[EvalScore]) -> Kind:
    """How an evaluator's scores are averaged (see the module doc)."""
    scores = list(scores)
    if evaluator in PERCENT_EVALUATORS:
        return "percent"
    if evaluator in MEAN_EVALUATORS or (scores and all(s.source == "metric" for s in scores)):
        return "mean"
    if any(s.passed is not None for s in _usable(scores)):
        return "pass_rate"
    return "custom"


def _scale(kind: Kind, scores: list[EvalScore]) -> float:
    if kind == "percent":
        return 100.0
    if kind == "custom":
        values = [v for v in (_num(s.value) for s in _usable(scores)) if v is not None]
        return 100.0 if values and all(0.0 <= v <= 1.0 for v in values) else 1.0
    return 1.0


def _average(kind: Kind, scale: float, scores: Iterable[EvalScore]) -> float | None:
    ok = _usable(scores)
    if kind == "pass_rate":
        flags = [s.passed for s in ok if s.passed is not None]
        return round(100.0 * sum(flags) / len(flags), 4) if flags else None
    values = [v for v in (_num(s.value) for s in ok) if v is not None]
    return round(scale * sum(values) / len(values), 4) if values else None


def aggregate(evaluator: str, scores: Iterable[EvalScore]) -> float | None:
    """One evaluator's average by its kind (see the module doc); None without usable scores."""
    scores = list(scores)
    kind = metric_kind(evaluator, scores)
    return _average(kind, _scale(kind, scores), scores)


def execution_metrics(execution_id: str, chats: list[dict[str, Any]],
                      scores: list[EvalScore]) -> dict[str, Any]:
    """The ``execution_metrics`` row of one execution (see the module doc). Chats and scores
    of other executions (when they carry an execution_id) are ignored."""
    chats = [c for c in chats if _get(c, "execution_id") in (None, execution_id)]
    scores = [s for s in scores if s.execution_id in ("", execution_id)]
    total = len(chats)
    completed = sum(1 for c in chats if _get(c, "status") == "completed")
    by_eval: dict[str, list[EvalScore]] = defaultdict(list)
    for s in scores:
        by_eval[s.evaluator].append(s)
    out: dict[str, Any] = {
        "execution_id": execution_id,
        "total_chats": total,
        "completed_chats": completed,
        "completion_pct": round(100.0 * completed / total, 1) if total else None,
        "avg_output_tokens": _mean(_get(c, "output_tokens") for c in chats),
        "avg_chat_latency_ms": _mean(_get(c, "avg_latency_ms") for c in chats),
        "avg_turn_count": _mean(_get(c, "turn_count") for c in chats),
        "avg_csat": _mean(s.value for s in _usable(by_eval.get("csat", []))),
    }
    for name in sorted(by_eval):
        col = column_name(name)
        if col not in out:
            out[col] = aggregate(name, by_eval[name])
    return out


def eval_errors(scores: Iterable[EvalScore]) -> int:
    """How many score rows are evaluator failures (``error`` set)."""
    return sum(1 for s in scores if s.error is not None)


def chat_values(scores: Iterable[EvalScore], evaluator: str) -> dict[str, float]:
    """chat_id -> that chat's number for ``evaluator``, on the same scale as its
    ``avg_<evaluator>`` column (the kind and scale are decided on all the evaluator's scores;
    a turn-level evaluator gives the mean over the chat's scored turns). Chats with no usable
    score are absent."""
    mine = [s for s in scores if s.evaluator == evaluator]
    kind = metric_kind(evaluator, mine)
    scale = _scale(kind, mine)
    by_chat: dict[str, list[EvalScore]] = defaultdict(list)
    for s in mine:
        by_chat[s.chat_id].append(s)
    out: dict[str, float] = {}
    for cid, ss in by_chat.items():
        v = _average(kind, scale, ss)
        if v is not None:
            out[cid] = v
    return out


def row_values(chats: Iterable[Any], scores: Iterable[EvalScore], evaluator: str
               ) -> dict[int, list[float]]:
    """row_index -> the per-chat numbers of its repetitions (ordered by repetition), for
    :func:`tasks.stats.compare_metric`, :func:`tasks.stats.noise_floor` and
    :func:`tasks.stats.flaky_rows`. A chat without a usable score is left out."""
    values = chat_values(list(scores), evaluator)
    rows: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for c in chats:
        cid = _get(c, "chat_id")
        if cid in values:
            rows[_get(c, "row_index")].append((_get(c, "repetition") or 0, values[cid]))
    return {r: [v for _, v in sorted(vs, key=lambda x: x[0])] for r, vs in sorted(rows.items())}


__all__ = ["BASE_COLUMNS", "MEAN_EVALUATORS", "PERCENT_EVALUATORS", "aggregate", "chat_values",
           "column_name", "eval_errors", "execution_metrics", "metric_kind", "row_values"]
