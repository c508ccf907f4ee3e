"""An OpenAI-compatible chat client and JSON replies checked against pydantic models.

Two layers, each usable alone:

- :class:`ChatClient` / :class:`AsyncChatClient`: ``POST {base_url}/chat/completions``
  (``base_url`` like ``http://127.0.0.1:8000/v1``), bearer auth, a timeout, and retries
  on connection errors, timeouts, 429 and 5xx (the policy of :mod:`tasks.common.retry`:
  exponential backoff with full jitter; ``Retry-After`` / ``retry-after-ms`` honoured,
  capped). Any other 4xx fails at once. Every failure is an :class:`LLMError` with a one-line message that never holds
  the API key. ``chat()`` returns the assistant message as a dict plus ``usage``.
- :func:`ask_json` / :func:`aask_json`: ask for a JSON object matching a pydantic model
  (``response_format`` json_schema, non-strict), parse it (code fences stripped),
  validate it, and on bad JSON or a validation error ask again with a corrective message
  that quotes the error; :class:`InvalidReply` (reason + raw reply) after the last try.
  A server that refuses the response format (400/422, or a 500 whose body is a validation
  error naming it: llama.cpp, several OpenAI-compatible servers) is asked again with
  ``json_object`` and the schema in the prompt, then with the schema in the prompt alone;
  what an endpoint (base URL + model) took is remembered for the process
  (:func:`endpoint_format`), so later asks start there.

:func:`make_llm_client` builds a client from the settings (``REPLAY_LLM_*``), or returns
None when no model endpoint is configured.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import httpx
import orjson
from pydantic import (
    BaseModel,
    SecretStr,
    ValidationError,
)

from tasks.common.errors import ReplayError
from tasks.common.llm_context import (
    CHARS_PER_TOKEN,
    fit_messages,
    known_context,
    overflow,
    ratio_from,
    remember_context,
    reply_room,
)
from tasks.common.retry import (
    BACKOFF_MAX_S,
    BACKOFF_S,
    RETRY_AFTER_MAX_S,
    TRANSIENT_STATUSES,
    RetryPolicy,
    TransientResponse,
    attempts_of,
    raise_for_transient,
)
from tasks.common.retry import retry_after_s as retry_after_s  # re-exported: agents, tests
from tasks.common.secrets import scrub, scrub_url, url_secrets
from tasks.common.text import one_line

log = logging.getLogger("replay.llm")

M = TypeVar("M", bound=BaseModel)

DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MAX_RETRIES = 3  # retries after the first attempt (4 attempts in all)
# BACKOFF_S, BACKOFF_MAX_S, RETRY_AFTER_MAX_S: the defaults of tasks.common.retry
RETRY_STATUSES = TRANSIENT_STATUSES  # 429 and 5xx


# --------------------------------------------------------------------------- errors


class LLMError(ReplayError):
    """A one-line, user-facing failure talking to the model (never carries the API key).

    ``status`` is the HTTP status when the server answered, ``attempts`` how many requests
    were made."""

    def __init__(self, message: str, *, status: int | None = None, attempts: int = 1) -> None:
        super().__init__(one_line(scrub(message)))
        self.status = status
        self.attempts = attempts

    def __reduce__(self) -> Any:  # survives pickling (Prefect stores task exceptions)
        return (_rebuild, (type(self), self.__dict__, self.args))


class InvalidReply(LLMError):
    """The model kept answering something that is not the JSON asked for.

    ``reason`` says what was wrong with the last reply, ``raw`` is that reply's text and
    ``attempts`` lists ``(reason, raw)`` for every try. The caller keeps it as a
    ``GenerationFailure(reason=..., raw=...)`` row."""

    def __init__(self, reason: str, raw: str | None, *,
                 attempts: Sequence[tuple[str, str | None]] = ()) -> None:
        self.reason = one_line(scrub(reason))
        self.raw = None if raw is None else scrub(raw)  # kept for review: the key shapes masked
        self.tries = list(attempts)
        super().__init__(f"invalid reply: {self.reason}", attempts=max(1, len(self.tries)))


class ContextOverflow(LLMError):
    """The request does not fit the model's context window, even cut (one line)."""

    ended_reason = "context_overflow"  # of a chat this ends (the simulated user's model)


