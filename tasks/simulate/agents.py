"""The agent under test: load it from ``--agent``, ask it one turn, retry what is transient.

Async-first and pure of storage (the simulate executor calls it):

- :func:`load_agent` turns a ref into an :class:`Agent` (``await agent.respond(input)``,
  ``await agent.aclose()``):

  - ``module:function`` or ``path/to/file.py:function`` (``module:obj.attr`` works too): a
    Python callable, sync or async, taking an ``AgentInput`` -- the shape of Future AGI's chat
    simulation SDK callbacks. A sync one runs in a worker thread so it never blocks the event
    loop. It may return a ``str``, an ``AgentResponse``, a dict with its fields, or any object
    with ``content`` / ``tool_calls`` / ``tool_responses`` / ``metadata`` attributes (the SDK's
    own ``AgentResponse``); :func:`normalize_response` makes an ``AgentResponse`` of it.
  - ``http(s)://.../v1``: an OpenAI-compatible chat completions endpoint. Replay sends the
    system prompt and tools of the agent definition and runs the tool loop itself: every tool
    call is answered by ``await input.tools.call(name, arguments)`` (production's recorded
    results), or with an error result under ``--tools live`` (``input.tools`` is None), until
    the model answers in text or :data:`MAX_TOOL_ROUNDS` requests were made.

- :func:`call_with_retries` runs one turn under a timeout and retries what
  :func:`is_transient` calls transient (timeouts, connection errors, HTTP 429 and 5xx) after
  :func:`retry_delay` (exponential backoff, full jitter, a server's Retry-After honoured):
  the policy of :mod:`tasks.common.retry`, with :class:`AgentError`'s ``transient`` deciding
  for the agent's own errors. Anything else is raised at once. The HTTP agent makes one
  request per round and never retries by itself, so retries are not multiplied.

Errors are one line: :class:`AgentLoadError` (a ref that cannot be loaded: what failed and
what to do), :class:`AgentReplyError` (a malformed reply, not transient),
:class:`AgentToolLoopError` (still asking for tools after the last round),
:class:`AgentHTTPError` (the endpoint answered an error status), :class:`AgentUnavailable`
(it cannot be reached) and :class:`AgentTimeout` (a ``TimeoutError``: it did not answer in time).
"""

from __future__ import annotations

import asyncio
import contextvars
import importlib
import importlib.util
import inspect
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import httpx
import orjson
from pydantic import BaseModel, SecretStr, ValidationError

from models.simulate import AgentInput, AgentResponse, RunOptions
from tasks.common import retry as common_retry
from tasks.common.errors import ReplayError, validation_text
from tasks.common.llm_context import overflow
from tasks.common.retry import (
    BACKOFF_MAX_S,
    BACKOFF_S,
    RETRY_AFTER_MAX_S,
    OnRetry,
    RetryPolicy,
    request_was_invalid,
    retry_after_s,
    retry_delay,
    transient_status,
)
from tasks.common.secrets import scrub, scrub_url, url_secrets
from tasks.common.text import one_line
from tasks.common.usercode import DaemonPool, user_exit

log = logging.getLogger("replay.agents")

MAX_TOOL_ROUNDS = 8  # model requests in one turn of the HTTP agent
# BACKOFF_S (the first retry waits up to this; doubles per attempt), BACKOFF_MAX_S (cap of
# the backoff), RETRY_AFTER_MAX_S (a server's Retry-After is honoured up to this): the
# defaults of tasks.common.retry; retry_delay is its own too.
MAX_THREADS = 256  # worker threads of one sync Python agent, at most
LIVE_TOOL_ERROR = "tool {name} cannot run: live tools need a Python agent"


# --------------------------------------------------------------------------- errors




class AgentError(ReplayError):
    """A one-line failure of the agent under test. ``transient`` says whether another attempt
    may succeed; ``attempts`` is set by :func:`call_with_retries` when it gives up;
    ``ended_reason`` is the chat's end reason when this error ends it."""

    transient = False
    ended_reason = "error"

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))
        self.attempts = 1


class AgentLoadError(AgentError):
    """``--agent`` names something that cannot be loaded (the message says what to do)."""


class AgentReplyError(AgentError):
    """The agent answered something that is not a reply (no choices, bad JSON, tool call
    arguments that are not JSON, a return value of the wrong type). Not transient."""


