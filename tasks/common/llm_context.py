"""Fitting a request into a model's context window.

A model's context (prompt + reply, in tokens) is fixed by its server: 2,048 for a small local
model, 128k for a hosted one. Replay's own prompts (the judges, the simulated user, the scenario
writer) hold a transcript of unknown length, so they must fit whatever model the user points
them at. Nobody tells the client the size in advance: ``REPLAY_LLM_CONTEXT_TOKENS`` may, and
otherwise the server's refusal does (OpenAI, vLLM and llama-cpp-python say
``maximum context length is N tokens ... (P in the messages ...)``, llama.cpp's own server
``exceeds the available context size`` with ``n_ctx``). :func:`overflow` reads it;
:func:`fit_messages` cuts the longest message contents in their middle (their head and tail
are kept, a marker says how much was cut) until the estimate fits; the size learnt is
remembered per endpoint (base URL, model) for the process, so later requests are fitted before
they are sent.

Tokens are estimated from characters (:data:`CHARS_PER_TOKEN`, conservative for English; a
refusal that states the prompt's tokens gives the real ratio, used for the next cut).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

CHARS_PER_TOKEN = 3.0  # tokenizers average ~4 characters a token on English; 3 leaves room
DEFAULT_REPLY_TOKENS = 512  # kept free for the reply when a request does not say max_tokens
MIN_KEEP_CHARS = 200  # a cut message keeps at least this much
OVERHEAD_TOKENS = 8  # per message: the chat template's role markers

_MAX_LEN = re.compile(r"maximum context length is (\d+)", re.I)
_IN_MESSAGES = re.compile(r"\((\d+) in the messages", re.I)
_WINDOW_OF = re.compile(r"context (?:window|length|size) of (\d+)", re.I)
_N_CTX = re.compile(r"\bn_ctx\D{0,4}(\d+)", re.I)
_REQUESTED = re.compile(r"requested tokens \((\d+)\)", re.I)
_OVERFLOW_WORDS = ("maximum context length", "exceed context window", "exceeds the available context",
                   "context length exceeded", "context_length_exceeded", "too many tokens",
                   "exceeds the context")


@dataclass(frozen=True)
class Overflow:
    """What a context refusal said: the context size, and the prompt's tokens when stated."""

    context_tokens: int | None
    prompt_tokens: int | None = None


def overflow(status: int | None, text: str) -> Overflow | None:
    """The context refusal in an error (HTTP 400/413/422, or a 500 from a server that wraps
    its validation errors), or None when the error is something else."""
    if status not in (400, 413, 422, 500):
        return None
    low = text.lower()
    if not any(w in low for w in _OVERFLOW_WORDS):
        return None
    size = next((int(m.group(1)) for p in (_MAX_LEN, _WINDOW_OF, _N_CTX) if (m := p.search(text))), None)
    prompt = next((int(m.group(1)) for p in (_IN_MESSAGES, _REQUESTED) if (m := p.search(text))), None)
    return Overflow(size, prompt)


_contexts: dict[tuple[str, str], int] = {}
_lock = threading.Lock()


def known_context(endpoint: tuple[str, str] | None) -> int | None:
    """The context size learnt for ``endpoint`` (base URL, model) in this process."""
    with _lock:
        return _contexts.get(endpoint) if endpoint else None


def remember_context(endpoint: tuple[str, str] | None, tokens: int) -> None:
    if endpoint and tokens > 0:
        with _lock:
            _contexts[endpoint] = tokens


def forget_contexts() -> None:
    """Forget what every endpoint said (tests)."""
    with _lock:
        _contexts.clear()


def _text(content: Any) -> str | None:
    return content if isinstance(content, str) else None


def estimate_tokens(messages: Sequence[dict[str, Any]], chars_per_token: float = CHARS_PER_TOKEN) -> int:
    """A conservative estimate of the prompt's tokens."""
    chars = sum(len(_text(m.get("content")) or str(m.get("content") or "")) for m in messages)
    return int(chars / chars_per_token) + OVERHEAD_TOKENS * len(messages)


