"""``task_completion``: did the agent do what production did?

From its ACTIONS, without a model: production's state-changing calls that succeeded — the write
tools (:func:`tasks.simulate.toolmatch.is_write_tool`: inferred from the tool's name and the
agent definition's description of it; ``replay run --tool-match FILE`` overrides it per tool)
— must each be made by the replay and succeed, matched by tool and KEY arguments (free text such
as a reason is compared by meaning, not required to be equal); the replay must make no
state-changing call production did not make; the chat must end normally (status completed,
ended by the script or the user); and the agent must not refuse (a :data:`REFUSAL_PHRASES`
phrase) or hand the user over by words (:data:`TRANSFER_PHRASES`) where production did not.
So an agent that skips a refund fails exactly the conversations in which production made one.
With a model configured, the LLM judge must ALSO say the task was completed (source
``actions+llm:<model>``; both reasons kept).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, Field

from models.evals import EvalContext, EvalResult, MetricSpec
from tasks.common.semantic import normalize
from tasks.common.text import one_line
from tasks.evaluate.evaluators.base import NORMAL_ENDINGS, call_failed, call_list, field
from tasks.evaluate.evaluators.judge import _Judge, judge_messages
from tasks.simulate.toolmatch import call_match, is_write_tool

TRANSFER_PHRASES = (
    "transfer you to", "transferring you to", "connect you with a human", "connect you to a human",
    "connecting you with a human", "connecting you to a human", "escalate this to a human",
    "escalating this to a human", "hand you over to", "handing you over to",
    "a human agent will", "a member of our team will contact you",
)
REFUSAL_PHRASES = (
    "i can't help", "i cannot help", "i can not help", "i can't assist", "i cannot assist",
    "i can not assist", "i'm unable to help", "i am unable to help", "i'm unable to assist",
    "i am unable to assist", "i'm not able to help", "i am not able to help",
    "i won't be able to help", "i'm not allowed to", "i am not allowed to",
    "i can't do that", "i cannot do that", "i'm sorry, but i can't", "i'm sorry, but i cannot",
    "i can't provide", "i cannot provide", "unable to assist with",
)


# --------------------------------------------------------------------------- heuristics


def _has_phrase(text: str | None, phrases: Iterable[str]) -> str | None:
    n = normalize(text)
    if not n:
        return None
    return next((p for p in phrases if p in n), None)


def _behaviour(answers: Iterable[str | None]) -> dict[str, str | None]:
    """What a side said: a hand-over and a refusal (by phrase), each with its evidence, or None."""
    answers = list(answers)
    transfer = next((f'"{p}"' for a in answers if (p := _has_phrase(a, TRANSFER_PHRASES))), None)
    refusal = next((f'"{p}"' for a in answers if (p := _has_phrase(a, REFUSAL_PHRASES))), None)
    return {"transfer": transfer, "refusal": refusal}


def _production_side(ctx: EvalContext) -> tuple[list[str | None], list[Any]]:
    if ctx.row is not None:
        turns = ctx.row.expected_turns
        return [t.assistant_message for t in turns], [c for t in turns for c in t.tool_calls]
    return ([t.get("original_assistant_message") for t in ctx.turns],
            [c for t in ctx.turns for c in call_list(t.get("original_tool_calls"))])


def writes(calls: Iterable[Any], ctx: EvalContext) -> list[Any]:
    """The state-changing calls that succeeded."""
    descriptions = ctx.tool_descriptions or {}
    return [c for c in calls if field(c, "name") and not call_failed(c)
            and is_write_tool(str(field(c, "name")), descriptions.get(str(field(c, "name"))), ctx.tool_match)]


def _show(call: Any) -> str:
    args = field(call, "arguments")
    return f"{field(call, 'name')}({one_line(args, 80) if args not in (None, '', {}) else ''})"


def match_actions(required: list[Any], done: list[Any], config: Any = None) -> tuple[list[Any], list[Any], list[str]]:
    """Production's actions against the replay's, each done action used once: (missing, extra,
    notes on free text that was worded otherwise)."""
    left = list(done)
    missing, notes = [], []
    for want in required:
        hit = next((i for i, have in enumerate(left) if call_match(have, want, config).matched), None)
        if hit is None:
            missing.append(want)
        else:
            notes += list(call_match(left.pop(hit), want, config).notes)
    return missing, left, notes


def action_completion(ctx: EvalContext) -> EvalResult:
    """Completed (1.0) when the chat ended normally, did production's state-changing actions
    and no other, and did not refuse or hand over where production did not (module doc)."""
    chat = ctx.chat
    problems: list[str] = []
    status, ended = chat.get("status"), chat.get("ended_reason")
    if status != "completed" or ended not in NORMAL_ENDINGS:
        problems.append(f"chat ended abnormally (status {status}, ended_reason {ended})")
    prod_answers, prod_calls = _production_side(ctx)
    required = writes(prod_calls, ctx)
    done = writes((c for t in ctx.turns for c in call_list(t.get("tool_calls"))), ctx)
    missing, extra, notes = match_actions(required, done, ctx.tool_match)
    if missing:
        problems.append("production's actions not done: " + ", ".join(_show(c) for c in missing))
    if extra:
        problems.append("actions production did not take: " + ", ".join(_show(c) for c in extra))
    mine, theirs = _behaviour(t.get("assistant_message") for t in ctx.turns), _behaviour(prod_answers)
    if mine["transfer"] and not theirs["transfer"]:
        problems.append(f"handed over ({mine['transfer']}) where production did not")
    if mine["refusal"] and not theirs["refusal"]:
        problems.append(f"refused ({mine['refusal']}) where production did not")
    detail = {"required": [_show(c) for c in required], "done": [_show(c) for c in done],
              "missing": [_show(c) for c in missing], "extra": [_show(c) for c in extra], "notes": notes}
    if problems:
        return EvalResult(value=0.0, label="not_completed", passed=False, reason="; ".join(problems),
                          source="actions", detail=detail)
    return EvalResult(value=1.0, label="completed", passed=True, source="actions", detail=detail,
                      reason=f"ended normally ({ended}); production's {len(required)} state-changing "
                             f"action{'s' if len(required) != 1 else ''} done, no other")


heuristic_task_completion = action_completion  # the name the rules had before they were actions


class CompletionVerdict(BaseModel):
    """The judge's reply for task_completion."""

    completed: bool
    reason: str = Field(min_length=1, max_length=1000)

    def result(self, model: str) -> EvalResult:
        return EvalResult(value=1.0 if self.completed else 0.0, label="completed" if self.completed else "not_completed",
                          passed=self.completed, reason=one_line(self.reason), source=f"llm:{model}")


