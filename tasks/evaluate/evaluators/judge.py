"""The LLM judge the chat-level evaluators share: rubric prompts, verdicts, the judge class."""

from __future__ import annotations

import json
import threading
from typing import Any, Literal

from pydantic import BaseModel

from models.evals import EvalContext, EvalResult, MetricSpec
from tasks.common.text import clip
from tasks.evaluate.evaluators.base import Evaluator, call_list, field

# --------------------------------------------------------------------------- LLM judge


def render_chat(ctx: EvalContext, *, text_chars: int = 1500, total_chars: int = 16000) -> str:
    """The conversation as the judge reads it (user, assistant, tool calls), newest turns kept
    when it is too long."""
    lines: list[str] = []
    for t in ctx.turns:
        block = [f"User: {clip(t.get('user_message'), text_chars)}"]
        for c in call_list(t.get("tool_calls")):
            args = field(c, "arguments")
            args = args if isinstance(args, str) else json.dumps(args, default=str)
            block.append(f"  [tool call] {field(c, 'name')}({clip(args, 300)}) -> "
                         f"{clip(field(c, 'result'), 300)} (status {field(c, 'status') or 'ok'})")
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


JUDGE_MAX_TOKENS = 400


def judge_model(settings: Any) -> str | None:
    """The judge's model name when one is configured (llm_base_url and llm_model) and the
    judges may use it (``REPLAY_JUDGE`` is not ``heuristic``), else None."""
    if settings is None or not getattr(settings, "llm_base_url", None):
        return None
    if getattr(settings, "judge", "auto") == "heuristic":
        return None
    return getattr(settings, "llm_model", None) or None


class JudgeModel:
    """An evaluator's access to the LLM judge: which model (the settings', or a given client's),
    its clients (one per base URL and model, made on first use, closed by :meth:`close`), and
    :meth:`ask`. ``mode``: "auto" (a model when one is configured), "heuristic" (never call a
    model) or "llm" (fail without one). ``client``: a ChatClient to use instead."""

    def __init__(self, name: str, mode: Literal["auto", "heuristic", "llm"] = "auto", client: Any = None,
                 retries: int = 2) -> None:
        self.name, self.mode, self.retries = name, mode, retries
        self._client = client
        self._own: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def model(self, ctx: EvalContext) -> str | None:
        """The judge's model, or None: no judge (the evaluator's own rules decide alone)."""
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

    def ask(self, ctx: EvalContext, model: str, messages: list[dict[str, str]], reply_model: type[BaseModel],
            stats: dict[str, Any] | None = None) -> Any:
        """The judge's reply, validated against ``reply_model`` (retried with the error quoted);
        ``stats`` receives the replies it took and the structured-output format used."""
        from tasks.common.llm import ask_json

        # max_tokens: a verdict is short; a small model in JSON mode can otherwise emit whitespace until
        # the context is full (minutes per verdict on a CPU)
        return ask_json(self._chat_client(ctx, model), messages, reply_model, retries=self.retries, model=model,
                        name=self.name, max_tokens=JUDGE_MAX_TOKENS, stats=stats)

    def close(self) -> None:
        """Close the clients this judge opened (not one it was given)."""
        with self._lock:
            clients, self._own = list(self._own.values()), {}
        for c in clients:
            c.close()


class _Judge(Evaluator):
    """A chat-level evaluator that is the LLM judge (with ``rubric``) when a model is configured,
    and its heuristic otherwise (see :class:`JudgeModel` for ``mode`` and ``client``)."""

    version = "1"
    rubric = ""
    reply_model: type[BaseModel] = BaseModel

    def __init__(self, mode: Literal["auto", "heuristic", "llm"] = "auto", client: Any = None,
                 retries: int = 2) -> None:
        self.llm = JudgeModel(self.name, mode, client, retries)
        self.source = "heuristic"

    @property
    def mode(self) -> str:
        return self.llm.mode

    def close(self) -> None:
        self.llm.close()

    @staticmethod
    def heuristic(ctx: EvalContext) -> EvalResult:
        raise NotImplementedError

    def evaluate(self, ctx: EvalContext) -> EvalResult:
        model = self.llm.model(ctx)
        if model is None:
            self.source = "heuristic"
            return self.heuristic(ctx)
        self.source = f"llm:{model}"
        stats: dict[str, Any] = {}
        result = self.llm.ask(ctx, model, judge_messages(ctx, self.rubric), self.reply_model, stats).result(model)
        result.detail = {**(result.detail or {}), "judge_replies": stats.get("replies"),
                         "judge_format": stats.get("format")}
        return result


def judge(class_name: str, spec: MetricSpec, rubric: str, reply_model: type[BaseModel], heuristic: Any,
          doc: str) -> type[_Judge]:
    """A judged evaluator (registered among the built-ins as it is made): the LLM judge with
    ``rubric`` when a model is configured, ``heuristic(ctx)`` otherwise."""
    return type(class_name, (_Judge,), {"spec": spec, "rubric": rubric, "reply_model": reply_model,
                                        "heuristic": staticmethod(heuristic), "__doc__": doc,
                                        "__module__": heuristic.__module__})
