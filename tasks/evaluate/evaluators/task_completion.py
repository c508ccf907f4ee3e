"""``task_completion``: did the agent complete the user's task (an LLM judge, else heuristics)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, Field

from models.evals import EvalContext, EvalResult, MetricSpec
from tasks.common.text import one_line
from tasks.evaluate.evaluators.base import NORMAL_ENDINGS, call_failed, call_list, field
from tasks.evaluate.evaluators.judge import judge
from tasks.simulate.divergence import normalize

TRANSFER_TOOLS = frozenset({
    "transfer_to_human", "transfer_to_agent", "transfer_to_human_agent", "escalate_to_human",
    "escalate", "handoff_to_human", "human_handoff", "hand_off_to_human", "talk_to_human",
})
TRANSFER_TOOL_RE = re.compile(r"(transfer|escalat|hand_?off).*(human|agent|operator|person|support)")
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


def _is_transfer_tool(name: Any) -> bool:
    n = str(name or "").lower()
    return n in TRANSFER_TOOLS or bool(TRANSFER_TOOL_RE.search(n))


def _behaviour(answers: Iterable[str | None], calls: Iterable[Any]) -> dict[str, str | None]:
    """What a side (replayed or production) did: a transfer (by tool or phrase) and a
    refusal (by phrase), each with its evidence, or None."""
    answers = list(answers)
    transfer = next((f"{field(c, 'name')} tool" for c in calls if _is_transfer_tool(field(c, "name"))
                     and not call_failed(c)), None)
    if transfer is None:
        transfer = next((f'"{p}"' for a in answers if (p := _has_phrase(a, TRANSFER_PHRASES))), None)
    refusal = next((f'"{p}"' for a in answers if (p := _has_phrase(a, REFUSAL_PHRASES))), None)
    return {"transfer": transfer, "refusal": refusal}


def _production_side(ctx: EvalContext) -> tuple[list[str | None], list[Any]]:
    if ctx.row is not None:
        turns = ctx.row.expected_turns
        return [t.assistant_message for t in turns], [c for t in turns for c in t.tool_calls]
    return ([t.get("original_assistant_message") for t in ctx.turns],
            [c for t in ctx.turns for c in call_list(t.get("original_tool_calls"))])


def heuristic_task_completion(ctx: EvalContext) -> EvalResult:
    """Completed (1.0) when the chat ended normally, production's tool actions happened and
    there was no transfer/refusal that production did not make (module doc)."""
    chat = ctx.chat
    problems: list[str] = []
    status, ended = chat.get("status"), chat.get("ended_reason")
    if status != "completed" or ended not in NORMAL_ENDINGS:
        problems.append(f"chat ended abnormally (status {status}, ended_reason {ended})")
    prod_answers, prod_calls = _production_side(ctx)
    chat_calls = [c for t in ctx.turns for c in call_list(t.get("tool_calls"))]
    expected = {field(c, "name") for c in prod_calls if not call_failed(c) and field(c, "name")}
    done = {field(c, "name") for c in chat_calls if not call_failed(c) and field(c, "name")}
    missing = sorted(expected - done, key=str)
    if missing:
        problems.append("expected tool actions missing: " + ", ".join(missing))
    mine = _behaviour((t.get("assistant_message") for t in ctx.turns), chat_calls)
    theirs = _behaviour(prod_answers, prod_calls)
    if mine["transfer"] and not theirs["transfer"]:
        problems.append(f"transferred to a human ({mine['transfer']}) where production did not")
    if mine["refusal"] and not theirs["refusal"]:
        problems.append(f"refused ({mine['refusal']}) where production did not")
    if problems:
        return EvalResult(value=0.0, label="not_completed", passed=False,
                          reason="; ".join(problems), source="heuristic")
    n = len(expected)
    return EvalResult(value=1.0, label="completed", passed=True, source="heuristic",
                      reason=f"ended normally ({ended}), expected tool actions done "
                             f"({n}), no unexpected transfer or refusal")


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


TaskCompletion = judge(
    "TaskCompletion",
    MetricSpec(name="task_completion", label="Task completion", level="chat", aggregation="pass_rate", unit="%",
               scale=(0.0, 100.0), min_effect=5.0, rank=30,
               measures="share of conversations in which the agent did what production did"),
    COMPLETION_RUBRIC, CompletionVerdict, heuristic_task_completion,
                       "Did the agent complete the user's task? value 1.0 / 0.0 (module doc).")
