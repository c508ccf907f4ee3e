"""``ground_truth_match``: the replayed answer against production's answer of the same turn."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from models.evals import EvalContext, EvalResult, MetricSpec
from tasks.common.text import one_line
from tasks.evaluate.evaluators.base import NO_PRODUCTION_ANSWER, TurnEvaluator, production_answer
from tasks.evaluate.evaluators.semantic import Embedder, cosine, default_embedder
from tasks.simulate.divergence import normalize, similarity

DEFAULT_MATCH_THRESHOLD = 0.8


# --------------------------------------------------------------------------- turn evaluators


class GroundTruthMatch(TurnEvaluator):
    """The replayed answer vs production's (see the module doc). ``embedder``: None = the
    default one when importable, False = no semantic step, or a callable
    ``list[str] -> list[vector]``."""

    spec = MetricSpec(
        name="ground_truth_match", label="Ground truth match", level="turn", aggregation="pass_rate", unit="%",
        scale=(0.0, 100.0), threshold=DEFAULT_MATCH_THRESHOLD, min_effect=5.0, rank=10,
        measures="share of production's turns the replay answered with the same meaning (and the same facts)")
    version = "1"
    missing = NO_PRODUCTION_ANSWER

    @classmethod
    def from_settings(cls, settings: Any = None) -> GroundTruthMatch:
        """``settings.eval_match_threshold`` (when present) sets the threshold."""
        threshold = getattr(settings, "eval_match_threshold", None)
        return cls(DEFAULT_MATCH_THRESHOLD if threshold is None else float(threshold))

    def __init__(self, threshold: float = DEFAULT_MATCH_THRESHOLD,
                 embedder: Embedder | Literal[False] | None = None) -> None:
        if not 0.0 <= float(threshold) <= 1.0:
            raise ValueError(f"ground_truth_match threshold must be within 0..1, got {threshold}")
        self.threshold = float(threshold)
        self._embedder = embedder

    def _embed(self) -> Embedder | None:
        if self._embedder is False:
            return None
        if self._embedder is None:
            return default_embedder()
        return self._embedder

    def production(self, ctx: EvalContext) -> str | None:
        return production_answer(ctx)

    def compare(self, ctx: EvalContext, turn: Mapping[str, Any], expected: str) -> EvalResult:
        answer = turn.get("assistant_message")
        t = self.threshold
        if answer is None or not str(answer).strip():
            why = f"turn error: {one_line(turn['error'], 200)}" if turn.get("error") else "empty answer"
            return EvalResult(value=0.0, label="mismatch", passed=False,
                              reason=f"no replayed answer ({why})")
        if normalize(answer) == normalize(expected):
            return EvalResult(value=1.0, label="exact", passed=True,
                              reason="same answer after normalisation")
        fuzzy = similarity(answer, expected)
        if fuzzy >= t:
            return EvalResult(value=fuzzy, label="fuzzy", passed=True,
                              reason=f"fuzzy similarity {fuzzy:.2f} >= {t:.2f}")
        embed = self._embed()
        if embed is not None:
            vecs = embed([str(answer), str(expected)])
            sem = max(0.0, min(1.0, cosine(vecs[0], vecs[1])))
            if sem >= t:
                return EvalResult(value=sem, label="semantic", passed=True,
                                  reason=f"semantic similarity {sem:.2f} >= {t:.2f} "
                                         f"(fuzzy {fuzzy:.2f})")
            best = max(fuzzy, sem)
            return EvalResult(value=best, label="mismatch", passed=False,
                              reason=f"similarity {best:.2f} < {t:.2f} (fuzzy {fuzzy:.2f}, "
                                     f"semantic {sem:.2f})")
        return EvalResult(value=fuzzy, label="mismatch", passed=False,
                          reason=f"fuzzy similarity {fuzzy:.2f} < {t:.2f}")
