"""A real Arize Phoenix server for tests: install (cached, separate venv), start, feed, stop.

Phoenix is NOT a dependency of Replay: its pins clash with Prefect's, so it lives in its
own virtualenv under ``$REPLAY_TEST_CACHE`` (default ``<repo>/.cache``, git-ignored) and is
installed on first use (~80 s; a file lock keeps two processes from racing). Later runs reuse it.

Plain functions and one context manager; fixtures are wired elsewhere::

    with phoenix_server() as phx:                       # ~15-25 s to start
        sent = send_spans(phx.base_url, phx.api_key, agent_trace_specs(), "demo")
        wait_for_spans(phx.base_url, phx.api_key, "demo", len(sent))

What the server looks like:

- HTTP on ``127.0.0.1:<free port>`` only. Phoenix's OTLP/gRPC receiver always binds
  ``[::]`` (hard-coded in ``phoenix/server/grpc_server.py``; ``PHOENIX_HOST`` does not apply
  to it and the only switch, ``--read-only``, also blocks ingestion), so the launcher below
  replaces ``GrpcServer.__aenter__`` with a no-op before starting Phoenix: no gRPC listener
  at all. ``PHOENIX_GRPC_PORT`` is still set to a free port as a second line of defence,
  and :func:`start_phoenix` checks (psutil) that the process listens on loopback only.
- Auth on (``PHOENIX_ENABLE_AUTH``). ``PHOENIX_ADMIN_SECRET`` is documented by Phoenix as
  "a secret key that can be used as a bearer token instead of an API key"; the helper
  uses it once to mint a real *system API key* (``POST /v1/system/api_keys``), which is
  what a production user would configure, and hands that out as ``api_key``.
- Spans go in over OTLP/HTTP protobuf (``POST /v1/traces``, the only content type Phoenix
  accepts there); the project is taken from the ``x-project-name`` header, else from the
  resource attribute ``openinference.project.name``, else ``default``. Ingestion is
  asynchronous (a background task + bulk inserter): poll with :func:`wait_for_spans`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

PHOENIX_VERSION = "20.26.1"
PHOENIX_PYTHON = "3.11"
REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL_TIMEOUT_S = 900.0
STARTUP_TIMEOUT_S = 120.0

# Runs inside the Phoenix venv. Disables the gRPC receiver (it would bind every interface).
_LAUNCHER = """\
import sys
import phoenix.server.grpc_server as _grpc_server


async def _no_grpc(self):  # replaces GrpcServer.__aenter__: never bind [::]:port
    self._server = None


_grpc_server.GrpcServer.__aenter__ = _no_grpc
from phoenix.server.main import main

