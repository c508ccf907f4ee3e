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

from models.evals import EvalScore, EvaluationPlan, MetricSpec
from models.settings import Settings
from models.simulate import ExecutionInfo
from tasks.common.clock import now
from tasks.common.errors import ReplayError
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
    """Replace the execution's scores with one atomic part (a score kept from an earlier
    evaluation keeps its ``evaluated_at``)."""
    at = now()
    d = lake.table_dir(lake_dir, "eval_scores") / f"exec={execution_id}"
    old = sorted(d.glob("*.parquet")) if d.is_dir() else []
    table = pa.Table.from_pylist([{**s.model_dump(), "detail": json_text(s.detail), "evaluated_at": s.evaluated_at or at}
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


def load_evaluators(settings, evaluator_refs: list[str] | None, only: str | None = None) -> list[Any]:
    """The built-ins and the custom ``module:Class`` evaluators (user code: imported before any
    lock is taken); with ``only``, the one of them it names (its name or its ref)."""
    from tasks.evaluate import evaluators as ev

    evals = ev.default_evaluators(settings) + [ev.load_evaluator(r) for r in evaluator_refs or []]
    if only is None:
        return evals
    chosen = [e for e in evals if only in (e.name, getattr(e, "ref", None))]
    if not chosen:
        raise EvaluateError(f"--only {only}: no such evaluator here; the evaluators are "
                            f"{', '.join(e.name for e in evals)} (a custom one also needs its --evaluator module:Class "
                            "unless the execution was scored with it)")
    return chosen[:1]


class EvaluateError(ReplayError):
    """An evaluation that cannot be done as asked (one line)."""


def plan_evaluation(con, execution_id: str, evaluator_refs: list[str] | None = None,
                    only: str | None = None) -> EvaluationPlan:
    """What an evaluation of ``execution_id`` runs and keeps:

    - ``evaluator_refs`` None: the custom evaluators the execution was last scored with (recorded
      on it), with the built-ins; a list: those instead (and they are recorded);
    - ``only``: that one evaluator re-runs, every other evaluator's scores are kept as they are;
    - an execution scored before the evaluators were recorded keeps the scores of its custom
      evaluators (they cannot be re-run without their module:Class), and the note says so."""
    from tasks import simulate
    from tasks.evaluate.evaluators import BUILTINS

    ex = simulate.load_execution(con, execution_id)
    recorded = catalog.one(con, "get_execution", {"execution_id": execution_id})["evaluator_refs"]
    scored = [r["evaluator"] for r in catalog.rows(con, "execution_evaluators", {"execution_id": execution_id})]
    refs = list(evaluator_refs) if evaluator_refs is not None else list(recorded or [])
    plan = EvaluationPlan(refs=refs, recorded=evaluator_refs is None and recorded is not None, only=only)
    if only is not None:
        plan.keep = [n for n in scored if n != only]
    elif evaluator_refs is None and recorded is None:
        plan.keep = [n for n in scored if n not in BUILTINS]
        if plan.keep:
            plan.note = (f"kept the scores of {', '.join(plan.keep)} as they are: {ex.execution_id} was scored "
                         "before Replay recorded the custom evaluators it used; --evaluator module:Class re-runs them")
    return plan


def kept_scores(con, execution_id: str, keep: Iterable[str]) -> list[EvalScore]:
    """The stored scores of the evaluators in ``keep``, as they are."""
    keep = set(keep)
    return [EvalScore(execution_id=execution_id, **{**r, "detail": orjson.loads(r["detail"]) if r["detail"] else None})
            for r in catalog.rows(con, "execution_score_rows", {"execution_id": execution_id})
            if r["evaluator"] in keep]


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


def store(con, settings, s: Scoring, scores: list[EvalScore], plan: EvaluationPlan | None = None) -> dict[str, Any]:
    """Store the scores (with those ``plan`` keeps), the evaluators' specs, the metrics row and
    which custom evaluators scored the execution; returns the metrics row."""
    from tasks.evaluate import evaluators as ev
    from tasks.evaluate.metrics import execution_metrics

    plan = plan or EvaluationPlan()
    kept = kept_scores(con, s.execution_id, set(plan.keep) - {e.name for e in s.evals})
    write_scores(settings.lake_dir, s.execution_id, kept + scores)
    catalog.refresh_views(con, settings.lake_dir)
    specs = [ev.spec_of(e, [x for x in scores if x.evaluator == e.name]) for e in s.evals]
    save_specs(con, s.evals, specs)
    specs += load_specs(con, sorted({k.evaluator for k in kept})).values()
    metrics = execution_metrics(s.execution_id, s.chats, kept + scores, specs)
    store_metrics(con, metrics)
    if plan.only is None:  # the custom evaluators of a whole evaluation: what the next one re-runs
        con.execute(catalog.sql("set_evaluator_refs"), {"execution_id": s.execution_id, "evaluator_refs": plan.refs})
    return metrics


def evaluate(con, settings, execution_id: str, evaluator_refs: list[str] | None = None,
             only: str | None = None) -> dict[str, Any]:
    """Score every chat and turn of an execution on ``con`` (:func:`plan_evaluation` says with
    which evaluators); store the scores, the evaluators' specs and the metrics row; returns the
    metrics row. (:func:`evaluate_step` does the same without holding the catalog while the
    evaluators run.)"""
    plan = plan_evaluation(con, execution_id, evaluator_refs, only)
    s = Scoring(con, settings, execution_id, load_evaluators(settings, plan.refs, only))
    return store(con, settings, s, score(settings, s), plan)


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
def evaluate_step(settings: Settings, execution_id: str, evaluator_refs: list[str] | None = None,
                  only: str | None = None) -> dict[str, Any]:
    """Score an execution (:func:`plan_evaluation`: by default with the evaluators it was last
    scored with); returns its metrics row. The writer lock is held only to read the execution
    and then to store its scores, never while the evaluators (user code) run."""
    with catalog.reader(settings) as con:
        plan = plan_evaluation(con, execution_id, evaluator_refs, only)
    evals = load_evaluators(settings, plan.refs, only)
    with catalog.writer(settings) as con:
        s = Scoring(con, settings, execution_id, evals)
    scores = score(settings, s)
    with catalog.writer(settings) as con:
        return store(con, settings, s, scores, plan)


def run_evaluation(settings: Settings, execution_id: str, evaluator_refs: list[str] | None = None,
                   runner: Runner = IN_PROCESS, only: str | None = None) -> dict[str, Any]:
    """Score an execution (``eval_scores``, ``execution_metrics``) and publish its metrics
    (Prefect artifacts ``metrics-<execution>`` and ``metrics-<execution>-summary``).
    ``evaluator_refs`` None: the custom evaluators it was last scored with; ``only``: re-run that
    evaluator alone, keeping the other scores (:func:`plan_evaluation`)."""
    metrics = runner.step(evaluate_step, name="evaluate", retries=1)(settings, execution_id, evaluator_refs, only)
    runner.publish(f"metrics-{execution_id}", table=[{"metric": k, "value": v} for k, v in metrics.items()],
                   markdown=metrics_markdown(metrics), description=f"execution_metrics of {execution_id}")
    return metrics


async def run_and_score(settings: Settings, execution_id: str, runner: Runner = IN_PROCESS,
                        evaluator_refs: list[str] | None = None, progress: bool = False,
                        budget=None) -> ExecutionInfo:
    """An execution's remaining chats run (:func:`tasks.simulate.run_execution`), then scored
    (:func:`run_evaluation`; ``evaluator_refs`` None: with the custom evaluators it was last
    scored with): what ``replay run``, ``replay runs resume``, the simulate flow, the nightly
    flow and the demo do."""
    from tasks.simulate import run_execution

    info = await run_execution(settings, execution_id, runner, progress, budget=budget)
    return info.scored(run_evaluation(settings, execution_id, evaluator_refs, runner))
