"""``csat``: the user's satisfaction, 1..10 (an LLM judge, else heuristics)."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from models.evals import EvalContext, EvalResult, MetricSpec
from tasks.common.semantic import normalize, similarity
from tasks.common.text import one_line
from tasks.evaluate.evaluators.base import ERROR_ENDINGS
from tasks.evaluate.evaluators.judge import judge

POSITIVE_CUES = (
    r"thanks?\b", r"thank you", r"\bthx\b", r"\bty\b", r"\bcheers\b", r"\bperfect\b", r"\bgreat\b",
    r"\bawesome\b", r"\bexcellent\b", r"\bamazing\b", r"\bwonderful\b", r"\bfantastic\b",
    r"\bappreciate", r"\bhelpful\b", r"\bthat works\b", r"\bworks now\b", r"\bsolved\b",
    r"\blove it\b", "👍", "🙏", "😊", "🙂", "😀", "❤", "🎉",
)
NEGATIVE_CUES = (
    r"\bangry\b", r"\bfurious\b", r"\bannoy", r"\bfrustrat", r"\bterrible\b", r"\bawful\b",
    r"\bhorrible\b", r"\bworst\b", r"\buseless\b", r"\bridiculous\b", r"\bunacceptable\b",
    r"\bpathetic\b", r"\bwaste of (my )?time\b", r"\bstill (not|no|doesn't|does not|isn't|hasn't|"
    r"haven't|can't|cannot|won't|waiting)\b", r"\bdoesn't work\b", r"\bdoes not work\b",
    r"\bnot working\b", r"\bnot helpful\b", r"\bnot listening\b", r"\bstupid\b", r"\bwtf\b",
    r"\bdamn\b", r"\bjoke\b", r"\bspeak to a (human|person|manager)\b",
    r"\b(a )?real person\b", "👎", "😡", "😠", "🤬",
)
_POS = re.compile("|".join(f"(?:{p})" for p in POSITIVE_CUES), re.I)
_NEG = re.compile("|".join(f"(?:{p})" for p in NEGATIVE_CUES), re.I)
_NEGATED_POS = re.compile(
    r"\b(not|never|no|isn't|wasn't|aren't|weren't|hardly)\s+(\w+\s+)?"
    r"(great|perfect|helpful|awesome|excellent|amazing|good|solved)\b", re.I)
_SHOUT_PUNCT = re.compile(r"!{2,}|[!?]{3,}|\?!|!\?")
REPEAT_SIMILARITY = 0.85
REPEAT_MIN_CHARS = 10


def _shouts(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    upper = sum(1 for c in letters if c.isupper())
    return (len(letters) >= 8 and upper / len(letters) >= 0.6) or bool(_SHOUT_PUNCT.search(text))


def csat_label(score: float) -> str:
    return "satisfied" if score >= 8 else ("neutral" if score >= 5 else "dissatisfied")


def heuristic_csat(ctx: EvalContext) -> EvalResult:
    """CSAT 1..10 from satisfaction cues in the user turns (rules in the module doc)."""
    score = 7
    notes: list[str] = []
    users = [(t["turn_index"], t.get("user_message") or "") for t in ctx.turns]
    for k, (ti, msg) in enumerate(users):
        if k == 0:
            continue  # the request itself: its tone is not the agent's doing
        negated = bool(_NEGATED_POS.search(msg))
        text_wo_negated = _NEGATED_POS.sub(" ", msg)
        if _POS.search(text_wo_negated):
            score += 1
            notes.append(f"+1 positive cue (turn {ti})")
        if negated or _NEG.search(msg):
            score -= 1
            notes.append(f"-1 negative cue (turn {ti})")
        if _shouts(msg):
            score -= 1
            notes.append(f"-1 shouting (turn {ti})")
        if len(normalize(msg)) >= REPEAT_MIN_CHARS and any(
                similarity(msg, prev, model="none") >= REPEAT_SIMILARITY for _, prev in users[:k]):
            score -= 1
            notes.append(f"-1 repeated question (turn {ti})")
    chat = ctx.chat
    last = ctx.turns[-1] if ctx.turns else None
    if (chat.get("status") == "failed" or chat.get("ended_reason") in ERROR_ENDINGS
            or (last is not None and last.get("error"))):
        score -= 2
        notes.append("-2 ended after an error")
    elif last is not None and not (last.get("assistant_message") or "").strip():
        score -= 1
        notes.append("-1 ended without an answer")
    final = max(1, min(10, score))
    reason = "start 7" + ("; " + "; ".join(notes) if notes else "; no cues") + f" -> {final}"
    if final != score:
        reason += f" (clamped from {score})"
    return EvalResult(value=float(final), label=csat_label(final), passed=None,
                      reason=reason, source="heuristic")


class CsatVerdict(BaseModel):
    """The judge's reply for csat."""

    score: int = Field(ge=1, le=10)
    reason: str = Field(min_length=1, max_length=1000)

    def result(self, model: str) -> EvalResult:
        return EvalResult(value=float(self.score), label=csat_label(self.score), passed=None,
                          reason=one_line(self.reason), source=f"llm:{model}")


CSAT_RUBRIC = """You estimate the user's satisfaction (CSAT) with an AI agent after a conversation,
from the user's point of view (their words, their reactions, whether they got what they came for).
Scale (integer 1..10):
- 1-2: furious or abandoned, the agent failed or made things worse
- 3-4: dissatisfied: had to repeat themselves, unresolved, or an error
- 5-6: neutral or partly helped
- 7-8: satisfied: the request was handled, no friction
- 9-10: delighted: resolved quickly, the user says thanks or praises the agent
Reply with one JSON object and nothing else: {"score": <1-10>, "reason": "<one or two sentences>"}"""


Csat = judge(
    "Csat",
    MetricSpec(name="csat", label="CSAT", level="chat", aggregation="mean", unit="/10", scale=(1.0, 10.0),
               min_effect=0.5, digits=2, rank=40, measures="the user's satisfaction, 1 to 10"),
    CSAT_RUBRIC, CsatVerdict, heuristic_csat,
             "The user's satisfaction, 1..10 (module doc).")
