"""Evaluate: score an execution's chats and publish its metrics.

The stage reads the execution's chats, turns and scenario rows, runs the evaluators
(``tasks.evaluators``: built-ins and custom ``module:Class``), writes the long ``eval_scores``
table (one Parquet part per execution, replaced atomically: evaluating twice gives the same
rows) and upserts the execution's row of ``execution_metrics`` (one ``avg_<evaluator>`` column
per evaluator, added when first met). An evaluator failing on a chat is a failure row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import orjson
import pyarrow as pa

from models.evals import EvalScore, MetricSpec
from models.settings import Settings
from models.simulate import ExecutionInfo
from tasks.common.clock import now
from tasks.common.runner import IN_PROCESS, Runner
from tasks.common.text import json_text
from tasks.store import catalog, lake

_COLUMN = re.compile(r"^(avg|passk)_[a-z0-9_]+$")


TEXTS = ("user_message", "assistant_message", "original_assistant_message")
MAX_CHARS = Settings.model_fields["eval_text_chars"].default


def load_execution_data(con, execution_id: str, max_chars: int = MAX_CHARS
                        ) -> tuple[dict, list[dict], dict[str, list[dict]], dict[int, Any]]:
    """(execution, chats, turns by chat id, scenario rows by row index). A turn's texts are cut
    to ``max_chars`` characters; a turn with a longer one has ``truncated``: {text: full length}."""
    from tasks import scenario, simulate

    ex = simulate.load_execution(con, execution_id)
    chats = catalog.rows(con, "execution_chats", {"execution_id": execution_id})
    turns_by_chat: dict[str, list[dict]] = {}
    for t in catalog.rows(con, "execution_turns", {"execution_id": execution_id, "max_chars": max_chars}):
        t["tool_calls"] = orjson.loads(t["tool_calls"]) if t["tool_calls"] else []
        t["original_tool_calls"] = orjson.loads(t["original_tool_calls"]) if t["original_tool_calls"] else []
        lengths = {k: t.pop(f"{k}_chars") for k in TEXTS}
        cut = {k: n for k, n in lengths.items() if n is not None and n > max_chars}
        if cut:
            t["truncated"] = cut
        turns_by_chat.setdefault(t["chat_id"], []).append(t)
    try:
        _sc, rows, _agent = scenario.get_scenario(con, ex["scenario_id"])
        rows_by_index = {r.row_index: r for r in rows}
    except scenario.ScenarioError:
        rows_by_index = {}  # the scenario is gone: evaluators see no production answers
    return ex, chats, turns_by_chat, rows_by_index


def write_scores(lake_dir, execution_id: str, scores: list[EvalScore]) -> None:
    """Replace the execution's scores with one atomic part."""
    at = now()
    d = lake.table_dir(lake_dir, "eval_scores") / f"exec={execution_id}"
    old = sorted(d.glob("*.parquet")) if d.is_dir() else []
    table = pa.Table.from_pylist([{**s.model_dump(), "detail": json_text(s.detail), "evaluated_at": at}
                                  for s in scores], schema=lake.EVAL_SCORES)
    lake.write_atomic(table, d / f"scores-{int(at.timestamp() * 1e6)}.parquet")
    for f in old:
        f.unlink(missing_ok=True)


def store_metrics(con, metrics: dict[str, Any]) -> None:
    """Upsert one execution's metrics row; a new avg_<evaluator> becomes a new column."""
    existing = {r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() "
                                          "WHERE table_name = 'execution_metrics'").fetchall()}
    for key in metrics:
        if key not in existing:
            if not _COLUMN.match(key):
                raise ValueError(f"metric name {key!r} is not a valid column (avg_ or passk_ + lowercase letters, "
                                 "digits, _)")
            con.execute(f"ALTER TABLE execution_metrics ADD COLUMN {key} DOUBLE")  # name checked above
    row = {**metrics, "evaluated_at": now()}
    cols = list(row)
    con.execute("DELETE FROM execution_metrics WHERE execution_id = $execution_id",
                {"execution_id": metrics["execution_id"]})
    con.execute(f"INSERT INTO execution_metrics ({', '.join(cols)}) VALUES ({', '.join('$' + c for c in cols)})",
                row)