def _rebuild(cls: type[LLMError], state: dict[str, Any], args: tuple[Any, ...]) -> LLMError:
    err = cls.__new__(cls)
    err.args = args
    err.__dict__.update(state)
    return err




# --------------------------------------------------------------------------- clients


def error_detail(response: httpx.Response) -> str:
    """The server's error message: OpenAI's ``{"error": {"message"}}``, ``detail``, or text."""
    text = response.text.strip()
    detail: Any = text
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and err.get("message"):
            detail = err["message"]
        elif isinstance(err, str):
            detail = err
        elif "detail" in body:
            detail = body["detail"]
        elif "message" in body:
            detail = body["message"]
    if not isinstance(detail, str):
        detail = json.dumps(detail)
    return one_line(detail, 200) or "(empty body)"


def _secret_value(api_key: str | SecretStr | None) -> str | None:
    if isinstance(api_key, SecretStr):
        api_key = api_key.get_secret_value()
    return api_key or None


def _cap_reply(params: dict[str, Any], messages: Sequence[dict[str, Any]], context_tokens: int,
               chars_per_token: float = CHARS_PER_TOKEN) -> None:
    """``params["max_tokens"]`` lowered to the room the context leaves after ``messages``."""
    room = reply_room(messages, context_tokens, params.get("max_tokens"), chars_per_token)
    if room is not None:
        params["max_tokens"] = room


def _lowered_reply(params: dict[str, Any], messages: Sequence[dict[str, Any]], context_tokens: int,
                   chars_per_token: float) -> bool:
    """Whether ``params["max_tokens"]`` was lowered to fit ``messages`` in the context."""
    asked = params.get("max_tokens")
    _cap_reply(params, messages, context_tokens, chars_per_token)
    return params.get("max_tokens") != asked


