"""prefect.yaml on a REAL Prefect server, as an operator runs it: a server, the process work pool,
`prefect deploy --all`, a worker, a run of the nightly deployment; then everything is stopped.

Every Prefect process gets its own PREFECT_HOME (and SQLite database) under the test's tmp dir,
listens on 127.0.0.1 only, and runs in its own process group, which is terminated at the end
(worker first: it deregisters from the server on the way out), with a check that nothing is left.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
from cli_helpers import PYCACHE, ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

POOL = "replay-process"
BLOCK = "nightly-e2e-agent-key"
CANARY = "sk-e2e-canary-41d0b7-never-logged"
RUN_TIMEOUT_S = 240
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prefect(*args: str) -> list[str]:
    return [sys.executable, "-m", "prefect", *args]


def _env(home: Path, api: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_", "REPLAY_")) and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="60", PREFECT_CLI_PROMPT="false",
               PREFECT_UI_ENABLED="false", PREFECT_LOGGING_LEVEL="INFO",
               PREFECT_RUNNER_AUTO_INSTALL_DEPENDENCIES="false",  # never `uv run --no-default-groups` on .venv
               PREFECT_WORKER_QUERY_SECONDS="1", PYTHONPYCACHEPREFIX=str(PYCACHE))
    if api:
        env["PREFECT_API_URL"] = api
    return env


def _cli(args: list[str], env: dict[str, str], timeout: float = 90) -> subprocess.CompletedProcess:
    r = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert r.returncode == 0, f"{' '.join(args[2:])} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def _stop(p: subprocess.Popen, grace: float = 20) -> None:
    """Terminate a process group (SIGTERM, then SIGKILL past ``grace``) and whatever it started
    outside it (the worker puts each flow run in a process group of its own)."""
    try:
        descendants = psutil.Process(p.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10)):
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            break
        try:
            p.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    _gone, alive = psutil.wait_procs([d for d in descendants if d.is_running()], timeout=5)
    for d in alive:
        d.kill()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _tail(log: Path, n: int = 4000) -> str:
    return log.read_text(errors="replace")[-n:] if log.exists() else ""


def _client_call(api: str, fn):
    """``await fn(client)`` with a Prefect client on the test's server."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def go():
        async with get_client() as client:
            return await fn(client)

    with temporary_settings(updates={PREFECT_API_URL: api}):
        return asyncio.run(go())


def _save_secret(api: str) -> None:
    from prefect.blocks.system import Secret
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api}):
        Secret(value=CANARY).save(BLOCK, overwrite=True)


