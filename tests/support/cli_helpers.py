"""Run the ``replay`` CLI as a user does: a fresh interpreter, a clean environment.

``python -m replay.cli`` with no ``REPLAY_*`` variable and no ``PREFECT_API_URL`` (so it runs
in-process), in the project root. The byte-code of the subprocesses goes to a cache under the
temp dir (``PYTHONPYCACHEPREFIX``): the environment sets ``PYTHONDONTWRITEBYTECODE``, and without
a cache every call compiles ~200 modules again (~0.6 s of CPU each).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYCACHE = Path(tempfile.gettempdir()) / f"replay-tests-pycache-{os.getuid()}"


def replay_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("REPLAY_") and k not in ("PREFECT_API_URL", "PYTHONDONTWRITEBYTECODE")}
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    env.update(extra)
    return env


def replay_cmd(data_dir: str | Path | None, args) -> list[str]:
    pre = ["--data-dir", str(data_dir)] if data_dir is not None else []
    return [sys.executable, "-m", "replay.cli", *pre, *map(str, args)]


def start(data_dir: str | Path | None, args, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start ``replay [--data-dir D] ARGS...`` in the background."""
    return subprocess.Popen(replay_cmd(data_dir, args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env or replay_env(), cwd=ROOT)


def finish(p: subprocess.Popen, timeout: float = 60) -> subprocess.CompletedProcess:
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def replay_all(calls, timeout: float = 60) -> list[subprocess.CompletedProcess]:
    """[(data_dir, args), ...] run concurrently -> their CompletedProcess, in order."""
    procs = [start(d, a) for d, a in calls]
    return [finish(p, timeout) for p in procs]


def replay(data_dir: str | Path | None, *args, timeout: float = 60,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return finish(start(data_dir, args, env), timeout)


def assert_one_line_error(r: subprocess.CompletedProcess) -> str:
    """Non-zero exit, exactly one line on stderr, ``replay: error: ...``, no traceback."""
    assert r.returncode not in (0, None), (r.args, r.stdout, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("replay: error:"), r.stderr
    assert "Traceback" not in r.stderr
    return lines[0]


def start_logged(data_dir: str | Path | None, args, logs: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """``start`` with stdout and stderr going to files (``logs``.out, ``logs``.err; their paths
    on the Popen as ``out_path``, ``err_path``): what a test reads while the process still runs,
    and what never blocks on a pipe that a surviving child process keeps open."""
    out_path, err_path = logs.with_suffix(".out"), logs.with_suffix(".err")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        p = subprocess.Popen(replay_cmd(data_dir, args), stdout=out, stderr=err, env=env or replay_env(), cwd=ROOT)
    p.out_path, p.err_path = out_path, err_path
    return p


def wait_for(predicate, timeout: float, every: float = 0.05):
    """The first truthy value of ``predicate()`` within ``timeout`` seconds, else None."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


def sample_scenario(data_dir: str | Path, rows: int = 12, env: dict[str, str] | None = None) -> dict:
    """The bundled sample ingested into ``data_dir``, a replay of all its sessions and a scenario
    of ``rows`` rows (12: one a session, 38 turns), through the CLI; the scenario's ``--json``."""
    import json

    from models.settings import SAMPLES_DIR

    assert replay(data_dir, "ingest", SAMPLES_DIR / "otlp", env=env).returncode == 0
    rs = json.loads(replay(data_dir, "--json", "replays", "create", "--project", "support-agent", "--type", "session",
                           "--all", env=env).stdout)
    return json.loads(replay(data_dir, "--json", "scenarios", "generate", rs["replay_id"], "--agent-name", "a",
                             "--scenario-name", "s", "--rows", str(rows), env=env).stdout)