COMPLETION_RUBRIC = """You judge whether an AI agent completed the user's task in a conversation.
Rubric:
- completed = true when the agent did what the user needed: the request was fulfilled or
  correctly resolved, with the right actions (tool calls) taken, and the conversation ended
  without the user left stuck. A refusal or a hand-off to a human counts as completed only
  when it was the right thing to do (the expected outcome says production did the same).
- completed = false when the request was left unresolved, the agent gave wrong or invented
  information, skipped a needed action, failed with an error, or transferred/refused without
  need.
Reply with one JSON object and nothing else: {"completed": true|false, "reason": "<one or two sentences>"}"""


class TaskCompletion(_Judge):
    """Did the agent do what production did? value 1.0 / 0.0 (module doc)."""

    spec = MetricSpec(
        name="task_completion", label="Task completion", level="chat", aggregation="pass_rate", unit="%",
        scale=(0.0, 100.0), min_effect=5.0, rank=30,
        measures="share of conversations in which the agent did what production did: its state-changing actions "
                 "with their key arguments and no other, to a normal end (and, with a model, judged complete)")
    rubric = COMPLETION_RUBRIC
    reply_model = CompletionVerdict
    heuristic = staticmethod(action_completion)

    def evaluate(self, ctx: EvalContext) -> EvalResult:
        by_actions = action_completion(ctx)
        model = self.llm.model(ctx)
        if model is None:
            self.source = "actions"
            return by_actions
        self.source = f"actions+llm:{model}"
        stats: dict = {}
        verdict = self.llm.ask(ctx, model, judge_messages(ctx, self.rubric), self.reply_model, stats).result(model)
        passed = bool(by_actions.passed and verdict.passed)
        return EvalResult(value=1.0 if passed else 0.0, label="completed" if passed else "not_completed",
                          passed=passed, source=self.source, detail={**(by_actions.detail or {}),
                                                                     "judge": verdict.passed,
                                                                     "judge_replies": stats.get("replies"),
                                                                     "judge_format": stats.get("format")},
                          reason=f"actions: {by_actions.reason}; judge: {verdict.reason}")
