"""Running evaluators over an execution's chats: errors are rows, never crashes."""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from models.evals import EvalContext, EvalResult, EvalScore, MetricSpec
from models.scenario import ScenarioRow
from tasks.common.text import error_text
from tasks.common.usercode import run_each, user_exit
from tasks.evaluate.evaluators.base import BUILTINS, call_list, infer_spec
from tasks.evaluate.evaluators.custom import coerce_result, load_evaluator

log = logging.getLogger("replay.evaluators")


def spec_of(evaluator: Any, scores: Sequence[EvalScore]) -> MetricSpec:
    """An evaluator's spec: a built-in's own; a custom one's as it declares it (a ``spec``
    attribute: a MetricSpec or a dict of its fields), the rest inferred from its scores."""
    spec = getattr(evaluator, "spec", None)
    if isinstance(spec, MetricSpec) and spec.name == evaluator.name:
        return spec
    declared = spec.model_dump(exclude_unset=True) if isinstance(spec, MetricSpec) else dict(spec or {})
    declared.pop("name", None)
    declared.pop("level", None)
    return infer_spec(str(evaluator.name), str(getattr(evaluator, "level", None) or "chat"), scores, declared)


def default_evaluators(settings: Any = None) -> list[Any]:
    """The built-ins (every registered :class:`Evaluator`, by rank, as the settings configure
    them), then the custom ones ``settings.evaluators`` names (``module:Class`` refs, when the
    settings have such a list)."""
    evs: list[Any] = [cls.from_settings(settings) for cls in sorted(BUILTINS.values(), key=lambda c: (c.spec.rank, c.spec.name))]
    for ref in getattr(settings, "evaluators", None) or []:
        evs.append(load_evaluator(ref))
    return evs


# --------------------------------------------------------------------------- running


def _as_dict(obj: Any) -> dict[str, Any]:
    if hasattr(obj, "model_dump"):
        return obj.model_dump()
    return dict(obj)


def _prepare_turns(turns: Iterable[Any]) -> list[dict[str, Any]]:
    out = []
    for t in turns or []:
        d = _as_dict(t)
        d["tool_calls"] = [_as_dict(c) if hasattr(c, "model_dump") else c
                           for c in call_list(d.get("tool_calls"))]
        d["original_tool_calls"] = [_as_dict(c) if hasattr(c, "model_dump") else c
                                    for c in call_list(d.get("original_tool_calls"))]
        out.append(d)
    out.sort(key=lambda d: d["turn_index"])
    return out


def _row(rows_by_index: Mapping[Any, Any] | None, chat: Mapping[str, Any]) -> ScenarioRow | None:
    if not rows_by_index:
        return None
    r = rows_by_index.get(chat.get("row_index"))
    if r is None:
        r = rows_by_index.get((chat.get("scenario_id"), chat.get("row_index")))
    if r is None or isinstance(r, ScenarioRow):
        return r
    return ScenarioRow.model_validate(r)


def _score(ev: Any, chat: Mapping[str, Any], turn_index: int | None, result: EvalResult | None,
           error: str | None) -> EvalScore:
    base = dict(execution_id=str(chat.get("execution_id") or ""), chat_id=str(chat["chat_id"]),
                turn_index=turn_index, evaluator=str(ev.name), evaluator_version=str(ev.version))
    if result is None:
        return EvalScore(**base, source=str(getattr(ev, "source", None) or "heuristic"),
                         error=error)
    value = result.value
    if value is not None and not math.isfinite(value):
        return EvalScore(**base, source=result.source,
                         error=f"ValueError: {ev.name} returned a non-finite value ({value})")
    return EvalScore(**base, value=value, label=result.label, passed=result.passed,
                     reason=result.reason, source=result.source, detail=result.detail)


def run_one(ev: Any, ctx: EvalContext) -> EvalScore:
    """One evaluation; an exception (or a ``sys.exit`` of the evaluator's) becomes a failure row
    (value None, error set)."""
    try:
        result = coerce_result(ev.evaluate(ctx), str(ev.name))
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # noqa: BLE001 - errors are data: a failure row, the run goes on
        err = user_exit(e, f"evaluator {ev.name!r}") or error_text(e)
        log.info("evaluator %s failed on chat %s turn %s: %s", ev.name, ctx.chat.get("chat_id"),
                 ctx.turn_index, err)
        return _score(ev, ctx.chat, ctx.turn_index, None, err)
    return _score(ev, ctx.chat, ctx.turn_index, result, None)


# an evaluator that ran past its timeout on this many chats is not asked again in this evaluation
GIVE_UP_AFTER = 3


