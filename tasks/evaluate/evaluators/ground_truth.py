"""``ground_truth_match``: does the replayed answer say what production's answer said?

Judged by meaning, never by wording (:func:`tasks.common.semantic.equivalent`): the answer keeps
every key fact of production's (amounts, dates, ids, codes, times: each written any way), negates
nothing production stated (and states nothing production negated), and its embedding similarity
is at least the model's calibrated pass mark (wordllama, shipped inside its package and run on
CPU: 0.58; ``REPLAY_SEMANTIC_THRESHOLD`` overrides it); two answers that only close the
conversation ("Happy to help!" / "You're welcome, anything else?") are equivalent; an answer
that repeats the user's message is not. With a model configured
(``REPLAY_LLM_BASE_URL`` and ``REPLAY_LLM_MODEL``) the LLM judge decides instead (equivalent or
not, with a reason); the facts and the similarity stay in ``detail`` either way.

The metric is the share of production's turns judged equivalent (a pass rate); a turn's value is
its similarity, kept as detail. A paraphrase passes; an echo of the user, an answer with another
amount, date or id, and "has not shipped" for "has shipped" fail.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel

from models.evals import EvalContext, EvalResult, MetricSpec
from tasks.common import semantic
from tasks.common.text import clip, one_line
from tasks.evaluate.evaluators.base import NO_PRODUCTION_ANSWER, TurnEvaluator, production_answer
from tasks.evaluate.evaluators.judge import JudgeModel

EQUIVALENCE_RUBRIC = """You compare two answers a customer-support agent gave to the same user message: the answer \
production gave (the reference) and the answer a new build gave (the candidate).
They are equivalent when the candidate tells the user the same thing: the same facts (amounts, dates, ids, codes, \
names, quantities), the same decision or action (refunded, transferred, refused, asked for more), the same \
commitments. Wording, tone, length, order and politeness do not matter. A candidate that adds a wrong fact, \
leaves out a fact the reference gave, decides differently or only repeats the user's message is not equivalent.
Reply with one JSON object and nothing else: {"equivalent": true|false, "reason": "<one sentence>"}"""


class EquivalenceVerdict(BaseModel):
    equivalent: bool
    reason: str


class GroundTruthMatch(TurnEvaluator):
    """The replayed answer vs production's answer of the same turn (module doc). ``threshold``:
    the similarity pass mark (None: the model's calibrated one); ``model``: the embedding model
    (None: ``REPLAY_SEMANTIC_MODEL``); ``mode``/``client``: the LLM judge's (see JudgeModel)."""

    spec = MetricSpec(
        name="ground_truth_match", label="Ground truth match", level="turn", aggregation="pass_rate", unit="%",
        scale=(0.0, 100.0), threshold=semantic.DEFAULT_THRESHOLD, min_effect=5.0, rank=10,
        measures="share of production's turns the replay answered with the same meaning: every key fact kept, "
                 "no negation flipped, similarity at the pass mark (or the LLM judge's verdict)")
    version = "2"
    missing = NO_PRODUCTION_ANSWER

    @classmethod
    def from_settings(cls, settings: Any = None) -> GroundTruthMatch:
        """The settings' embedding model and pass mark (``semantic_model``, ``semantic_threshold``)."""
        return cls(getattr(settings, "semantic_threshold", None), model=getattr(settings, "semantic_model", None))

    def __init__(self, threshold: float | None = None, *, model: semantic.SemanticModel | None = None,
                 mode: Literal["auto", "heuristic", "llm"] = "auto", client: Any = None) -> None:
        if threshold is not None and not 0.0 <= float(threshold) <= 1.0:
            raise ValueError(f"ground_truth_match threshold must be within 0..1, got {threshold}")
        self.model = model
        self.threshold = semantic.threshold_for(model) if threshold is None else float(threshold)
        self.spec = type(self).spec.model_copy(update={"threshold": self.threshold})
        self.llm = JudgeModel(self.name, mode, client)

    def close(self) -> None:
        self.llm.close()

    def production(self, ctx: EvalContext) -> str | None:
        return production_answer(ctx)

    def compare(self, ctx: EvalContext, turn: Mapping[str, Any], expected: str) -> EvalResult:
        answer = turn.get("assistant_message")
        if answer is None or not str(answer).strip():
            why = f"turn error: {one_line(turn['error'], 200)}" if turn.get("error") else "empty answer"
            return EvalResult(value=0.0, label="different", passed=False, reason=f"no replayed answer ({why})",
                              detail={"similarity": 0.0})
        eq = semantic.equivalent(answer, expected, self.threshold, model=self.model, message=turn.get("user_message"))
        detail = {"similarity": round(eq.similarity, 4), "threshold": self.threshold,
                  "facts_missing": eq.facts_missing, "negation_differs": eq.negation_differs}
        judge = self.llm.model(ctx)
        if judge is None:
            return EvalResult(value=eq.similarity, label="equivalent" if eq.passed else "different",
                              passed=eq.passed, reason=eq.reason, source="semantic", detail=detail)
        messages = [{"role": "system", "content": EQUIVALENCE_RUBRIC},
                    {"role": "user", "content": f"User message: {clip(turn.get('user_message'), 2000)}\n\n"
                                                f"Reference answer (production): {clip(expected, 3000)}\n\n"
                                                f"Candidate answer (new build): {clip(answer, 3000)}"}]
        stats: dict = {}
        verdict = self.llm.ask(ctx, judge, messages, EquivalenceVerdict, stats)
        return EvalResult(value=eq.similarity, label="equivalent" if verdict.equivalent else "different",
                          passed=verdict.equivalent, source=f"llm:{judge}",
                          detail={**detail, "semantic_passed": eq.passed, "judge_replies": stats.get("replies"),
                                  "judge_format": stats.get("format")},
                          reason=f"judge: {one_line(verdict.reason, 300)}; {eq.reason}")