sys.argv = ["phoenix", "serve"]
main()
"""


class PhoenixServerError(RuntimeError):
    """Phoenix could not be installed, started or fed."""


# --------------------------------------------------------------------------- install


def cache_dir() -> Path:
    """Where the Phoenix venv is kept: ``$REPLAY_TEST_CACHE`` or ``<repo>/.cache``."""
    return Path(os.environ.get("REPLAY_TEST_CACHE") or REPO_ROOT / ".cache")


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _uv() -> str:
    uv = shutil.which("uv") or os.environ.get("UV")
    if not uv:
        raise PhoenixServerError("`uv` is needed to install Phoenix in its own venv; not on PATH")
    return uv


def ensure_phoenix(cache: Path | None = None, version: str = PHOENIX_VERSION) -> Path:
    """Install ``arize-phoenix==version`` in ``<cache>/phoenix-venv`` if missing; its python.

    Idempotent and safe across processes: an exclusive ``flock`` on
    ``<cache>/phoenix-venv.lock`` serialises installers, and a marker file written last
    tells a complete install from one that was interrupted (which is wiped and redone).
    """
    cache = Path(cache) if cache else cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    venv = cache / "phoenix-venv"
    marker = venv / ".replay-phoenix-installed"
    python = _venv_python(venv)
    if marker.exists() and marker.read_text().strip() == version and python.exists():
        return python
    with open(cache / "phoenix-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be installing: wait for it
        try:
            if marker.exists() and marker.read_text().strip() == version and python.exists():
                return python
            if venv.exists():
                shutil.rmtree(venv)
            log = cache / "phoenix-install.log"
            env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
            with open(log, "w") as out:

                def run(cmd: list[str]) -> int | str:
                    out.write(f"$ {' '.join(cmd)}\n")
                    out.flush()
                    try:
                        return subprocess.run(
                            cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                            timeout=INSTALL_TIMEOUT_S, check=False,
                        ).returncode
                    except subprocess.TimeoutExpired:
                        return "timeout"

                # Python 3.11 if the machine has one, else the interpreter running the
                # tests (Phoenix 20.x wants >=3.11,<3.15; so does Replay).
                if run([_uv(), "venv", str(venv), "--python", PHOENIX_PYTHON,
                        "--no-python-downloads"]) != 0:
                    run([_uv(), "venv", str(venv), "--clear", "--python", sys.executable])
                cmd = [_uv(), "pip", "install", "--python", str(python),
                       f"arize-phoenix=={version}"]
                if not python.exists() or run(cmd) != 0:
                    raise PhoenixServerError(
                        f"installing Phoenix {version} in {venv} failed; "
                        f"log {log}:\n{_tail(log)}"
                    )
            marker.write_text(version)
            return python
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- start / stop


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the usual small race applies)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _secret(n: int = 24) -> str:
    # Phoenix wants >= 32 chars with a digit and a lowercase letter.
    return "s3cr" + secrets.token_hex(n)


@dataclass
class PhoenixServer:
    base_url: str
    api_key: str  # a real system API key (bearer)
    admin_secret: str  # PHOENIX_ADMIN_SECRET: also a valid bearer token (admin)
    log_path: Path
    working_dir: Path
    process: subprocess.Popen = field(repr=False)
    started_in_s: float = 0.0

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def _check_loopback_only(pid: int, port: int) -> None:
    """Fail if the server process (or a child) listens anywhere but loopback."""
    try:
        import psutil
    except ImportError:  # psutil is in the dev group; without it, skip the check
        return
    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return
    bad = []
    for proc in procs:
        try:
            conns = proc.net_connections(kind="inet")
        except psutil.Error:
            continue
        for c in conns:
            if c.status == psutil.CONN_LISTEN and c.laddr.ip not in ("127.0.0.1", "::1"):
                bad.append(f"{c.laddr.ip}:{c.laddr.port}")
    if bad:
        raise PhoenixServerError(f"Phoenix listens beyond loopback on {', '.join(bad)}")


def start_phoenix(
    *,
    cache: Path | None = None,
    working_dir: Path | None = None,
    startup_timeout: float = STARTUP_TIMEOUT_S,
    extra_env: Mapping[str, str] | None = None,
) -> PhoenixServer:
    """Install if needed, start Phoenix with auth on a free loopback port, wait until ready,
    mint a system API key. Call :func:`stop_phoenix` (or use :func:`phoenix_server`)."""
    python = ensure_phoenix(cache)
    work = Path(working_dir) if working_dir else Path(tempfile.mkdtemp(prefix="replay-phoenix-"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "launch_phoenix.py").write_text(_LAUNCHER)
    log_path = work / "phoenix.log"
    port, grpc_port = free_port(), free_port()
    secret, admin_secret = _secret(), _secret()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PHOENIX_", "OTEL_"))}
    env.pop("VIRTUAL_ENV", None)
    env.update(
        PHOENIX_HOST="127.0.0.1",
        PHOENIX_PORT=str(port),
        PHOENIX_GRPC_PORT=str(grpc_port),
        PHOENIX_WORKING_DIR=str(work / "phoenix-home"),  # sqlite db lives here
        PHOENIX_ALLOW_EXTERNAL_RESOURCES="false",
        PHOENIX_TELEMETRY_ENABLED="false",
        PHOENIX_ENABLE_AUTH="true",
        PHOENIX_SECRET=secret,
        PHOENIX_ADMIN_SECRET=admin_secret,
        PYTHONUNBUFFERED="1",
    )
    env.update(extra_env or {})
    base_url = f"http://127.0.0.1:{port}"
    t0 = time.monotonic()
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [str(python), str(work / "launch_phoenix.py")],
        cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True,  # own process group: stop_phoenix signals the whole group
    )
    log.close()
    server = PhoenixServer(base_url, "", admin_secret, log_path, work, proc)
    try:
        _wait_ready(server, startup_timeout)
        server.api_key = create_system_api_key(base_url, admin_secret)
        _check_loopback_only(proc.pid, port)
    except BaseException:
        stop_phoenix(server)
        raise
    server.started_in_s = time.monotonic() - t0
    return server


def _wait_ready(server: PhoenixServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    with httpx.Client(timeout=2.0) as client:
        while True:
            rc = server.process.poll()
            if rc is not None:
                raise PhoenixServerError(
                    f"Phoenix exited with code {rc} while starting; "
                    f"log {server.log_path}:\n{_tail(server.log_path)}"
                )
            try:
                r = client.get(f"{server.base_url}/readyz")
                if r.status_code == 200:
                    return
                last = f"HTTP {r.status_code}"
            except httpx.HTTPError as e:
                last = type(e).__name__
            if time.monotonic() > deadline:
                raise PhoenixServerError(
                    f"Phoenix not ready at {server.base_url} after {timeout:.0f} s ({last}); "
                    f"log {server.log_path}:\n{_tail(server.log_path)}"
                )
            time.sleep(0.25)


def create_system_api_key(base_url: str, admin_secret: str, name: str = "replay-tests") -> str:
    """Mint a system API key, authenticating with PHOENIX_ADMIN_SECRET as bearer."""
    r = httpx.post(
        f"{base_url}/v1/system/api_keys",
        headers={"Authorization": f"Bearer {admin_secret}"},
        json={"data": {"name": name}},
        timeout=10.0,
    )
    if r.status_code != 201:
        raise PhoenixServerError(f"creating a system API key: HTTP {r.status_code} {r.text[:200]}")
    return r.json()["data"]["key"]


def stop_phoenix(server: PhoenixServer, grace: float = 10.0) -> None:
    """SIGTERM the server's process group, SIGKILL it after ``grace`` seconds."""
    proc = server.process
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