def _evaluations(ev: Any, chat: dict[str, Any], turns: list[dict[str, Any]], row: ScenarioRow | None,
                 settings: Any, extra: Mapping[str, Any]) -> list[EvalContext]:
    """What ``ev`` evaluates in a chat: each turn (a turn-level evaluator), or the chat."""
    if (getattr(ev, "level", None) or "chat") == "turn":
        return [EvalContext.model_construct(chat=chat, turns=turns, row=row, turn_index=t["turn_index"],
                                            settings=settings, **extra) for t in turns]
    return [EvalContext.model_construct(chat=chat, turns=turns, row=row, turn_index=None,
                                        settings=settings, **extra)]


def _jobs(evaluators: Sequence[Any], chats: Iterable[Any], turns_by_chat: Mapping[str, Iterable[Any]],
          rows_by_index: Mapping[Any, Any] | None, settings: Any, extra: Mapping[str, Any],
          timeout_s: float | None):
    """(one job per (chat, evaluator): its scores on that chat; the rows if it times out)."""
    timed_out: Counter = Counter()
    jobs, on_timeout = [], []
    for c in chats:
        chat = _as_dict(c)
        turns = _prepare_turns(turns_by_chat.get(chat["chat_id"], []))
        try:
            row = _row(rows_by_index, chat)
        except Exception as e:  # noqa: BLE001 - a bad row: every score of the chat says so
            err = f"scenario row {chat.get('row_index')} is invalid: {error_text(e)}"
            bad = [lambda ev=ev, chat=chat, err=err: [_score(ev, chat, None, None, err)] for ev in evaluators]
            jobs += bad
            on_timeout += bad
            continue
        for ev in evaluators:
            ctxs = _evaluations(ev, chat, turns, row, settings, extra)

            def job(ev=ev, ctxs=ctxs) -> list[EvalScore]:
                if timed_out[ev.name] >= GIVE_UP_AFTER:
                    err = (f"TimeoutError: {ev.name} was not run: it ran past {timeout_s:g} s on "
                           f"{GIVE_UP_AFTER} chats of this execution")
                    return [_score(ev, c.chat, c.turn_index, None, err) for c in ctxs]
                return [run_one(ev, c) for c in ctxs]

            def late(ev=ev, ctxs=ctxs) -> list[EvalScore]:
                timed_out[ev.name] += 1
                err = (f"TimeoutError: {ev.name} did not finish chat {ctxs[0].chat['chat_id']} within "
                       f"{timeout_s:g} s (REPLAY_EVALUATOR_TIMEOUT_S); given up on")
                return [_score(ev, c.chat, c.turn_index, None, err) for c in ctxs]

            jobs.append(job)
            on_timeout.append(late)
    return jobs, on_timeout


def run_evaluators(evaluators: Sequence[Any], chats: Iterable[Any],
                   turns_by_chat: Mapping[str, Iterable[Any]],
                   rows_by_index: Mapping[Any, Any] | None, settings: Any = None,
                   *, close: bool = True, context: Mapping[str, Any] | None = None,
                   timeout_s: float | None = None) -> list[EvalScore]:
    """Every chat-level evaluator once per chat, every turn-level one once per turn (in the
    order: chat, evaluator, turn). ``chats``: rows of `chats` (dicts or ChatRecords);
    ``turns_by_chat``: chat_id -> its `chat_turns` rows; ``rows_by_index``: row_index (or
    (scenario_id, row_index)) -> ScenarioRow or its dict, a missing row gives ``ctx.row=None``.
    An evaluator raising (or calling sys.exit) -> a failure row. Two evaluators with one name
    -> ValueError. ``close``: close the evaluators' model clients at the end. ``context``: more
    EvalContext fields for every evaluation (tool_match, tool_descriptions). ``timeout_s``: the
    time an evaluator may take on one chat (all its turns), past it its rows of that chat are
    timeout failures and it is left running in a thread nobody waits for; after
    :data:`GIVE_UP_AFTER` such chats it is not run again (None: no limit, in this thread)."""
    extra = dict(context or {})
    names = Counter(str(ev.name) for ev in evaluators)
    dupes = sorted(n for n, k in names.items() if k > 1)
    if dupes:
        raise ValueError(f"two evaluators share the name {', '.join(dupes)}; names key eval_scores")
    try:
        jobs, on_timeout = _jobs(evaluators, chats, turns_by_chat, rows_by_index, settings, extra, timeout_s)
        results = run_each(jobs, timeout_s, lambda i: on_timeout[i](), name="replay-evaluator")
    finally:
        if close:  # a close() that hangs is given up on too
            run_each([lambda ev=ev: _close(ev) for ev in evaluators], timeout_s, lambda _i: None,
                     name="replay-evaluator-close")
    return [s for scores in results for s in scores]


def _close(ev: Any) -> None:
    fn = getattr(ev, "close", None)
    if callable(fn):
        try:
            fn()
        except KeyboardInterrupt:
            raise
        except BaseException:  # noqa: BLE001 - sys.exit in a close() too
            log.debug("closing evaluator %s failed", ev.name, exc_info=True)