def test_nightly_deployment_on_a_real_server(tmp_path):
    t0 = time.monotonic()
    timings: dict[str, float] = {}
    home, data_dir = tmp_path / "prefect-home", tmp_path / "data"
    home.mkdir()
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    server_log, worker_log = tmp_path / "server.log", tmp_path / "worker.log"
    server = _spawn(_prefect("server", "start", "--host", "127.0.0.1", "--port", str(port)), _env(home, None),
                    server_log)
    worker = None
    try:
        # ---- the server
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, f"prefect server exited {server.returncode}:\n{_tail(server_log)}"
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"no /api/health after 90 s:\n{_tail(server_log)}"
            time.sleep(0.25)
        timings["server"] = time.monotonic() - t0
        procs = [psutil.Process(server.pid), *psutil.Process(server.pid).children(recursive=True)]
        listening = {c.laddr.ip for p in procs for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}
        assert listening == {"127.0.0.1"}, listening

        # ---- the work pool and the deployments of prefect.yaml
        env = _env(home, api)
        _cli(_prefect("work-pool", "create", POOL, "--type", "process"), env)
        t = time.monotonic()
        out = _cli(_prefect("deploy", "--all", "--no-prompt"), env).stdout
        timings["deploy"] = time.monotonic() - t
        for name in ("nightly/nightly", "ingest/ingest", "scenario/scenario", "simulate/simulate"):
            assert f"Deployment '{name}' successfully created" in out, out[-3000:]

        dep = _client_call(api, lambda c: c.read_deployment_by_name("nightly/nightly"))
        [sched] = dep.schedules
        assert (sched.schedule.cron, sched.schedule.timezone, sched.active) == ("0 2 * * *", "UTC", True)
        assert dep.work_pool_name == POOL and dep.entrypoint == "flows/nightly.py:nightly_flow"
        assert dep.job_variables == {"env": {"TZ": "UTC"}}
        assert dep.pull_steps == [{"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}]
        defaults = dep.parameters["params"]
        assert defaults["paths"] == ["data/samples/otlp"] and defaults["project"] == "support-agent"
        assert defaults["agent"] == "examples.support_agent:agent"
        for name in ("ingest/ingest", "scenario/scenario", "simulate/simulate"):  # manual runs only
            assert _client_call(api, lambda c, n=name: c.read_deployment_by_name(n)).schedules == []

        # ---- a worker, and a run of the nightly deployment (its defaults, into a tmp data dir)
        _save_secret(api)
        worker = _spawn(_prefect("worker", "start", "--pool", POOL, "--type", "process"), env, worker_log)
        params = {"params": {**defaults, "rows": 6, "data_dir": str(data_dir), "agent_api_key_block": BLOCK}}
        t = time.monotonic()
        out = _cli(_prefect("deployment", "run", "nightly/nightly", "--params", json.dumps(params)), env).stdout
        flow_run_id = re.search(r"UUID: ([0-9a-f-]{36})", out).group(1)
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while True:
            fr = _client_call(api, lambda c: c.read_flow_run(flow_run_id))
            if fr.state and fr.state.type.value in TERMINAL:
                break
            assert worker.poll() is None, f"the worker exited {worker.returncode}:\n{_tail(worker_log)}"
            assert time.monotonic() < deadline, f"flow run still {fr.state_name} after {RUN_TIMEOUT_S} s:\n" \
                                                f"{_tail(worker_log)}"
            time.sleep(1)
        timings["run"] = time.monotonic() - t
        assert fr.state.type.value == "COMPLETED", f"{fr.state_name}: {fr.state.message}\n{_tail(worker_log)}"
        assert fr.deployment_id == dep.id and fr.parameters == params

        # ---- what it left: artifacts, the report, the catalog; and no secret anywhere
        from prefect.client.schemas.filters import (
            ArtifactFilter,
            ArtifactFilterFlowRunId,
            LogFilter,
            LogFilterFlowRunId,
        )

        arts = {a.key: a for a in _client_call(api, lambda c: c.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))))}
        summary = arts["nightly-support-agent"].data
        ex_id = re.search(r"Execution `(ex_[0-9a-f]+)`", summary).group(1)
        report = Path(re.search(r"Report: `([^`]+)`", summary).group(1))
        assert report.parent == data_dir / "reports" / "nightly" and report.name.endswith(f"-selection-{ex_id}.html")
        assert report.is_file() and ex_id in report.read_text() and "**completed**, 6/6 chats" in summary
        assert report.as_uri() in arts["nightly-support-agent-selection-report"].data
        assert f"metrics-{ex_id.replace('_', '-')}" in arts and f"metrics-{ex_id.replace('_', '-')}-summary" in arts
        from models.settings import load_settings
        from tasks.store import catalog

        with catalog.reader(load_settings(data_dir=data_dir)) as con:
            assert con.execute("select status, completed_chats from executions where execution_id = ?",
                               [ex_id]).fetchone() == ("completed", 6)
        # the run's last log lines are shipped in a batch when its process exits, after its final state
        deadline = time.monotonic() + 20
        while True:
            logs = _client_call(api, lambda c: c.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))))
            if any(ex_id in r.message for r in logs) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert any("set_working_directory" in r.message for r in logs)  # the pull step ran
        assert any(ex_id in r.message for r in logs), [r.message for r in logs]
        assert not [r.message for r in logs if CANARY in r.message]
        assert not [k for k, a in arts.items() if CANARY in str(a.data)]
        assert CANARY not in _tail(worker_log, 10**7)
        assert not [p for p in data_dir.rglob("*") if p.is_file() and CANARY.encode() in p.read_bytes()]
    finally:
        t = time.monotonic()
        if worker is not None:
            _stop(worker)
        _stop(server)
        timings["stop"] = time.monotonic() - t
    assert not _group_alive(server.pid) and (worker is None or not _group_alive(worker.pid))
    timings["total"] = time.monotonic() - t0
    print("timings (s):", {k: round(v, 1) for k, v in timings.items()})
    assert timings["total"] < 180, timings