@contextlib.contextmanager
def phoenix_server(
    *,
    cache: Path | None = None,
    startup_timeout: float = STARTUP_TIMEOUT_S,
    keep_working_dir: bool = False,
) -> Iterator[PhoenixServer]:
    """A running Phoenix (auth on) for the duration of the block; its data dir is temporary."""
    work = Path(tempfile.mkdtemp(prefix="replay-phoenix-"))
    server = start_phoenix(cache=cache, working_dir=work, startup_timeout=startup_timeout)
    try:
        yield server
    finally:
        stop_phoenix(server)
        if not keep_working_dir:
            shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------- feed / poll

# A span spec is a plain dict built into a real OpenTelemetry SDK span by send_spans:
#   key:        str, unique in the batch, names the span for `parent`
#   name:       str
#   parent:     key of an earlier spec in the same batch, or None for a root (new trace)
#   kind:       OpenInference span kind (LLM, TOOL, AGENT, CHAIN, ...) -> openinference.span.kind
#   otel_kind:  "INTERNAL" (default), "SERVER", "CLIENT", "PRODUCER", "CONSUMER"
#   attributes: flat OTel attributes (str, bool, int, float, or lists of one of those)
#   start_ns / end_ns: int epoch ns (default: now, +1 ms)
#   status:     "ok" | "error" | "unset" (default unset); status_message: str
#   events:     [{"name": str, "time_ns": int | None, "attributes": {...}}]
#   exception:  str -> span.record_exception(RuntimeError(exception)) at end_ns
SpanSpec = dict[str, Any]