class Scoring:
    """What scoring an execution needs, read from the catalog: its chats, turns and scenario
    rows, and the evaluators (built-in and custom)."""

    def __init__(self, con, settings, execution_id: str, evals: list[Any]) -> None:
        self.execution_id, self.evals = execution_id, evals
        ex, self.chats, self.turns_by_chat, self.rows_by_index = load_execution_data(
            con, execution_id, getattr(settings, "eval_text_chars", MAX_CHARS))
        self.context = {"tool_match": ex.options.tool_match, "tool_descriptions": tool_descriptions(con, ex)}


def load_evaluators(settings, evaluator_refs: list[str] | None) -> list[Any]:
    """The built-ins and the custom ``module:Class`` evaluators (user code: imported before any
    lock is taken)."""
    from tasks.evaluate import evaluators as ev

    return ev.default_evaluators(settings) + [ev.load_evaluator(r) for r in evaluator_refs or []]


def needs_model(evaluator: Any) -> bool:
    """Whether an evaluator is an LLM judge that cannot work without a model: it says so
    (``needs_model = True``) or is a judge in mode ``"llm"``."""
    inner = getattr(evaluator, "inner", evaluator)  # a custom evaluator's own object
    return bool(getattr(inner, "needs_model", False)) or getattr(inner, "mode", None) == "llm"


def check_evaluators(settings, evaluator_refs: list[str] | None) -> None:
    """Before a run writes anything: every custom ``module:Class`` evaluator loads, and a model
    is configured for those that are LLM judges (:func:`needs_model`). One-line
    ``EvaluatorLoadError``."""
    from tasks.evaluate import evaluators as ev
    from tasks.evaluate.evaluators.judge import judge_model

    loaded = [(ref, ev.load_evaluator(ref)) for ref in evaluator_refs or []]
    try:
        judges = [ref for ref, e in loaded if needs_model(e)]
        if judges and judge_model(settings) is None:
            raise ev.EvaluatorLoadError(f"evaluator {judges[0]} is an LLM judge and needs a model: set "
                                        "REPLAY_LLM_BASE_URL and REPLAY_LLM_MODEL, or leave it out")
    finally:
        for _ref, e in loaded:
            e.close()


def score(settings, s: Scoring) -> list[EvalScore]:
    """Run the evaluators (no catalog: user code, each under ``settings.evaluator_timeout_s``
    per chat). A score of a turn (or a chat) whose texts were cut says so in its detail."""
    from tasks.evaluate import evaluators as ev

    scores = ev.run_evaluators(s.evals, s.chats, s.turns_by_chat, s.rows_by_index, settings, context=s.context,
                               timeout_s=getattr(settings, "evaluator_timeout_s", None))
    cut = {(t["chat_id"], t["turn_index"]): t["truncated"] for ts in s.turns_by_chat.values() for t in ts
           if t.get("truncated")}
    limit = getattr(settings, "eval_text_chars", MAX_CHARS)
    for sc in scores:
        sc.execution_id = s.execution_id
        note = truncation_note(sc, cut, limit)
        if note:
            sc.detail = {**(sc.detail or {}), "truncated": note}
    return scores


def truncation_note(sc: EvalScore, cut: dict[tuple[str, int], dict[str, int]], limit: int) -> str | None:
    """What the evaluator did not read of a score's turn (its chat's turns, for a chat score)."""
    turns = ([(sc.turn_index, cut[(sc.chat_id, sc.turn_index)])] if (sc.chat_id, sc.turn_index) in cut
             else sorted((i, c) for (chat, i), c in cut.items() if chat == sc.chat_id) if sc.turn_index is None
             else [])
    if not turns:
        return None
    parts = [f"turn {i} {k} ({n:,} chars)" for i, c in turns for k, n in c.items()]
    return f"judged on the first {limit:,} characters of: " + ", ".join(parts)


def store(con, settings, s: Scoring, scores: list[EvalScore]) -> dict[str, Any]:
    """Store the scores, the evaluators' specs and the metrics row; returns the metrics row."""
    from tasks.evaluate import evaluators as ev
    from tasks.evaluate.metrics import execution_metrics

    write_scores(settings.lake_dir, s.execution_id, scores)
    catalog.refresh_views(con, settings.lake_dir)
    specs = [ev.spec_of(e, [x for x in scores if x.evaluator == e.name]) for e in s.evals]
    save_specs(con, s.evals, specs)
    metrics = execution_metrics(s.execution_id, s.chats, scores, specs)
    store_metrics(con, metrics)
    return metrics