def _cut_middle(text: str, keep: int) -> str:
    cut = len(text) - keep
    marker = f"\n[... {cut} characters cut to fit the model's context ...]\n"
    head = keep * 2 // 3
    return text[:head] + marker + text[len(text) - (keep - head):]


def reply_budget(context_tokens: int, reply_tokens: int | None) -> int:
    """The tokens kept free for the reply: ``reply_tokens`` (512 when unset), at most a quarter
    of the context (a reply cap near the context would leave no room for the prompt)."""
    reply = reply_tokens if reply_tokens and reply_tokens > 0 else DEFAULT_REPLY_TOKENS
    return min(reply, context_tokens // 4)


def reply_room(messages: Sequence[dict[str, Any]], context_tokens: int, reply_tokens: int | None,
               chars_per_token: float = CHARS_PER_TOKEN) -> int | None:
    """``reply_tokens`` lowered to what the context leaves after ``messages`` (a server counts
    prompt + max_tokens against its context: llama.cpp refused 3,343 + 1,000 > 2,048), never below
    :func:`reply_budget`; None when no reply cap was asked."""
    if not isinstance(reply_tokens, int) or reply_tokens <= 0:
        return None
    room = context_tokens - estimate_tokens(messages, chars_per_token)
    return min(reply_tokens, max(reply_budget(context_tokens, reply_tokens), room))


def fit_messages(messages: Sequence[dict[str, Any]], context_tokens: int, reply_tokens: int | None,
                 chars_per_token: float = CHARS_PER_TOKEN) -> Sequence[dict[str, Any]] | None:
    """``messages`` with their longest text contents cut in the middle so that the estimated
    prompt leaves ``reply_tokens`` free in ``context_tokens``; ``messages`` itself when it
    already fits; None when it cannot fit (the contents left are all short)."""
    reply = reply_budget(context_tokens, reply_tokens)
    budget_chars = int((context_tokens - reply - OVERHEAD_TOKENS * len(messages)) * chars_per_token)
    out = [dict(m) for m in messages]
    texts = [_text(m.get("content")) for m in out]
    sizes = [len(t or "") for t in texts]
    other = sum(len(str(m.get("content") or "")) for m, t in zip(out, texts, strict=True) if t is None)
    excess = sum(sizes) + other - budget_chars
    if excess <= 0:
        return messages
    spent: set[int] = set()  # messages cut as far as they go
    while excess > 0:
        left = [k for k in range(len(out)) if k not in spent and sizes[k] > MIN_KEEP_CHARS]
        if not left:
            return None
        i = max(left, key=lambda k: sizes[k])
        keep = max(MIN_KEEP_CHARS, sizes[i] - excess - 80)  # 80: the marker's own length
        cut = _cut_middle(texts[i], keep)  # always from the original text: one marker a message
        if len(cut) >= sizes[i]:  # the marker would cost more than it saves
            spent.add(i)
            continue
        out[i]["content"] = cut
        excess -= sizes[i] - len(cut)
        sizes[i] = len(cut)
        if keep == MIN_KEEP_CHARS:
            spent.add(i)
    return out


def ratio_from(messages: Sequence[dict[str, Any]], prompt_tokens: int | None) -> float:
    """Characters per token of these messages, from the tokens a refusal stated (the default
    when it stated none)."""
    if not prompt_tokens:
        return CHARS_PER_TOKEN
    chars = sum(len(str(m.get("content") or "")) for m in messages)
    return max(1.0, min(CHARS_PER_TOKEN, 0.9 * chars / prompt_tokens))


__all__ = ["CHARS_PER_TOKEN", "Overflow", "estimate_tokens", "fit_messages", "forget_contexts",
           "known_context", "overflow", "ratio_from", "remember_context", "reply_budget", "reply_room"]