class _ChatBase:
    """What the sync and async clients share: request building, retry policy, errors."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        api_key: str | SecretStr | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff_s: float = BACKOFF_S,
        backoff_max_s: float = BACKOFF_MAX_S,
        retry_after_max_s: float = RETRY_AFTER_MAX_S,
        headers: dict[str, str] | None = None,
        context_tokens: int | None = None,
    ) -> None:
        base_url = (base_url or "").strip().rstrip("/")
        if not re.match(r"^https?://[^/\s]+", base_url):
            raise LLMError(
                f"the LLM base URL {base_url!r} is not an http(s) URL; set REPLAY_LLM_BASE_URL "
                "to the OpenAI-compatible root, e.g. http://127.0.0.1:8000/v1"
            )
        self.base_url = base_url
        self.model = model
        self.timeout = float(timeout)
        self.max_retries = max(0, int(max_retries))
        self.context_tokens = int(context_tokens) if context_tokens else None
        self.backoff_s = float(backoff_s)
        self.backoff_max_s = float(backoff_max_s)
        self.retry_after_max_s = float(retry_after_max_s)
        self._api_key = _secret_value(api_key)
        self._headers = {"Accept": "application/json", "Content-Type": "application/json",
                         **(headers or {})}
        if self._api_key:
            self._headers["Authorization"] = f"Bearer {self._api_key}"

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}(base_url={scrub_url(self.base_url)!r}, model={self.model!r})"

    @property
    def attempts(self) -> int:
        return self.max_retries + 1

    # -- request

    def _payload(self, messages: Sequence[dict[str, Any]], model: str | None,
                 tools: Sequence[dict[str, Any]] | None, response_format: dict[str, Any] | None,
                 temperature: float | None, params: dict[str, Any]) -> dict[str, Any]:
        model = model or self.model
        if not model:
            raise LLMError("no model to ask: pass model= or set REPLAY_LLM_MODEL")
        payload: dict[str, Any] = {"model": model, "messages": list(messages)}
        if temperature is not None:
            payload["temperature"] = temperature
        if tools:
            payload["tools"] = list(tools)
        if response_format is not None:
            payload["response_format"] = response_format
        payload.update(params)
        return payload

    # -- the model's context window (tasks.common.llm_context)

    def _context(self, model: str | None) -> int | None:
        return self.context_tokens or known_context((self.base_url, model or self.model or ""))

    def _fit(self, messages: Sequence[dict[str, Any]], model: str | None,
             params: dict[str, Any]) -> Sequence[dict[str, Any]]:
        """``messages`` cut to the context known for this endpoint (as they are when none is)."""
        n = self._context(model)
        if not n:
            return messages
        fitted = fit_messages(messages, n, params.get("max_tokens"))
        if fitted is None:
            raise ContextOverflow(f"the request does not fit the model's context of {n} tokens, "
                                  "even with its longest messages cut", status=400)
        _cap_reply(params, fitted, n)
        return fitted

    def _refit(self, err: LLMError, messages: Sequence[dict[str, Any]], model: str | None,
               params: dict[str, Any], tries: int) -> Sequence[dict[str, Any]]:
        """After a refusal: ``messages`` cut to the context the server stated (remembered for
        the endpoint), or ``err`` raised again (as ContextOverflow when it was one)."""
        found = overflow(err.status, str(err))
        if found is None:
            raise err
        fitted = None
        if found.context_tokens and tries < 3:
            remember_context((self.base_url, model or self.model or ""), found.context_tokens)
            ratio = ratio_from(messages, found.prompt_tokens)
            fitted = fit_messages(messages, found.context_tokens, params.get("max_tokens"), ratio)
            if fitted is messages and _lowered_reply(params, messages, found.context_tokens, ratio):
                return messages  # the prompt fits: the reply cap asked was the excess
            if fitted is messages:  # the estimate said it fits, the server did not: count harder
                fitted = fit_messages(messages, found.context_tokens, params.get("max_tokens"), ratio / 2)
        if fitted is None or fitted is messages:
            raise ContextOverflow(f"{err} (the request could not be cut to fit)", status=err.status,
                                  attempts=err.attempts) from None
        _cap_reply(params, fitted, found.context_tokens, ratio)
        log.info("LLM at %s: context of %s tokens exceeded; asking again with the prompt cut",
                 scrub_url(self.base_url), found.context_tokens)
        return fitted

    # -- retry policy (tasks.common.retry)

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(attempts=self.attempts, backoff_s=self.backoff_s,
                           backoff_max_s=self.backoff_max_s,
                           retry_after_max_s=self.retry_after_max_s)

    def _on_retry(self, attempt: int, exc: BaseException, delay: float) -> None:
        what = str(exc) if isinstance(exc, TransientResponse) else type(exc).__name__
        log.info("LLM at %s: %s on attempt %d/%d; retrying in %.2f s",
                 scrub_url(self.base_url), scrub(what, self._api_key), attempt, self.attempts, delay)

    # -- answers and failures

    def _error(self, message: str, **kw: Any) -> LLMError:
        return LLMError(scrub(message, self._api_key, *url_secrets(self.base_url)), **kw)

    def _exhausted(self, exc: BaseException) -> LLMError:
        n = attempts_of(exc, self.attempts)
        if isinstance(exc, TransientResponse):
            r = exc.response
            return self._error(f"LLM at {self.base_url} kept failing: HTTP {r.status_code} "
                               f"{error_detail(r)} (after {n} attempts)",
                               status=r.status_code, attempts=n)
        if isinstance(exc, httpx.TimeoutException):
            return self._error(
                f"LLM at {self.base_url} did not answer within {self.timeout:g} s "
                f"({type(exc).__name__}, after {n} attempts); check the server or raise "
                "REPLAY_LLM_TIMEOUT_S", attempts=n)
        if isinstance(exc, httpx.UnsupportedProtocol):
            return self._error(f"bad LLM URL {self.base_url}: {exc}; check REPLAY_LLM_BASE_URL")
        return self._error(
            f"cannot reach the LLM at {self.base_url}: {type(exc).__name__}: {exc} "
            f"(after {n} attempts); is the server up and REPLAY_LLM_BASE_URL right?",
            attempts=n)

    def _check(self, response: httpx.Response, model: str, attempts: int) -> dict[str, Any]:
        status = response.status_code
        if status in (401, 403):
            if not self._api_key:
                raise self._error(f"LLM at {self.base_url} refused the request (HTTP {status}: "
                                  f"{error_detail(response)}); it needs an API key: set "
                                  "REPLAY_LLM_API_KEY", status=status, attempts=attempts)
            raise self._error(f"LLM at {self.base_url} refused the API key (HTTP {status}: "
                              f"{error_detail(response)}); check REPLAY_LLM_API_KEY",
                              status=status, attempts=attempts)
        if status == 404:
            raise self._error(
                f"LLM at {self.base_url} has no chat completions endpoint or no model {model!r} "
                f"(HTTP 404: {error_detail(response)}); REPLAY_LLM_BASE_URL should be the API root "
                "ending in /v1, REPLAY_LLM_MODEL a model it serves",
                status=status, attempts=attempts)
        if status >= 400:
            raise self._error(f"LLM at {self.base_url} rejected the request for model {model!r} "
                              f"(HTTP {status}: {error_detail(response)})",
                              status=status, attempts=attempts)
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise self._error(
                f"LLM at {self.base_url} answered non-JSON (HTTP {status}, "
                f"{response.headers.get('content-type', '?')}): {response.text[:120]!r}; is it "
                "an OpenAI-compatible /v1 root?", status=status, attempts=attempts) from None
        try:
            choice = body["choices"][0]
            message = choice["message"]
            if not isinstance(message, dict):
                raise TypeError
        except (KeyError, IndexError, TypeError):
            raise self._error(f"LLM at {self.base_url} answered without choices[0].message: "
                              f"{response.text[:120]!r}", status=status,
                              attempts=attempts) from None
        reply: dict[str, Any] = {
            "role": message.get("role") or "assistant",
            "content": message.get("content"),
            "tool_calls": list(message.get("tool_calls") or []),
            "usage": dict(body.get("usage") or {}),
            "finish_reason": choice.get("finish_reason"),
            "model": body.get("model") or model,
        }
        if message.get("refusal"):
            reply["refusal"] = message["refusal"]
        return reply

    @contextlib.contextmanager
    def _failures(self) -> Iterator[None]:
        """A request's failure as an LLMError: retries exhausted, or another HTTP error."""
        try:
            yield
        except (TransientResponse, httpx.TransportError) as e:
            raise self._exhausted(e) from None
        except httpx.HTTPError as e:
            raise self._error(f"LLM request to {self.base_url} failed: {type(e).__name__}: {e}",
                              attempts=attempts_of(e)) from None