def send_spans(
    base_url: str,
    api_key: str,
    spans: Sequence[SpanSpec],
    project: str,
    *,
    resource: Mapping[str, Any] | None = None,
    timeout: float = 30.0,
) -> list[Any]:
    """Build ``spans`` with the real OTel SDK and export them to Phoenix over OTLP/HTTP
    protobuf (``POST {base_url}/v1/traces``, ``Authorization: Bearer``), with resource
    attribute ``openinference.project.name=project``.

    Returns the SDK's finished ``ReadableSpan`` objects (in spec order): the ground truth
    (ids: ``format(s.context.trace_id, '032x')``). Raises if the export is refused.
    """
    from opentelemetry import trace as otel_trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind, Status, StatusCode

    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": "replay-tests", **(resource or {}),
             "openinference.project.name": project}
        )
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("replay.tests.phoenix", "0.1.0")

    live: dict[str, Any] = {}
    now = time.time_ns()
    order: list[str] = []
    ends: list[int] = []
    for i, spec in enumerate(spans):
        key = spec.get("key") or f"span-{i}"
        parent_key = spec.get("parent")
        if parent_key is not None and parent_key not in live:
            raise ValueError(f"span spec {key!r}: parent {parent_key!r} is not an earlier spec")
        ctx = otel_trace.set_span_in_context(live[parent_key]) if parent_key else None
        attributes = dict(spec.get("attributes") or {})
        if spec.get("kind"):
            attributes.setdefault("openinference.span.kind", spec["kind"])
        start_ns = spec.get("start_ns") or now + i * 1_000
        span = tracer.start_span(
            spec["name"],
            context=ctx if ctx is not None else otel_trace.set_span_in_context(
                otel_trace.INVALID_SPAN),  # a root: new trace even if a span is current
            kind=SpanKind[spec.get("otel_kind", "INTERNAL")],
            attributes=attributes,
            start_time=start_ns,
        )
        for ev in spec.get("events") or ():
            span.add_event(ev["name"], attributes=ev.get("attributes") or {},
                           timestamp=ev.get("time_ns"))
        end_ns = spec.get("end_ns") or start_ns + 1_000_000
        if spec.get("exception"):
            span.record_exception(RuntimeError(spec["exception"]), timestamp=end_ns)
        status = spec.get("status", "unset")
        if status != "unset":
            code = StatusCode.ERROR if status == "error" else StatusCode.OK
            span.set_status(Status(code, spec.get("status_message") if code is StatusCode.ERROR
                                   else None))
        live[key] = span
        order.append(key)
        ends.append(end_ns)
    for key, end_ns in reversed(list(zip(order, ends, strict=False))):  # children first
        live[key].end(end_time=end_ns)
    finished = {s.context.span_id: s for s in memory.get_finished_spans()}
    result = [finished[live[k].get_span_context().span_id] for k in order]
    provider.shutdown()

    exporter = OTLPSpanExporter(
        endpoint=f"{base_url}/v1/traces",
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=timeout,
    )
    try:
        for start in range(0, len(result), 256):
            outcome = exporter.export(result[start:start + 256])
            if outcome is not SpanExportResult.SUCCESS:
                raise PhoenixServerError(
                    f"OTLP export to {base_url}/v1/traces failed ({outcome.name}); "
                    "wrong API key or server down? (the exporter logged the HTTP error)"
                )
    finally:
        exporter.shutdown()
    return result


def list_spans(base_url: str, api_key: str, project: str, limit: int = 1000) -> list[dict]:
    """Every span of ``project`` (REST, id order); [] if the project does not exist yet."""
    out: list[dict] = []
    cursor = None
    with httpx.Client(headers={"Authorization": f"Bearer {api_key}"}, timeout=10.0) as client:
        while True:
            params: dict[str, Any] = {"limit": limit, "sort": "id", "order": "asc"}
            if cursor:
                params["cursor"] = cursor
            r = client.get(f"{base_url}/v1/projects/{quote(project, safe='')}/spans",
                           params=params)
            if r.status_code == 404:
                return []
            r.raise_for_status()
            body = r.json()
            out.extend(body["data"])
            cursor = body.get("next_cursor")
            if not cursor:
                return out


def wait_for_spans(
    base_url: str, api_key: str, project: str, n: int, timeout: float = 30.0
) -> list[dict]:
    """Poll until ``project`` holds at least ``n`` spans; returns them (raw REST records)."""
    deadline = time.monotonic() + timeout
    while True:
        spans = list_spans(base_url, api_key, project)
        if len(spans) >= n:
            return spans
        if time.monotonic() > deadline:
            raise PhoenixServerError(
                f"Phoenix project {project!r} has {len(spans)} spans after {timeout:.0f} s, "
                f"expected {n}"
            )
        time.sleep(0.25)


# --------------------------------------------------------------------------- sample traces