class AgentToolLoopError(AgentReplyError):
    """The HTTP agent still asked for tools after :data:`MAX_TOOL_ROUNDS` requests."""

    ended_reason = "tool_loop"


class AgentBadToolCall(AgentReplyError):
    """The HTTP agent asked for a tool call that cannot be made: no function name, or
    arguments that are not JSON."""

    ended_reason = "bad_tool_call"


class AgentContextOverflow(AgentError):
    """The conversation no longer fits the agent model's context window (the endpoint said
    so). Not transient: the same request would be refused again."""

    ended_reason = "context_overflow"


class AgentHTTPError(AgentError):
    """The agent's endpoint answered an error status; 429 and 5xx are transient, and
    ``retry_after`` holds the seconds the server asked to wait (None when it did not say)."""

    def __init__(self, message: str, *, status: int, retry_after: float | None = None,
                 invalid: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.invalid = invalid  # the body blames the request (a validation error): asking again is useless

    @property
    def transient(self) -> bool:  # type: ignore[override]
        return transient_status(self.status) and not self.invalid


class AgentUnavailable(AgentError):
    """The agent's endpoint cannot be reached (connection refused, reset, ...). Transient."""

    transient = True


class AgentTimeout(AgentError, TimeoutError):
    """The agent did not answer in time. A ``TimeoutError``, transient."""

    transient = True


# --------------------------------------------------------------------------- the contract


@runtime_checkable
class Agent(Protocol):
    """What :func:`load_agent` returns."""

    ref: str
    kind: str  # "python" or "http"

    async def respond(self, inp: AgentInput) -> AgentResponse: ...

    async def aclose(self) -> None: ...


# --------------------------------------------------------------------------- normalising replies


def _plain(value: Any) -> Any:
    """A dict/list/scalar from a pydantic model or dataclass-like object, else ``value``."""
    if isinstance(value, BaseModel):
        return value.model_dump()
    dump = getattr(value, "model_dump", None) or getattr(value, "dict", None)
    if callable(dump) and not isinstance(value, Mapping):
        try:
            return dump()
        except Exception:  # noqa: BLE001 - not a model after all
            return value
    return value


def _parse_arguments(raw: Any) -> Any:
    """Tool call arguments: JSON text parsed (empty -> {}), anything else as is. Raw control
    characters inside strings (a newline in an address: small models write them) are taken, as
    Python's non-strict JSON reader does; anything else that is not JSON raises
    ``orjson.JSONDecodeError``."""
    if isinstance(raw, (bytes, bytearray)):
        raw = raw.decode("utf-8", "replace")
    if isinstance(raw, str):
        if not raw.strip():
            return {}
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            try:
                return json.loads(raw, strict=False)
            except ValueError:
                pass
            raise
    return raw


def normalize_tool_call(call: Any) -> dict[str, Any]:
    """``{id, name, arguments}`` from a tool call in our form or OpenAI's (``function`` with
    JSON ``arguments`` text), a model or an object with those attributes. Arguments that are
    not JSON stay text."""
    call = _plain(call)
    if not isinstance(call, Mapping):
        call = {k: getattr(call, k) for k in ("id", "name", "arguments", "function")
                if hasattr(call, k)}
    fn = _plain(call.get("function"))
    if fn is not None and not isinstance(fn, Mapping):
        fn = {k: getattr(fn, k, None) for k in ("name", "arguments")}
    name = call.get("name") or (fn or {}).get("name")
    args = call.get("arguments") if "arguments" in call else (fn or {}).get("arguments")
    try:
        args = _parse_arguments(args)
    except orjson.JSONDecodeError:
        pass  # kept as the text the agent reported
    out = {"id": call.get("id"), "name": name, "arguments": args}
    return out


def _content(value: Any) -> str | None:
    """The reply text: str as is; OpenAI content parts joined; anything else as JSON."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(p, Mapping) for p in value):
        texts = [p.get("text") for p in value if isinstance(p.get("text"), str)]
        if texts:
            return "".join(texts)
    return orjson.dumps(value, default=str).decode()


def _num(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return int(v)
    return None


def token_usage(metadata: Mapping[str, Any] | None) -> tuple[int, int] | None:
    """``(input_tokens, output_tokens)`` from ``metadata["usage"]`` (a dict or an object) or
    from ``metadata`` itself (``input_tokens``/``output_tokens`` or OpenAI's
    ``prompt_tokens``/``completion_tokens``); None when neither says."""
    if not isinstance(metadata, Mapping):
        return None
    for source in (metadata.get("usage"), metadata):
        source = _plain(source)
        if source is None:
            continue
        if not isinstance(source, Mapping):
            source = {k: getattr(source, k, None) for k in
                      ("input_tokens", "output_tokens", "prompt_tokens", "completion_tokens")}
        inp = _num(source.get("input_tokens"))
        if inp is None:
            inp = _num(source.get("prompt_tokens"))
        out = _num(source.get("output_tokens"))
        if out is None:
            out = _num(source.get("completion_tokens"))
        if inp is not None or out is not None:
            return inp or 0, out or 0
    return None


_FIELDS = ("content", "tool_calls", "tool_responses", "metadata")


def _tool_response(value: Any) -> dict[str, Any]:
    value = _plain(value)
    if isinstance(value, Mapping):
        return dict(value)
    return {k: getattr(value, k) for k in ("id", "name", "result", "content") if hasattr(value, k)}


def normalize_response(value: Any, where: str = "the agent") -> AgentResponse:
    """An ``AgentResponse`` from what an agent returned: a ``str``, an ``AgentResponse``, a
    dict with its fields, or an object with those attributes. Tool calls become
    ``{id, name, arguments}``; token usage found in the metadata is put in
    ``metadata["usage"] = {"input_tokens", "output_tokens"}``. Raises AgentReplyError."""
    if isinstance(value, AgentResponse):
        fields: dict[str, Any] = {k: getattr(value, k) for k in _FIELDS}
    elif isinstance(value, str):
        return AgentResponse(content=value)
    elif value is None:
        raise AgentReplyError(f"{where} returned None; return a str or an AgentResponse")
    elif isinstance(value, Mapping):
        fields = {k: value[k] for k in _FIELDS if k in value}
        if not fields:
            raise AgentReplyError(f"{where} returned a dict without any of {', '.join(_FIELDS)} "
                                  f"(keys: {', '.join(map(str, list(value)[:8])) or 'none'})")
    elif any(hasattr(value, k) for k in _FIELDS) and not isinstance(value, (int, float, bytes)):
        fields = {k: getattr(value, k) for k in _FIELDS if hasattr(value, k)}
    else:
        raise AgentReplyError(f"{where} returned {type(value).__name__}; return a str or an "
                              "AgentResponse (content, tool_calls, tool_responses, metadata)")
    try:
        calls = [normalize_tool_call(c) for c in (fields.get("tool_calls") or [])]
        responses = [_tool_response(r) for r in (fields.get("tool_responses") or [])]
        metadata = _plain(fields.get("metadata")) or {}
        if not isinstance(metadata, Mapping):
            raise TypeError(f"metadata is {type(metadata).__name__}, not a dict")
        metadata = dict(metadata)
        usage = token_usage(metadata)
        if usage is not None:
            metadata["usage"] = {"input_tokens": usage[0], "output_tokens": usage[1]}
        return AgentResponse(content=_content(fields.get("content")), tool_calls=calls,
                             tool_responses=responses, metadata=metadata)
    except (TypeError, ValueError, ValidationError) as e:
        why = validation_text(e, lambda _model, loc: ".".join(map(str, loc)) or "the response") \
            if isinstance(e, ValidationError) else str(e)
        raise AgentReplyError(f"{where} returned a malformed response: {why}") from None


# --------------------------------------------------------------------------- Python agents


class AgentExit(AgentError):
    """The agent called ``sys.exit`` or raised another ``BaseException`` that is not an
    ``Exception``: an error of that turn (the chat fails), never the end of Replay."""


class PythonAgent:
    """A Python callable taking an ``AgentInput``. A sync one runs in this agent's own daemon
    threads (as many as the run's concurrency, so chats are not capped by asyncio's default
    executor). A thread cannot be stopped: on a timeout the call is given up on and runs on,
    unawaited, in a thread the process does not wait for at exit (``tasks.common.usercode``)."""

    kind = "python"

    def __init__(self, fn: Callable[[AgentInput], Any], ref: str, *, threads: int = 32) -> None:
        self.fn = fn
        self.ref = ref
        self.is_async = _is_async_callable(fn)
        self._threads = max(1, min(int(threads), MAX_THREADS))
        self._pool: DaemonPool | None = None

    def __repr__(self) -> str:
        return f"PythonAgent({self.ref!r})"

    async def respond(self, inp: AgentInput) -> AgentResponse:
        try:
            if self.is_async:
                result = self.fn(inp)
            else:
                if self._pool is None:
                    self._pool = DaemonPool(self._threads, name="replay-agent")
                result = await self._pool.run(contextvars.copy_context().run, self.fn, inp)
            if inspect.isawaitable(result):
                result = await result
        except (Exception, KeyboardInterrupt, asyncio.CancelledError):
            raise
        except BaseException as exc:  # SystemExit & co. from the agent: this turn's error
            raise AgentExit(user_exit(exc, "the agent") or type(exc).__name__) from None
        return normalize_response(result, where=f"agent {self.ref}")

    async def aclose(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None


def _is_async_callable(fn: Any) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - an instance with async __call__
    return call is not None and inspect.iscoroutinefunction(call)


def _import_file(path_text: str) -> tuple[Any, str]:
    path = Path(path_text).expanduser()
    if not path.is_absolute():
        path = Path.cwd() / path
    if not path.is_file():
        raise AgentLoadError(f"cannot import {path_text}: no such file (looked at {path}); "
                             "give a path relative to the current directory")
    path = path.resolve()
    name = "replay_agent_" + re.sub(r"\W", "_", str(path.with_suffix("")).lstrip(os.sep))
    if name in sys.modules:
        return sys.modules[name], path_text
    parent = str(path.parent)
    if parent not in sys.path:  # so that the file's own sibling imports work
        sys.path.insert(0, parent)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise AgentLoadError(f"cannot import {path_text}: not a Python source file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as e:  # noqa: BLE001 - SyntaxError, its own import errors, SystemExit
        sys.modules.pop(name, None)
        raise AgentLoadError(f"cannot import {path_text}: {type(e).__name__}: {e}") from None
    return module, path_text


def _import_module(modname: str) -> Any:
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    importlib.invalidate_caches()  # a file written since the last import is seen
    try:
        return importlib.import_module(modname)
    except ModuleNotFoundError as e:
        missing = e.name or ""
        if missing and (modname == missing or modname.startswith(missing + ".")):
            raise AgentLoadError(f"cannot import module {modname}: No module named {missing!r}; "
                                 f"is it on PYTHONPATH? (the current directory {cwd} is)") from None
        raise AgentLoadError(f"cannot import module {modname}: it failed with "
                             f"ModuleNotFoundError: {e}; install what it needs") from None
    except BaseException as e:  # noqa: BLE001 - SyntaxError, an error at import, SystemExit
        raise AgentLoadError(f"cannot import module {modname}: it failed with "
                             f"{type(e).__name__}: {e}") from None


def _callables(module: Any, limit: int = 8) -> str:
    names = [n for n, v in vars(module).items() if not n.startswith("_") and callable(v)
             and not inspect.isclass(v) and not inspect.ismodule(v)
             and getattr(v, "__module__", None) == getattr(module, "__name__", None)]
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")


def load_python_agent(ref: str, *, threads: int = 32) -> PythonAgent:
    """A :class:`PythonAgent` from ``module:function`` / ``path/to/file.py:function``."""
    where, sep, attr_path = ref.rpartition(":")
    if not sep or not where or not attr_path:
        raise AgentLoadError(f"agent {ref!r} is not module:function, path/to/file.py:function "
                             "or an http(s):// URL")
    is_file = where.endswith(".py") or "/" in where or os.sep in where
    if is_file:
        module, label = _import_file(where)
    else:
        module, label = _import_module(where), where
    obj: Any = module
    walked = label
    for part in attr_path.split("."):
        if not hasattr(obj, part):
            hint = ""
            if obj is module:
                names = _callables(module)
                hint = f"; it has {names}" if names else ""
            raise AgentLoadError(f"{walked} has no attribute {part}{hint}")
        obj = getattr(obj, part)
        walked = f"{walked}.{part}"
    target = f"{label}.{attr_path}"
    if inspect.isclass(obj):
        raise AgentLoadError(f"{target} is a class; name a function, or an instance with a "
                             "call(input) method")
    if not callable(obj):
        method = getattr(obj, "call", None)  # an AgentWrapper-like instance
        if callable(method):
            obj = method
        else:
            raise AgentLoadError(f"{target} is not callable (it is a {type(obj).__name__}); "
                                 "name a function taking an AgentInput")
    return PythonAgent(obj, ref, threads=threads)


# --------------------------------------------------------------------------- HTTP agents


def _error_detail(response: httpx.Response) -> str:
    """The server's error message: OpenAI's ``{"error": {"message"}}``, ``detail``, or text."""
    from tasks.common.llm import error_detail

    return error_detail(response)


def _accepts_call_id(fn: Any) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "call_id" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _tool_content(result: Any) -> str:
    """A tool result as the text of a role=tool message."""
    if isinstance(result, str):
        return result
    return orjson.dumps(_plain(result), default=str).decode()


class HttpAgent:
    """An OpenAI-compatible chat completions endpoint; Replay runs the tool loop.

    ``base_url`` is the API root (``http://host:port/v1``; a URL ending in
    ``/chat/completions`` is accepted too). One request per round, no retries of its own:
    :func:`call_with_retries` owns them."""

    kind = "http"

    def __init__(self, base_url: str, *, model: str, system_prompt: str | None = None,
                 tools: list[dict[str, Any]] | None = None, api_key: str | None = None,
                 timeout_s: float = 60.0, max_connections: int = 100,
                 max_rounds: int = MAX_TOOL_ROUNDS, ref: str | None = None,
                 params: dict[str, Any] | None = None) -> None:
        base = base_url.strip().rstrip("/")
        base = re.sub(r"/chat/completions$", "", base)
        self.base_url = base
        self.ref = ref or base_url
        self.model = model
        self.system_prompt = system_prompt
        self.tools = list(tools or [])
        self.max_rounds = max(1, int(max_rounds))
        self.params = dict(params or {})
        self._api_key = api_key or None
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        self.timeout_s = float(timeout_s)
        conns = max(1, int(max_connections))
        self._http = httpx.AsyncClient(
            base_url=self.base_url + "/", headers=headers, timeout=httpx.Timeout(self.timeout_s),
            limits=httpx.Limits(max_connections=conns, max_keepalive_connections=min(conns, 100)))

    def __repr__(self) -> str:  # never the key
        return f"HttpAgent(base_url={scrub_url(self.base_url)!r}, model={self.model!r})"

    def _err(self, text: str) -> str:
        return scrub(text, self._api_key, *url_secrets(self.base_url))

    def request_messages(self, inp: AgentInput) -> list[dict[str, Any]]:
        """The conversation sent on the first round: system prompt, history, new message."""
        messages: list[dict[str, Any]] = []
        if self.system_prompt:
            messages.append({"role": "system", "content": self.system_prompt})
        messages += [dict(m) for m in inp.messages]
        messages.append(dict(inp.new_message))
        return messages

    async def _complete(self, messages: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
        """One chat completion: (the assistant message, the usage dict)."""
        payload: dict[str, Any] = {"model": self.model, "messages": messages}
        if self.tools:
            # "auto" said aloud: OpenAI assumes it, but llama.cpp's function-calling chat format
            # ignores the tools of a request without it
            payload["tools"] = self.tools
            payload["tool_choice"] = "auto"
        payload.update(self.params)
        where = f"agent at {self.base_url}"
        try:
            response = await self._http.post("chat/completions", content=orjson.dumps(payload, default=str))
        except httpx.TimeoutException as e:
            raise AgentTimeout(self._err(f"{where} did not answer within {self.timeout_s:g} s "
                                         f"({type(e).__name__})")) from e
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as e:
            raise AgentLoadError(self._err(f"bad agent URL {self.base_url}: {e}")) from None
        except httpx.TransportError as e:
            raise AgentUnavailable(self._err(f"cannot reach the {where}: {type(e).__name__}: {e}; "
                                             "is it up?")) from e
        status = response.status_code
        if status >= 400:
            detail = _error_detail(response)
            if status in (401, 403):
                hint = ("check its API key" if self._api_key
                        else "it needs an API key (settings.agent_api_key)")
                msg = f"{where} refused the request (HTTP {status}: {detail}); {hint}"
            elif status == 404:
                msg = (f"{where} has no chat completions endpoint or no model {self.model!r} "
                       f"(HTTP 404: {detail}); --agent should be the API root ending in /v1")
            else:
                msg = f"{where} answered HTTP {status}: {detail}"
                if overflow(status, detail) is not None:
                    raise AgentContextOverflow(self._err(f"{msg} (the conversation does not fit the "
                                                         "model's context window)"))
            raise AgentHTTPError(self._err(msg), status=status, retry_after=retry_after_s(response.headers),
                                 invalid=request_was_invalid(response))
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise AgentReplyError(self._err(
                f"{where} answered non-JSON (HTTP {status}, "
                f"{response.headers.get('content-type', '?')}): {response.text[:120]!r}")) from None
        try:
            message = body["choices"][0]["message"]
            if not isinstance(message, dict):
                raise TypeError
        except (KeyError, IndexError, TypeError):
            raise AgentReplyError(self._err(f"{where} answered without choices[0].message: "
                                            f"{response.text[:120]!r}")) from None
        usage = body.get("usage") if isinstance(body, dict) else None
        return message, usage if isinstance(usage, dict) else {}

    def _parse_calls(self, raw_calls: Any, round_no: int) -> list[dict[str, Any]]:
        """``[{id, name, arguments (parsed), raw}]`` of a reply's tool calls."""
        where = f"agent at {self.base_url}"
        if not isinstance(raw_calls, list):
            raise AgentBadToolCall(f"{where} answered tool_calls that are not a list: {raw_calls!r:.120}")
        calls = []
        for i, c in enumerate(raw_calls):
            fn = c.get("function") if isinstance(c, dict) else None
            name = fn.get("name") if isinstance(fn, dict) else None
            if not name:
                raise AgentBadToolCall(f"{where} answered a tool call without a function name: "
                                      f"{orjson.dumps(c, default=str).decode()[:120]}")
            raw_args = fn.get("arguments")
            try:
                args = _parse_arguments(raw_args)
            except orjson.JSONDecodeError as e:
                raise AgentBadToolCall(f"{where} called tool {name} with arguments that are not "
                                      f"JSON ({e}): {str(raw_args)[:120]!r}") from None
            call_id = c.get("id") or f"call_r{round_no}_{i}"
            text_args = raw_args if isinstance(raw_args, str) else orjson.dumps(args).decode()
            calls.append({"id": call_id, "name": name, "arguments": args,
                          "raw": {"id": call_id, "type": "function",
                                  "function": {"name": name, "arguments": text_args}}})
        return calls

    async def _run_tool(self, inp: AgentInput, call_id: str, name: str, arguments: Any) -> Any:
        if inp.tools is None:
            return {"error": LIVE_TOOL_ERROR.format(name=name)}
        if _accepts_call_id(inp.tools.call):  # RecordedTools keeps the id in its log
            return await inp.tools.call(name, arguments, call_id=call_id)
        return await inp.tools.call(name, arguments)

    async def respond(self, inp: AgentInput) -> AgentResponse:
        messages = self.request_messages(inp)
        calls: list[dict[str, Any]] = []
        responses: list[dict[str, Any]] = []
        tokens_in = tokens_out = 0
        for round_no in range(1, self.max_rounds + 1):
            message, usage = await self._complete(messages)
            used = token_usage({"usage": usage}) or (0, 0)
            tokens_in += used[0]
            tokens_out += used[1]
            raw_calls = message.get("tool_calls")
            if not raw_calls:
                content = message.get("content")
                if content is None and message.get("refusal"):
                    content = message["refusal"]
                return AgentResponse(
                    content=_content(content), tool_calls=calls, tool_responses=responses,
                    metadata={"usage": {"input_tokens": tokens_in, "output_tokens": tokens_out},
                              "rounds": round_no, "model": self.model})
            parsed = self._parse_calls(raw_calls, round_no)
            if round_no == self.max_rounds:
                names = ", ".join(c["name"] for c in parsed)
                raise AgentToolLoopError(
                    f"agent at {self.base_url} still asked for tools ({names}) after "
                    f"{self.max_rounds} rounds of tool calls; the turn stops without an answer")
            # content "" rather than null: OpenAI takes both, llama.cpp's server only a string
            messages.append({"role": "assistant", "content": message.get("content") or "",
                             "tool_calls": [c["raw"] for c in parsed]})
            for c in parsed:
                calls.append({"id": c["id"], "name": c["name"], "arguments": c["arguments"]})
                result = await self._run_tool(inp, c["id"], c["name"], c["arguments"])
                responses.append({"id": c["id"], "name": c["name"], "result": result})
                messages.append({"role": "tool", "tool_call_id": c["id"],
                                 "content": _tool_content(result)})
        raise AssertionError("unreachable")  # pragma: no cover

    async def aclose(self) -> None:
        await self._http.aclose()


def _secret(value: Any) -> str | None:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return str(value) if value else None


def _http_settings(ref: str, agent_def: Any, options: RunOptions) -> str:
    """The model an HTTP agent at ``ref`` is asked for; AgentLoadError when the URL is not
    http(s) or no model is known."""
    if not re.match(r"^https?://[^/\s]+", ref.strip()):
        raise AgentLoadError(f"agent URL {scrub_url(ref)!r} is not an http(s) URL, e.g. http://127.0.0.1:8000/v1")
    model = options.model or (getattr(agent_def, "model", None) if agent_def is not None else None)
    if not model:
        raise AgentLoadError(f"the HTTP agent at {scrub_url(ref)} needs a model name: pass --model, or give "
                             "the agent definition a model")
    return model


def load_http_agent(ref: str, agent_def: Any, options: RunOptions, settings: Any) -> HttpAgent:
    """An :class:`HttpAgent` for ``ref`` with the definition's system prompt and tools
    (``options.system_prompt`` / ``options.model`` override)."""
    model = _http_settings(ref, agent_def, options)
    system_prompt = options.system_prompt
    if system_prompt is None and agent_def is not None:
        system_prompt = agent_def.system_prompt
    tools = list(getattr(agent_def, "tools", None) or []) if agent_def is not None else []
    return HttpAgent(ref, model=model, system_prompt=system_prompt, tools=tools,
                     api_key=_secret(getattr(settings, "agent_api_key", None)),
                     timeout_s=options.turn_timeout_s,
                     max_connections=max(10, options.concurrency), ref=ref, params=options.agent_params)


PROBE_TIMEOUT_S = 10.0  # how long check_agent waits for an HTTP agent to answer at all
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://", re.I)


def check_agent(ref: str, agent_def: Any, options: RunOptions, settings: Any,
                timeout_s: float = PROBE_TIMEOUT_S) -> str:
    """Whether ``--agent`` names an agent that can run, before anything is written: a Python
    agent's module imports and has the callable; a URL is http(s), has a model, and its
    endpoint answers (any HTTP status: it is up). Returns the kind ("python", "http"); raises
    :class:`AgentLoadError` with a one-line reason."""
    ref = (ref or "").strip()
    scheme = _SCHEME.match(ref)
    if scheme and scheme.group(1).lower() not in ("http", "https"):
        raise AgentLoadError(f"agent URL {scrub_url(ref)!r}: {scheme.group(1)}:// is not supported; give an "
                             "OpenAI-compatible http(s) endpoint (e.g. http://127.0.0.1:8000/v1) or module:function")
    if not scheme:
        load_agent(ref, agent_def, options, settings)  # imports the module, finds the callable
        return "python"
    _http_settings(ref, agent_def, options)  # the URL's shape and a model name
    probe_endpoint(ref, _secret(getattr(settings, "agent_api_key", None)), min(timeout_s, options.turn_timeout_s))
    return "http"


def probe_endpoint(ref: str, api_key: str | None, timeout_s: float) -> None:
    """One GET of the endpoint's ``/models``: any answer (whatever its status) is an endpoint
    that is up; no answer is :class:`AgentLoadError`."""
    base = re.sub(r"/chat/completions$", "", ref.strip().rstrip("/"))
    shown = scrub_url(base)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        with httpx.Client(timeout=httpx.Timeout(timeout_s), headers=headers) as client:
            client.get(base + "/models")
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as e:
        raise AgentLoadError(scrub(f"bad agent URL {shown}: {e}", api_key, *url_secrets(ref))) from None
    except httpx.TimeoutException:
        raise AgentLoadError(f"the agent at {shown} did not answer within {timeout_s:g} s; is it up?") from None
    except httpx.TransportError as e:
        raise AgentLoadError(scrub(f"cannot reach the agent at {shown}: {type(e).__name__}: {e}; is it up?",
                                   api_key, *url_secrets(ref))) from None


def load_agent(ref: str, agent_def: Any, options: RunOptions, settings: Any) -> Agent:
    """The agent named by ``--agent``: a Python callable (``module:function``,
    ``path/to/file.py:function``) or an OpenAI-compatible endpoint (``http(s)://.../v1``).
    ``agent_def`` (an ``AgentDefinition`` or None) gives the HTTP agent its system prompt,
    tools and model. Raises AgentLoadError with a one-line reason."""
    ref = (ref or "").strip()
    if not ref:
        raise AgentLoadError("no agent: pass --agent module:function or an http(s):// URL")
    if re.match(r"(?i)^https?://", ref):
        return load_http_agent(ref, agent_def, options, settings)
    return load_python_agent(ref, threads=options.concurrency)


# --------------------------------------------------------------------------- retries


def _agent_verdict(exc: BaseException) -> bool | None:
    """The agent's own errors say whether they are transient; the rule decides the rest."""
    return bool(exc.transient) if isinstance(exc, AgentError) else None


def is_transient(exc: BaseException) -> bool:
    """Whether another attempt may succeed: timeouts, connection errors, HTTP 429 and 5xx
    (from the endpoint, an ``LLMError``, or an SDK error carrying ``status_code``); an
    :class:`AgentError` by its ``transient``."""
    return common_retry.is_transient(exc, _agent_verdict)


async def _respond_once(agent: Agent, inp: AgentInput, timeout_s: float | None) -> AgentResponse:
    """One attempt under ``timeout_s``; a timeout becomes :class:`AgentTimeout`."""
    try:
        if timeout_s is None:
            return await agent.respond(inp)
        async with asyncio.timeout(timeout_s):  # no extra task per call, unlike wait_for
            return await agent.respond(inp)
    except TimeoutError as exc:
        if isinstance(exc, AgentError):
            raise
        raise AgentTimeout(f"the agent did not answer within {timeout_s:g} s" if timeout_s is not None
                           else f"the agent raised TimeoutError: {exc}") from exc


async def call_with_retries(agent: Agent, inp: AgentInput, *, timeout_s: float | None,
                            retries: int, on_retry: OnRetry | None = None,
                            backoff_s: float = BACKOFF_S, backoff_max_s: float = BACKOFF_MAX_S,
                            retry_after_max_s: float = RETRY_AFTER_MAX_S
                            ) -> tuple[AgentResponse, int]:
    """One turn: ``(response, attempts)``. Each attempt runs under ``timeout_s`` (None: no
    limit); a transient failure is retried up to ``retries`` times after :func:`retry_delay`;
    anything else is raised at once. A timeout is raised as :class:`AgentTimeout` (a
    ``TimeoutError``). The error raised carries ``attempts`` when it can hold an attribute.
    ``on_retry(attempt, exc, delay)`` (sync or async) is called before each retry, e.g. to
    forget the tool calls of the failed attempt."""
    policy = RetryPolicy(attempts=max(0, int(retries)) + 1, backoff_s=backoff_s,
                         backoff_max_s=backoff_max_s, retry_after_max_s=retry_after_max_s,
                         verdict=_agent_verdict)

    def before_retry(attempt: int, err: BaseException, delay: float) -> Any:
        log.info("agent %s: %s on attempt %d/%d; retrying in %.2f s",
                 getattr(agent, "ref", agent), one_line(f"{type(err).__name__}: {err}", 200),
                 attempt, policy.attempts, delay)
        return on_retry(attempt, err, delay) if on_retry is not None else None

    try:
        return await policy.acall(lambda: _respond_once(agent, inp, timeout_s), on_retry=before_retry)
    except Exception as err:
        attempts = common_retry.attempts_of(err)
        if attempts > 1:
            if isinstance(err, AgentError):
                err.args = (f"{err.args[0]} (after {attempts} attempts)",)
            else:
                err.add_note(f"after {attempts} attempts")
        raise


__all__ = [
    "Agent", "AgentBadToolCall", "AgentContextOverflow", "AgentError", "AgentExit", "AgentHTTPError", "AgentLoadError", "AgentReplyError",
    "AgentTimeout", "AgentToolLoopError", "AgentUnavailable", "HttpAgent", "LIVE_TOOL_ERROR",
    "MAX_TOOL_ROUNDS", "PROBE_TIMEOUT_S", "PythonAgent", "call_with_retries", "check_agent", "is_transient",
    "load_agent", "probe_endpoint",
    "load_http_agent", "load_python_agent", "normalize_response", "normalize_tool_call",
    "retry_delay", "token_usage",
]