class ChatClient(_ChatBase):
    """Sync OpenAI-compatible chat completions client; close it (or use ``with``)."""

    def __init__(self, base_url: str, **kw: Any) -> None:
        super().__init__(base_url, **kw)
        self._http = httpx.Client(base_url=self.base_url + "/", headers=self._headers,
                                  timeout=httpx.Timeout(self.timeout))

    def chat(self, messages: Sequence[dict[str, Any]], *, model: str | None = None,
             tools: Sequence[dict[str, Any]] | None = None,
             response_format: dict[str, Any] | None = None, temperature: float | None = 0,
             **params: Any) -> dict[str, Any]:
        """One chat completion. Returns ``{"role", "content", "tool_calls" (list),
        "usage" (the server's dict, may be empty), "finish_reason", "model"}`` (and
        ``"refusal"`` when the model refused). ``temperature=None`` leaves it out; extra
        ``params`` (max_tokens, seed, ...) go into the request body as they are. Messages too
        long for the model's context are cut to fit (:mod:`tasks.common.llm_context`)."""
        messages = self._fit(messages, model, params)
        for tries in range(1, 4):
            try:
                return self._send(messages, model, tools, response_format, temperature, params)
            except ContextOverflow:
                raise
            except LLMError as e:
                messages = self._refit(e, messages, model, params, tries)
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(self, messages: Sequence[dict[str, Any]], model: str | None, tools: Any,
              response_format: dict[str, Any] | None, temperature: float | None,
              params: dict[str, Any]) -> dict[str, Any]:
        payload = self._payload(messages, model, tools, response_format, temperature, params)
        body = orjson.dumps(payload)
        with self._failures():
            response, attempts = self.retry_policy.call(
                lambda: raise_for_transient(self._http.post("chat/completions", content=body)),
                on_retry=self._on_retry)
        return self._check(response, payload["model"], attempts)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AsyncChatClient(_ChatBase):
    """Async twin of :class:`ChatClient` (``await client.chat(...)``); ``await aclose()``
    or ``async with``."""

    def __init__(self, base_url: str, **kw: Any) -> None:
        super().__init__(base_url, **kw)
        self._http = httpx.AsyncClient(base_url=self.base_url + "/", headers=self._headers,
                                       timeout=httpx.Timeout(self.timeout))

    async def chat(self, messages: Sequence[dict[str, Any]], *, model: str | None = None,
                   tools: Sequence[dict[str, Any]] | None = None,
                   response_format: dict[str, Any] | None = None,
                   temperature: float | None = 0, **params: Any) -> dict[str, Any]:
        """See :meth:`ChatClient.chat`."""
        messages = self._fit(messages, model, params)
        for tries in range(1, 4):
            try:
                return await self._send(messages, model, tools, response_format, temperature, params)
            except ContextOverflow:
                raise
            except LLMError as e:
                messages = self._refit(e, messages, model, params, tries)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(self, messages: Sequence[dict[str, Any]], model: str | None, tools: Any,
                    response_format: dict[str, Any] | None, temperature: float | None,
                    params: dict[str, Any]) -> dict[str, Any]:
        payload = self._payload(messages, model, tools, response_format, temperature, params)
        body = orjson.dumps(payload)

        async def post() -> httpx.Response:
            return raise_for_transient(await self._http.post("chat/completions", content=body))

        with self._failures():
            response, attempts = await self.retry_policy.acall(post, on_retry=self._on_retry)
        return self._check(response, payload["model"], attempts)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncChatClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


