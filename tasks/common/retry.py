"""The one retry policy: what is transient, how long to wait, and tenacity doing the loop.

Used by the LLM client (:mod:`tasks.common.llm`), the agent under test
(:func:`tasks.simulate.agents.call_with_retries`) and the Phoenix REST source
(:mod:`tasks.ingest.sources.phoenix`); each passes its own knobs (attempts, backoff, caps).

- Transient (:func:`is_transient`): timeouts, connection errors, HTTP 429 and 5xx -- from a
  status carried by the error (``status_code``, ``status``, ``http_status`` or
  ``response.status_code``) or an SDK error named like one (``RateLimitError``, ...). A
  bad URL is not transient. A caller may pass a ``verdict`` that decides for its own
  exception types first (True/False), or returns None to leave it to the rule.
  A 5xx whose body says the request itself was invalid (a validation error, some
  OpenAI-compatible servers answer a bad field with HTTP 500) is not transient
  (:func:`request_was_invalid`): asking again gets the same answer.
- Wait (:func:`retry_delay`): the server's Retry-After when the error carries one
  (``retry_after`` seconds, or ``retry-after-ms`` / ``retry-after`` headers on
  ``response``), capped at ``retry_after_max_s``; else exponential backoff with FULL jitter,
  ``uniform(0, min(backoff_max_s, backoff_s * 2**(attempt-1)))`` (:func:`backoff_delay`).
  Full jitter because the callers fail together (many simulated chats against one agent,
  many requests against one model server): spreading the retries over the whole interval
  de-synchronises them best; a server that needs a minimum wait says so in Retry-After.
- :class:`RetryPolicy` holds the knobs and gives tenacity objects (:meth:`~RetryPolicy.retrying`,
  :meth:`~RetryPolicy.aretrying`) or runs a call (:meth:`~RetryPolicy.call`,
  :meth:`~RetryPolicy.acall`) returning ``(result, attempts)``; the error it gives up with
  carries ``attempts`` (:func:`attempts_of`). ``on_retry(attempt, exc, delay)`` is called
  before each sleep (it may return an awaitable under ``acall``/``aretrying``).
"""

from __future__ import annotations

import asyncio
import email.utils
import inspect
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar

import httpx
from tenacity import AsyncRetrying, RetryCallState, Retrying, retry_if_exception, stop_after_attempt

T = TypeVar("T")

DEFAULT_ATTEMPTS = 4  # the first try and 3 retries
BACKOFF_S = 0.5  # the ceiling of the first wait; doubles per attempt
BACKOFF_MAX_S = 8.0  # the ceiling never exceeds this
RETRY_AFTER_MAX_S = 30.0  # a server's Retry-After is honoured up to this
TRANSIENT_STATUSES = frozenset({429}) | frozenset(range(500, 600))
_MAX_DOUBLINGS = 62  # 2**62 * any sane backoff is past any cap; avoids float overflow

# openai, anthropic, litellm SDK errors that are transient whatever they carry
_TRANSIENT_NAMES = frozenset({"APIConnectionError", "APITimeoutError", "ServiceUnavailableError",
                              "RateLimitError", "InternalServerError"})

Verdict = Callable[[BaseException], "bool | None"]
OnRetry = Callable[[int, BaseException, float], "Awaitable[None] | None"]
Uniform = Callable[[float, float], float]


# --------------------------------------------------------------------------- transient


def transient_status(status: int | None) -> bool:
    """Whether an HTTP status is worth another attempt: 429 and 5xx."""
    return status in TRANSIENT_STATUSES


def status_of(exc: BaseException) -> int | None:
    """The HTTP status an error carries (``status_code``, ``status``, ``http_status``, or
    ``response.status_code``), or None."""
    for attr in ("status_code", "status", "http_status"):
        v = getattr(exc, attr, None)
        if isinstance(v, int) and not isinstance(v, bool):
            return v
    v = getattr(getattr(exc, "response", None), "status_code", None)
    return v if isinstance(v, int) and not isinstance(v, bool) else None


class TransientResponse(Exception):
    """An HTTP answer worth retrying (429, 5xx), raised so the policy retries it; carries the
    response (its Retry-After, its body for the final message)."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response
        self.status = response.status_code


_INVALID_REQUEST = re.compile(r"\bvalidation errors?\b|\binvalid_request_error\b|\bunprocessable\b", re.I)


def request_was_invalid(response: httpx.Response) -> bool:
    """Whether an error answer blames the request (a validation error in its body), whatever
    its status: llama.cpp's server, for one, answers a field it does not take with HTTP 500."""
    try:
        text = response.text[:4000]
    except (httpx.ResponseNotRead, UnicodeDecodeError):
        return False
    return bool(_INVALID_REQUEST.search(text))


