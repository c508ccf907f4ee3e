"""A real, scripted, OpenAI-compatible chat completions server on 127.0.0.1 for tests.

Stdlib only (``http.server.ThreadingHTTPServer`` in a background thread, HTTP/1.1 with
keep-alive), on a free port chosen by the OS. It stands in for the LLM that writes
scenarios, for the simulated user and the judge, and for an OpenAI-compatible agent
under test::

    with llm_stub(lambda req: {"content": "hi"}) as server:
        client = ChatClient(server.base_url, model="m", api_key="k")   # .../v1
        client.chat([{"role": "user", "content": "hello"}])
        server.requests[0].json["messages"]          # every request, recorded

``script`` is called with each ``POST /v1/chat/completions`` body (parsed JSON) and
returns one of:

- a ``dict`` without ``"choices"``: the assistant message (``content``, ``tool_calls``;
  optional ``usage``, ``finish_reason``, ``refusal``), wrapped into a full
  ``chat.completion`` with usage. Tool calls may be given short, ``{"name": ..,
  "arguments": {..}}``; they are sent in OpenAI's form (id, type, function, JSON text).
- a ``dict`` with ``"choices"``: sent as the whole body, as is.
- an ``int``: that HTTP status with an OpenAI-style error body;
  ``(status, headers)`` adds headers, e.g. ``(429, {"Retry-After": "1"})``.
- ``("sleep", seconds)``: hold the request that long, then drop the connection without
  an answer (a client with a shorter timeout sees a timeout); ``("sleep", seconds,
  response)`` answers ``response`` (any form here) after the pause.
- a ``str`` / ``bytes``: sent as the body with status 200 and a JSON content type
  (malformed JSON on purpose).
- a :class:`StubResponse`: full control (status, body, headers).

``script`` may also be a list: its items are served in order, and once it is used up
every further request gets a 500 (and is noted in ``server.errors``). An exception in
the script becomes a 500 and is noted in ``server.errors`` too.

``GET /v1/models`` lists the stub's model; anything else is a 404. Leaving the ``with``
block stops the server: it wakes sleeping handlers, closes open connections and joins
every handler thread.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Script = Callable[[Any], Any]


@dataclass
class StubResponse:
    status: int = 200
    body: Any = None  # dict/list -> JSON; str/bytes -> as is; None -> empty
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class StubRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    json: Any  # the parsed body, or None when it is not JSON
    received_at: float  # time.monotonic()


class LLMStub:
    """What ``llm_stub`` yields: the address, and what the server saw."""

    def __init__(self, host: str, port: int, model: str) -> None:
        self.host = host
        self.port = port
        self.model = model
        self.url = f"http://{host}:{port}"
        self.base_url = f"{self.url}/v1"
        self.requests: list[StubRequest] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()

    @property
    def chat_requests(self) -> list[StubRequest]:
        return [r for r in self.requests if r.path.rstrip("/").endswith("/chat/completions")]

    def _record(self, request: StubRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _error(self, message: str) -> None:
        with self._lock:
            self.errors.append(message)


def sequence(responses: Sequence[Any]) -> Script:
    """A script that serves ``responses`` in order (then 500s, noted as stub errors)."""
    items = list(responses)
    lock = threading.Lock()
    state = {"i": 0}

    def script(_request: Any) -> Any:
        with lock:
            i = state["i"]
            state["i"] += 1
        if i >= len(items):
            raise IndexError(f"stub script used up: request {i + 1}, {len(items)} scripted")
        return items[i]

    return script


def _tool_call(call: dict[str, Any], i: int) -> dict[str, Any]:
    if "function" in call:
        fn = dict(call["function"])
        if not isinstance(fn.get("arguments"), str):
            fn["arguments"] = json.dumps(fn.get("arguments") or {})
        return {"id": call.get("id") or f"call_stub_{i}", "type": call.get("type", "function"),
                "function": fn}
    args = call.get("arguments") or {}
    return {"id": call.get("id") or f"call_stub_{i}", "type": "function",
            "function": {"name": call["name"],
                         "arguments": args if isinstance(args, str) else json.dumps(args)}}


def _tokens(text: str) -> int:
    return max(1, len(text) // 4) if text else 0


def completion(message: dict[str, Any], request: Any, model: str) -> dict[str, Any]:
    """A full ``chat.completion`` body around an assistant ``message``."""
    message = dict(message)
    usage = message.pop("usage", None)
    finish = message.pop("finish_reason", None)
    calls = [_tool_call(c, i) for i, c in enumerate(message.pop("tool_calls", None) or [])]
    msg: dict[str, Any] = {"role": message.pop("role", "assistant"),
                           "content": message.pop("content", None)}
    if calls:
        msg["tool_calls"] = calls
    msg.update(message)  # refusal, anything else given
    if usage is None:
        prompt = json.dumps(request.get("messages", [])) if isinstance(request, dict) else ""
        out = (msg["content"] or "") + json.dumps(calls) if calls else (msg["content"] or "")
        usage = {"prompt_tokens": _tokens(prompt), "completion_tokens": _tokens(out)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    req_model = request.get("model") if isinstance(request, dict) else None
    return {
        "id": f"chatcmpl-stub-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": req_model or model,
        "choices": [{"index": 0, "message": msg, "logprobs": None,
                     "finish_reason": finish or ("tool_calls" if calls else "stop")}],
        "usage": usage,
    }


def _error_body(status: int, message: str) -> dict[str, Any]:
    kind = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
            404: "not_found_error", 429: "rate_limit_error"}.get(status, "server_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": status}}


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # handler threads are joined on close
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, stub: LLMStub, script: Script, *args: Any) -> None:
        self.stub = stub
        self.script = script
        self.stopping = threading.Event()
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(*args)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        with self.sockets_lock:
            socks = list(self.open_sockets)
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _read(self) -> StubRequest:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        req = StubRequest(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                          body, parsed, time.monotonic())
        self.server.stub._record(req)
        return req

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body or b""
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, str(v))
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:  # the client went away (e.g. it timed out)
            self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802
        self._read()
        if self.path.rstrip("/") == "/v1/models":
            self._send(200, {"object": "list", "data": [
                {"id": self.server.stub.model, "object": "model", "owned_by": "replay-stub"}]})
        else:
            self._send(404, _error_body(404, f"stub: no route GET {self.path}"))

    def do_POST(self) -> None:  # noqa: N802
        req = self._read()
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(404, _error_body(404, f"stub: no route POST {self.path}"))
            return
        try:
            answer = self.server.script(req.json)
        except Exception as e:  # the script's bug: a 500, and noted for the test
            self.server.stub._error(f"{type(e).__name__}: {e}")
            self._send(500, _error_body(500, f"stub script failed: {type(e).__name__}: {e}"))
            return
        self._answer(answer, req)

    def _answer(self, answer: Any, req: StubRequest) -> None:
        stub = self.server.stub
        if isinstance(answer, tuple) and answer and answer[0] == "sleep":
            self.server.stopping.wait(float(answer[1]))
            if len(answer) < 3 or self.server.stopping.is_set():
                self.close_connection = True  # hang up without an answer
                return
            answer = answer[2]
        if isinstance(answer, StubResponse):
            self._send(answer.status, answer.body, answer.headers)
        elif isinstance(answer, int) and not isinstance(answer, bool):
            self._send(answer, _error_body(answer, f"stub: HTTP {answer}"))
        elif isinstance(answer, tuple) and len(answer) == 2 and isinstance(answer[0], int):
            self._send(answer[0], _error_body(answer[0], f"stub: HTTP {answer[0]}"), answer[1])
        elif isinstance(answer, (str, bytes)):
            self._send(200, answer)
        elif isinstance(answer, dict) and "choices" in answer:
            self._send(200, answer)
        elif isinstance(answer, dict):
            self._send(200, completion(answer, req.json, stub.model))
        else:
            stub._error(f"stub script returned {type(answer).__name__}: {answer!r}")
            self._send(500, _error_body(500, f"stub script returned {type(answer).__name__}"))


@contextlib.contextmanager
def llm_stub(script: Script | Sequence[Any], *, model: str = "stub-model",
             host: str = "127.0.0.1") -> Iterator[LLMStub]:
    """A running stub on ``host``:<free port> for the ``with`` block (see module doc)."""
    if not callable(script):
        script = sequence(script)
    httpd = _Server(None, script, (host, 0), _Handler)  # type: ignore[arg-type]
    stub = LLMStub(host, httpd.server_address[1], model)
    httpd.stub = stub
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              name=f"llm-stub-{stub.port}", daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        httpd.shutdown()  # stop accepting
        httpd.stopping.set()  # wake sleeping handlers
        httpd.drop_connections()  # end keep-alive reads
        httpd.server_close()  # close the listener, join handler threads
        thread.join(5)