def history_message(reply: dict[str, Any]) -> dict[str, Any]:
    """The part of a ``chat()`` reply to append to ``messages`` for the next request
    (role, content, and tool_calls only when there are some)."""
    msg: dict[str, Any] = {"role": "assistant", "content": reply.get("content") or ""}  # llama.cpp refuses null
    if reply.get("tool_calls"):
        msg["tool_calls"] = reply["tool_calls"]
    return msg


def make_llm_client(settings: Any, *, asynchronous: bool = False
                    ) -> ChatClient | AsyncChatClient | None:
    """A client from ``settings.llm_*`` (REPLAY_LLM_BASE_URL, _MODEL, _API_KEY, _TIMEOUT_S,
    _MAX_RETRIES), or None when REPLAY_LLM_BASE_URL is not set (the offline writer is used).
    Raises LLMError when a base URL is set without a model."""
    base_url = getattr(settings, "llm_base_url", None)
    if not base_url:
        return None
    model = getattr(settings, "llm_model", None)
    if not model:
        raise LLMError("REPLAY_LLM_BASE_URL is set but REPLAY_LLM_MODEL is not; set the model "
                       "name the server serves (or unset REPLAY_LLM_BASE_URL to write offline)")
    timeout = getattr(settings, "llm_timeout_s", None)
    retries = getattr(settings, "llm_max_retries", None)
    context = getattr(settings, "llm_context_tokens", None)
    cls = AsyncChatClient if asynchronous else ChatClient
    return cls(
        str(base_url), model=model, api_key=getattr(settings, "llm_api_key", None),
        timeout=DEFAULT_TIMEOUT_S if timeout is None else float(timeout),
        max_retries=DEFAULT_MAX_RETRIES if retries is None else int(retries),
        context_tokens=int(context) if context else None,
    )


# --------------------------------------------------------------------------- JSON replies

_FENCE = re.compile(r"```[ \t]*[A-Za-z0-9_-]*[ \t]*\n?(.*?)\n?[ \t]*```", re.S)