def evaluate(con, settings, execution_id: str, evaluator_refs: list[str] | None = None) -> dict[str, Any]:
    """Score every chat and turn of an execution on ``con``; store the scores, the evaluators'
    specs and the metrics row; returns the metrics row. (:func:`evaluate_step` does the same
    without holding the catalog while the evaluators run.)"""
    s = Scoring(con, settings, execution_id, load_evaluators(settings, evaluator_refs))
    return store(con, settings, s, score(settings, s))


def tool_descriptions(con, ex: Any) -> dict[str, str]:
    """The agent definition's tools of an execution's scenario: name -> description."""
    from tasks import scenario

    try:
        _sc, _rows, agent = scenario.get_scenario(con, ex.scenario_id)
    except scenario.ScenarioError:
        return {}
    out = {}
    for t in agent.tools or []:
        fn = t.get("function", t) if isinstance(t, dict) else {}
        if isinstance(fn, dict) and fn.get("name"):
            out[str(fn["name"])] = str(fn.get("description") or "")
    return out


def save_specs(con, evals: list[Any], specs: list[MetricSpec]) -> None:
    """Each evaluator's spec, kept in the catalog for every later reader (compare, report)."""
    at = now()
    for e, spec in zip(evals, specs, strict=True):
        con.execute(catalog.sql("upsert_evaluator"), {"name": spec.name, "version": str(e.version),
                                                       "spec": spec.model_dump_json(), "updated_at": at})


def load_specs(con, names: Iterable[str]) -> dict[str, MetricSpec]:
    """The specs of these evaluators: as the catalog keeps them, else the built-in's, else
    inferred from nothing (a mean)."""
    from tasks.evaluate.evaluators import BUILTINS

    kept = {r["name"]: MetricSpec.model_validate_json(r["spec"]) for r in catalog.rows(con, "evaluator_specs")}
    out = {}
    for n in names:
        if n in kept:
            out[n] = kept[n]
        elif n in BUILTINS:
            out[n] = BUILTINS[n].spec
        else:
            out[n] = MetricSpec(name=n, label=n, rank=1000)
    return out


def metrics_markdown(metrics: dict[str, Any]) -> str:
    """The markdown summary published as a Prefect artifact."""
    lines = [f"# Execution {metrics['execution_id']}", "",
             f"{metrics.get('completed_chats', 0)}/{metrics.get('total_chats', 0)} chats completed "
             f"({metrics.get('completion_pct')}%)", "", "| metric | value |", "|---|---:|"]
    for k, v in metrics.items():
        if k != "execution_id":
            lines.append(f"| {k} | {'' if v is None else (round(v, 2) if isinstance(v, float) else v)} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the composition
def evaluate_step(settings: Settings, execution_id: str, evaluator_refs: list[str] | None = None) -> dict[str, Any]:
    """Score an execution; returns its metrics row. The writer lock is held only to read the
    execution and then to store its scores, never while the evaluators (user code) run."""
    evals = load_evaluators(settings, evaluator_refs)
    with catalog.writer(settings) as con:
        s = Scoring(con, settings, execution_id, evals)
    scores = score(settings, s)
    with catalog.writer(settings) as con:
        return store(con, settings, s, scores)


def run_evaluation(settings: Settings, execution_id: str, evaluator_refs: list[str] | None = None,
                   runner: Runner = IN_PROCESS) -> dict[str, Any]:
    """Score an execution (``eval_scores``, ``execution_metrics``) and publish its metrics
    (Prefect artifacts ``metrics-<execution>`` and ``metrics-<execution>-summary``)."""
    metrics = runner.step(evaluate_step, name="evaluate", retries=1)(settings, execution_id, evaluator_refs)
    runner.publish(f"metrics-{execution_id}", table=[{"metric": k, "value": v} for k, v in metrics.items()],
                   markdown=metrics_markdown(metrics), description=f"execution_metrics of {execution_id}")
    return metrics


async def run_and_score(settings: Settings, execution_id: str, runner: Runner = IN_PROCESS,
                        evaluator_refs: list[str] | None = None, progress: bool = False) -> ExecutionInfo:
    """An execution's remaining chats run (:func:`tasks.simulate.run_execution`), then scored
    (:func:`run_evaluation`): what ``replay run``, ``replay runs resume``, the simulate flow,
    the nightly flow and the demo do."""
    from tasks.simulate import run_execution

    info = await run_execution(settings, execution_id, runner, progress)
    return info.scored(run_evaluation(settings, execution_id, evaluator_refs, runner))