def agent_trace_specs(
    session_id: str = "session-1",
    user_id: str = "user-1",
    question: str = "What's the weather in Paris?",
    answer: str = "It is 18°C and sunny in Paris.",
    *,
    prefix: str = "t0",
    start_ns: int | None = None,
    tool_error: bool = False,
) -> list[SpanSpec]:
    """One agent turn as OpenInference spans: AGENT root (session.id, user.id) -> LLM
    (asks for a tool) -> TOOL -> LLM (answers). Four specs, keys prefixed by ``prefix``."""
    import json

    t = start_ns or time.time_ns()
    ms = 1_000_000
    tool_args = json.dumps({"city": "Paris"})
    tool_result = json.dumps({"temp_c": 18, "sky": "sunny"})
    call_id = f"call_{prefix}"
    return [
        {
            "key": f"{prefix}-agent", "name": "agent.run", "kind": "AGENT",
            "start_ns": t, "end_ns": t + 900 * ms, "status": "ok",
            "attributes": {
                "session.id": session_id, "user.id": user_id,
                "input.value": question, "input.mime_type": "text/plain",
                "output.value": answer, "output.mime_type": "text/plain",
                "metadata": json.dumps({"channel": "web", "tier": "pro"}),
                "tag.tags": ["prod", "weather"],
            },
        },
        {
            "key": f"{prefix}-llm1", "parent": f"{prefix}-agent", "name": "ChatCompletion",
            "kind": "LLM", "otel_kind": "CLIENT",
            "start_ns": t + 10 * ms, "end_ns": t + 400 * ms, "status": "ok",
            "attributes": {
                "llm.model_name": "gpt-4o-mini", "llm.provider": "openai", "llm.system": "openai",
                "llm.invocation_parameters": json.dumps({"temperature": 0.0}),
                "llm.input_messages.0.message.role": "system",
                "llm.input_messages.0.message.content": "You are a weather assistant.",
                "llm.input_messages.1.message.role": "user",
                "llm.input_messages.1.message.content": question,
                "llm.output_messages.0.message.role": "assistant",
                "llm.output_messages.0.message.tool_calls.0.tool_call.id": call_id,
                "llm.output_messages.0.message.tool_calls.0.tool_call.function.name":
                    "get_weather",
                "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments":
                    tool_args,
                "llm.tools.0.tool.json_schema": json.dumps(
                    {"type": "function", "function": {"name": "get_weather", "parameters": {
                        "type": "object", "properties": {"city": {"type": "string"}}}}}),
                "llm.token_count.prompt": 52, "llm.token_count.completion": 17,
                "llm.token_count.total": 69,
                "input.value": json.dumps({"messages": [{"role": "user", "content": question}]}),
                "input.mime_type": "application/json",
            },
        },
        {
            "key": f"{prefix}-tool", "parent": f"{prefix}-agent", "name": "get_weather",
            "kind": "TOOL", "start_ns": t + 410 * ms, "end_ns": t + 500 * ms,
            "status": "error" if tool_error else "ok",
            "status_message": "weather backend timed out" if tool_error else None,
            "exception": "weather backend timed out" if tool_error else None,
            "attributes": {
                "tool.name": "get_weather", "tool.description": "Current weather for a city",
                "tool.parameters": tool_args, "tool_call.id": call_id,
                "input.value": tool_args, "input.mime_type": "application/json",
                **({} if tool_error else {"output.value": tool_result,
                                          "output.mime_type": "application/json"}),
            },
        },
        {
            "key": f"{prefix}-llm2", "parent": f"{prefix}-agent", "name": "ChatCompletion",
            "kind": "LLM", "otel_kind": "CLIENT",
            "start_ns": t + 510 * ms, "end_ns": t + 890 * ms, "status": "ok",
            "attributes": {
                "llm.model_name": "gpt-4o-mini",
                "llm.input_messages.0.message.role": "user",
                "llm.input_messages.0.message.content": question,
                "llm.input_messages.1.message.role": "assistant",
                "llm.input_messages.1.message.tool_calls.0.tool_call.id": call_id,
                "llm.input_messages.1.message.tool_calls.0.tool_call.function.name":
                    "get_weather",
                "llm.input_messages.1.message.tool_calls.0.tool_call.function.arguments":
                    tool_args,
                "llm.input_messages.2.message.role": "tool",
                "llm.input_messages.2.message.tool_call_id": call_id,
                "llm.input_messages.2.message.content": tool_result,
                "llm.output_messages.0.message.role": "assistant",
                "llm.output_messages.0.message.content": answer,
                "llm.token_count.prompt": 80, "llm.token_count.completion": 12,
                "llm.token_count.total": 92,
            },
            "events": [{"name": "first_token", "time_ns": t + 600 * ms,
                        "attributes": {"latency_ms": 90}}],
        },
    ]


if __name__ == "__main__":  # manual use: start one and keep it up until Ctrl-C
    with phoenix_server(keep_working_dir=True) as phx:
        print(f"base_url={phx.base_url}\napi_key={phx.api_key}\nlog={phx.log_path}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    sys.exit(0)