def parse_json_text(text: str) -> Any:
    """JSON from a model's text: code fences stripped; if prose surrounds one object, the
    outermost ``{...}``. Raises json.JSONDecodeError (from the full text) otherwise."""
    s = (text or "").strip()
    fenced = _FENCE.search(s)
    if fenced:
        s = fenced.group(1).strip()
    try:
        return json.loads(s, strict=False)  # raw newlines inside strings: small models write them
    except json.JSONDecodeError as first:
        i, j = s.find("{"), s.rfind("}")
        if 0 <= i < j and (i > 0 or j < len(s) - 1):
            try:
                return json.loads(s[i:j + 1], strict=False)
            except json.JSONDecodeError:
                pass
        raise first


def _descriptions(schema: Any) -> list[str]:
    """The ``description`` texts of a JSON schema's fields (30 characters or more)."""
    if isinstance(schema, dict):
        own = [schema["description"]] if isinstance(schema.get("description"), str) else []
        return [d for d in own if len(d) >= 30] + [d for v in schema.values() for d in _descriptions(v)]
    if isinstance(schema, list):
        return [d for v in schema for d in _descriptions(v)]
    return []


def _strings(data: Any) -> Iterator[str]:
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict):
        for v in data.values():
            yield from _strings(v)
    elif isinstance(data, list):
        for v in data:
            yield from _strings(v)


def copied_description(data: Any, schema: Any) -> str | None:
    """The first 30 characters of a field's description that ``data`` copies as a value (a small
    model copies the schema it was shown: SmolLM2 sent "your next message to the agent, written in
    character" as the simulated user's message), or None."""
    heads = {d[:30].lower(): d for d in _descriptions(schema)}
    for text in _strings(data):
        low = text.lower()
        for head in heads:
            if head in low:
                return head
    return None


def validation_summary(err: ValidationError, limit: int = 8) -> str:
    """``loc: msg; loc: msg`` for the first ``limit`` errors of a pydantic error."""
    errors = err.errors(include_url=False)
    parts = []
    for e in errors[:limit]:
        loc = ".".join(str(x) for x in e["loc"]) or "(the object)"
        parts.append(f"{loc}: {e['msg']}")
    if len(errors) > limit:
        parts.append(f"and {len(errors) - limit} more")
    return "; ".join(parts)


def schema_name(model_cls: type[BaseModel]) -> str:
    """An OpenAI-acceptable ``json_schema.name`` (``[a-zA-Z0-9_-]{1,64}``)."""
    return re.sub(r"[^a-zA-Z0-9_-]", "_", model_cls.__name__)[:64] or "reply"


# What each endpoint (base URL, model) took for structured output, learnt in this process:
# "json_schema" (OpenAI's response_format), "json_object" (JSON mode, the schema in the prompt
# and as llama.cpp's ``schema`` extension), or "prompt" (no response_format: the schema in the
# prompt, the reply validated and repaired). An endpoint starts with "json_schema".
FORMATS = ("json_schema", "json_object", "prompt")
_endpoint_formats: dict[tuple[str, str], str] = {}
_formats_lock = threading.Lock()


def endpoint_format(endpoint: tuple[str, str] | None) -> str:
    """The structured-output format to try first at ``endpoint`` (base URL, model)."""
    with _formats_lock:
        return _endpoint_formats.get(endpoint, FORMATS[0]) if endpoint else FORMATS[0]


def remember_format(endpoint: tuple[str, str] | None, fmt: str) -> None:
    if endpoint:
        with _formats_lock:
            _endpoint_formats[endpoint] = fmt


def forget_formats() -> None:
    """Forget what every endpoint took (tests)."""
    with _formats_lock:
        _endpoint_formats.clear()


_FORMAT_WORDS = ("response_format", "json_schema", "json_object", "response format")


def format_refused(err: LLMError) -> bool:
    """Whether a failed request was refused for its ``response_format``: HTTP 400, 422, or a
    500 whose body is a validation error (llama.cpp), naming the response format."""
    text = str(err).lower()
    return err.status in (400, 422, 500) and any(w in text for w in _FORMAT_WORDS)