def raise_for_transient(response: httpx.Response) -> httpx.Response:
    """``response`` unless its status is transient (then :class:`TransientResponse`); a 5xx
    whose body is a validation error of the request is returned as it is (not transient)."""
    if transient_status(response.status_code) and not (
            response.status_code >= 500 and request_was_invalid(response)):
        raise TransientResponse(response)
    return response


def is_transient(exc: BaseException, verdict: Verdict | None = None) -> bool:
    """Whether another attempt may succeed. ``verdict(exc)`` decides first when given and
    not None; then: a bad URL no, timeouts and connection errors yes, SDK errors named
    like a rate limit / outage yes, else the HTTP status rule (429, 5xx). Never for a
    ``BaseException`` that is not an ``Exception`` (cancellation, interrupts)."""
    if not isinstance(exc, Exception):
        return False
    if verdict is not None:
        own = verdict(exc)
        if own is not None:
            return bool(own)
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):  # does not get better
        return False
    if isinstance(exc, (TimeoutError, ConnectionError, httpx.TransportError)):
        return True
    if any(c.__name__ in _TRANSIENT_NAMES for c in type(exc).__mro__):
        return True
    return transient_status(status_of(exc))


# --------------------------------------------------------------------------- waiting


def retry_after_s(headers: httpx.Headers | Mapping[str, str]) -> float | None:
    """Seconds a server asks to wait: ``retry-after-ms``, ``retry-after`` (seconds or an
    HTTP date); None when absent or unreadable."""
    h = {k.lower(): v for k, v in headers.items()}
    if "retry-after-ms" in h:
        try:
            return max(0.0, float(h["retry-after-ms"]) / 1000.0)
        except ValueError:
            pass
    value = h.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def retry_after_of(exc: BaseException | None) -> float | None:
    """Seconds the server asked to wait, as the error carries it: a numeric ``retry_after``
    attribute, else the Retry-After headers of its ``response``; None when it did not say."""
    asked = getattr(exc, "retry_after", None)
    if isinstance(asked, (int, float)) and not isinstance(asked, bool):
        return max(0.0, float(asked))
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None:
        return None
    try:
        return retry_after_s(headers)
    except Exception:  # noqa: BLE001 - not header-like
        return None


def backoff_delay(attempt: int, *, backoff_s: float = BACKOFF_S, backoff_max_s: float = BACKOFF_MAX_S,
                  uniform: Uniform = random.uniform) -> float:
    """Exponential backoff with full jitter after failed attempt ``attempt`` (1-based):
    ``uniform(0, min(backoff_max_s, backoff_s * 2**(attempt-1)))``."""
    doublings = min(max(0, attempt - 1), _MAX_DOUBLINGS)
    ceiling = max(0.0, min(backoff_max_s, backoff_s * 2 ** doublings))
    return uniform(0.0, ceiling)