# large size limits: checked here by pydantic, not sent. llama.cpp turns a schema into a grammar and
# a long bounded repetition (maxLength 4000) exceeds its limits: "failed to parse grammar", and its
# server process aborts; so does a regex its grammar cannot express (``\S``): patterns are not sent
_SIZE_LIMITS = frozenset({"maxLength", "minLength", "maxItems", "minItems"})
SENT_LIMIT_MAX = 32


def server_schema(schema: Any) -> Any:
    """The JSON schema sent to the server: ``schema`` without its size limits above
    :data:`SENT_LIMIT_MAX` and its patterns (the reply is validated against the full model here),
    and every property of an object required. A field with a default is optional in pydantic's
    schema, and a grammar-constrained model then writes ``{}`` (SmolLM2-135M did, every time);
    OpenAI's strict mode asks for every property too."""
    if isinstance(schema, dict):
        out = {k: server_schema(v) for k, v in schema.items()
               if not (k in _SIZE_LIMITS and isinstance(v, int) and v > SENT_LIMIT_MAX)
               and not (k == "pattern" and isinstance(v, str))}
        props = schema.get("properties")
        if schema.get("type") == "object" and isinstance(props, dict) and props:
            out["required"] = list(dict.fromkeys([*schema.get("required", []), *props]))
        return out
    if isinstance(schema, list):
        return [server_schema(v) for v in schema]
    return schema


class _JsonAsk:
    """The state of one ask_json conversation (shared by the sync and async loops)."""

    def __init__(self, messages: Sequence[dict[str, Any]], model_cls: type[BaseModel],
                 retries: int, name: str | None, endpoint: tuple[str, str] | None = None,
                 stats: dict[str, Any] | None = None) -> None:
        self.model_cls = model_cls
        self.stats = stats if stats is not None else {}
        self.messages = [dict(m) for m in messages]
        self.repair: list[dict[str, Any]] = []  # the last bad reply and what to correct
        self.total = max(0, int(retries)) + 1
        self.name = name or schema_name(model_cls)
        schema = model_cls.model_json_schema()
        # the class docstring is for developers: a small model copies it into its reply (SmolLM2
        # answered "What the model answers for each user turn." as the user's message)
        schema.pop("description", None)
        self.schema = server_schema(schema)
        self.endpoint = endpoint
        self.format = FORMATS[0]
        self.response_format: dict[str, Any] | None = {
            "type": "json_schema",
            "json_schema": {"name": self.name, "schema": self.schema, "strict": False},
        }
        self.tries: list[tuple[str, str | None]] = []
        self.usage: list[dict[str, Any]] = []
        for _ in range(FORMATS.index(endpoint_format(endpoint))):
            self._step_down()

    def _step_down(self) -> None:
        """json_schema -> json_object (the schema into the prompt) -> prompt alone."""
        if self.format == "json_schema":
            self.messages.append({"role": "user", "content": (
                "Reply with one JSON object that matches this JSON schema, and nothing else:\n"
                + json.dumps(self.schema, separators=(",", ":")))})
            # "schema": llama.cpp's server constrains JSON mode to it; others ignore it
            self.response_format = {"type": "json_object", "schema": self.schema}
            self.format = "json_object"
        else:
            self.response_format = None
            self.format = "prompt"

    def downgrade(self, err: LLMError) -> bool:
        """After a refusal that blames response_format (:func:`format_refused`): the next
        format down, remembered for the endpoint. False when there is nothing left to drop."""
        if not format_refused(err) or self.response_format is None:
            return False
        self._step_down()
        remember_format(self.endpoint, self.format)
        log.info("LLM refused response_format (%s); asking with %s", err, self.format)
        return True

    def take(self, reply: dict[str, Any]) -> BaseModel | None:
        """The validated model, or None after queueing the corrective message."""
        self.usage.append(reply.get("usage") or {})
        raw = reply.get("content")
        if not isinstance(raw, str) or not raw.strip():
            reason = ("the model refused: " + one_line(reply["refusal"], 200)
                      if reply.get("refusal") else "the reply was empty (no content)")
        else:
            result, reason = self._check(raw)
            if result is not None:
                remember_format(self.endpoint, self.format)
                self.stats.update(replies=len(self.tries) + 1, format=self.format)
                return result
        self.tries.append((reason, raw))
        # only the latest bad reply is shown: a prompt holding every earlier one grows past a small
        # model's context (SmolLM2's third try was 3,446 tokens of its own failures and the question)
        self.repair = [{"role": "assistant", "content": raw or ""}, {"role": "user", "content": (
            f"Your previous reply could not be used: {reason}. Reply again with only the "
            f"corrected JSON object for {self.name} (no code fences, no text around it), "
            "keeping everything that was right.")}]
        return None

    def _check(self, raw: str) -> tuple[BaseModel | None, str]:
        """The validated model of a reply's text, or None and why it cannot be used."""
        try:
            data = parse_json_text(raw)
        except json.JSONDecodeError as e:
            return None, f"it is not valid JSON ({e.msg} at line {e.lineno} column {e.colno})"
        try:
            result = self.model_cls.model_validate(data)
        except ValidationError as e:
            return None, f"it does not match the schema: {validation_summary(e)}"
        copied = copied_description(data, self.schema)
        if copied is not None:
            return None, f"it copies a field's description ('{copied}...') instead of a value"
        return result, ""

    @property
    def done(self) -> bool:
        return len(self.tries) >= self.total

    def request(self, model: str | None, temperature: float | None, params: dict[str, Any]) -> dict[str, Any]:
        """The next request's arguments for ``client.chat``."""
        return {"messages": [*self.messages, *self.repair], "model": model, "response_format": self.response_format,
                "temperature": temperature, **params}

    @contextlib.contextmanager
    def attempt(self) -> Iterator[None]:
        """Around one request: a 400 that blames response_format is absorbed (the next
        request asks without it); any other LLMError passes."""
        try:
            yield
        except LLMError as e:
            if isinstance(e, InvalidReply) or not self.downgrade(e):
                raise

    def fail(self) -> InvalidReply:
        self.stats.update(replies=len(self.tries), format=self.format)
        reason, raw = self.tries[-1]
        return InvalidReply(f"{reason} (after {len(self.tries)} attempts)", raw,
                            attempts=self.tries)


def _endpoint(client: Any, model: str | None) -> tuple[str, str] | None:
    base_url = getattr(client, "base_url", None)
    model = model or getattr(client, "model", None)
    return (str(base_url), str(model)) if base_url and model else None


def ask_json(client: ChatClient, messages: Sequence[dict[str, Any]], model_cls: type[M], *,
             retries: int = 2, model: str | None = None, name: str | None = None,
             temperature: float | None = 0, stats: dict[str, Any] | None = None, **params: Any) -> M:
    """Ask for a JSON object matching ``model_cls``; validated instance, or InvalidReply
    after ``retries + 1`` replies that were not valid JSON / did not validate (each retry
    quotes the error). LLMError (transport, HTTP) passes through unchanged. ``stats``, when
    given, receives ``replies`` (1: valid the first time) and ``format`` (what the server took)."""
    job = _JsonAsk(messages, model_cls, retries, name, _endpoint(client, model), stats)
    while not job.done:
        with job.attempt():
            if (result := job.take(client.chat(**job.request(model, temperature, params)))) is not None:
                return result  # type: ignore[return-value]
    raise job.fail()


async def aask_json(client: AsyncChatClient, messages: Sequence[dict[str, Any]],
                    model_cls: type[M], *, retries: int = 2, model: str | None = None,
                    name: str | None = None, temperature: float | None = 0,
                    stats: dict[str, Any] | None = None, **params: Any) -> M:
    """Async :func:`ask_json`."""
    job = _JsonAsk(messages, model_cls, retries, name, _endpoint(client, model), stats)
    while not job.done:
        with job.attempt():
            if (result := job.take(await client.chat(**job.request(model, temperature, params)))) is not None:
                return result  # type: ignore[return-value]
    raise job.fail()