def retry_delay(exc: BaseException | None, attempt: int, *, backoff_s: float = BACKOFF_S,
                backoff_max_s: float = BACKOFF_MAX_S, retry_after_max_s: float = RETRY_AFTER_MAX_S,
                uniform: Uniform = random.uniform) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): the server's
    Retry-After when the error carries one (capped at ``retry_after_max_s``), else
    :func:`backoff_delay`."""
    asked = retry_after_of(exc)
    if asked is not None:
        return min(asked, retry_after_max_s)
    return backoff_delay(attempt, backoff_s=backoff_s, backoff_max_s=backoff_max_s, uniform=uniform)


# --------------------------------------------------------------------------- attempts


def attempts_of(exc: BaseException, default: int = 1) -> int:
    """The number of attempts recorded on an error by :meth:`RetryPolicy.call` / ``acall``."""
    n = getattr(exc, "attempts", None)
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else default


def _record_attempts(exc: BaseException, attempts: int) -> None:
    try:
        exc.attempts = attempts  # type: ignore[attr-defined]
    except AttributeError:  # an exception type that cannot hold attributes
        pass


def _retry_info(state: RetryCallState) -> tuple[int, BaseException, float]:
    exc = state.outcome.exception() if state.outcome else None
    assert exc is not None  # tenacity only sleeps after a failed attempt here
    return state.attempt_number, exc, float(state.upcoming_sleep)


# --------------------------------------------------------------------------- the policy


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts, how long between them, and what is worth another one.

    ``attempts`` counts the first try (``retries + 1``); ``verdict`` is the caller's say on
    its own exception types (see :func:`is_transient`); ``uniform`` is the jitter's random
    source (inject a fixed one in tests)."""

    attempts: int = DEFAULT_ATTEMPTS
    backoff_s: float = BACKOFF_S
    backoff_max_s: float = BACKOFF_MAX_S
    retry_after_max_s: float = RETRY_AFTER_MAX_S
    verdict: Verdict | None = None
    uniform: Uniform = field(default=random.uniform, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "attempts", max(1, int(self.attempts)))

    def is_transient(self, exc: BaseException) -> bool:
        return is_transient(exc, self.verdict)

    def delay(self, exc: BaseException | None, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` that raised ``exc``."""
        return retry_delay(exc, attempt, backoff_s=self.backoff_s, backoff_max_s=self.backoff_max_s,
                           retry_after_max_s=self.retry_after_max_s, uniform=self.uniform)

    def wait(self, state: RetryCallState) -> float:
        """The tenacity ``wait``: :meth:`delay` of the attempt that just failed."""
        exc = state.outcome.exception() if state.outcome else None
        return self.delay(exc, state.attempt_number)

    def _kwargs(self) -> dict[str, Any]:
        return dict(stop=stop_after_attempt(self.attempts), wait=self.wait,
                    retry=retry_if_exception(self.is_transient), reraise=True)

    def retrying(self, *, on_retry: OnRetry | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> Retrying:
        """A tenacity ``Retrying`` (it re-raises the last error when it gives up)."""
        before_sleep = None
        if on_retry is not None:
            def before_sleep(state: RetryCallState) -> None:
                on_retry(*_retry_info(state))
        return Retrying(sleep=sleep, before_sleep=before_sleep, **self._kwargs())

    def aretrying(self, *, on_retry: OnRetry | None = None,
                  sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> AsyncRetrying:
        """A tenacity ``AsyncRetrying``; ``on_retry`` may be sync or async."""
        before_sleep = None
        if on_retry is not None:
            async def before_sleep(state: RetryCallState) -> None:
                maybe = on_retry(*_retry_info(state))
                if inspect.isawaitable(maybe):
                    await maybe
        return AsyncRetrying(sleep=sleep, before_sleep=before_sleep, **self._kwargs())

    def call(self, fn: Callable[[], T], *, on_retry: OnRetry | None = None,
             sleep: Callable[[float], None] = time.sleep) -> tuple[T, int]:
        """``(fn(), attempts)``, retrying what is transient. The error it gives up with is
        the last one raised, with ``attempts`` set on it when it can hold it. The first
        attempt runs without the retry machinery (the common case costs a plain call)."""
        try:
            return fn(), 1
        except Exception as exc:
            first = self._first_failure(exc)
        made = 1

        def attempt() -> T:
            nonlocal made, first
            if first is not None:  # tenacity's attempt 1 is the one that already failed
                exc, first = first, None
                raise exc
            made += 1
            return fn()

        try:
            result = self.retrying(on_retry=on_retry, sleep=sleep)(attempt)
        except Exception as exc:
            _record_attempts(exc, made)
            raise
        return result, made

    def _first_failure(self, exc: Exception) -> Exception:
        """The first attempt's error, re-raised at once when it is not worth another attempt."""
        if self.attempts <= 1 or not self.is_transient(exc):
            _record_attempts(exc, 1)
            raise exc
        return exc

    async def acall(self, fn: Callable[[], Awaitable[T]], *, on_retry: OnRetry | None = None,
                    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> tuple[T, int]:
        """Async :meth:`call`: ``(await fn(), attempts)``."""
        try:
            return await fn(), 1
        except Exception as exc:
            first = self._first_failure(exc)
        made = 1

        async def attempt() -> T:
            nonlocal made, first
            if first is not None:  # tenacity's attempt 1 is the one that already failed
                exc, first = first, None
                raise exc
            made += 1
            return await fn()

        try:
            result = await self.aretrying(on_retry=on_retry, sleep=sleep)(attempt)
        except Exception as exc:
            _record_attempts(exc, made)
            raise
        return result, made


__all__ = [
    "BACKOFF_MAX_S", "BACKOFF_S", "DEFAULT_ATTEMPTS", "RETRY_AFTER_MAX_S", "TRANSIENT_STATUSES",
    "OnRetry", "RetryPolicy", "TransientResponse", "Verdict", "attempts_of", "backoff_delay",
    "is_transient", "raise_for_transient", "request_was_invalid", "retry_after_of", "retry_after_s", "retry_delay",
    "status_of", "transient_status",
]
