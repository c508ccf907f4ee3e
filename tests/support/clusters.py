"""Clusters the flow tests and the scale benchmark start themselves: a Ray head on the loopback,
and the Prefect task runs of one flow run (what a batch became)."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_ray_head(env: dict[str, str], timeout_s: float = 90) -> tuple[subprocess.Popen, str, Path]:
    """``ray start --head --block`` of two CPUs, every server on 127.0.0.1 (Ray takes the loopback as
    the node's address only with RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0; else it swaps 127.0.0.1 for
    the machine's address), in a process group of its own; returns it, its address and its temp dir
    (short: Ray's socket paths are length-capped; its output is ``ray-start.log`` there)."""
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    port = free_port()
    log = temp / "ray-start.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([str(Path(sys.executable).with_name("ray")), "start", "--head", "--block",
                                 "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
                                 "--include-dashboard=false", "--disable-usage-stats",
                                 f"--ray-client-server-port={free_port()}",
                                 f"--dashboard-agent-listen-port={free_port()}", f"--temp-dir={temp}"],
                                env=env | {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"},
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ray start exited: {log.read_text()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, f"127.0.0.1:{port}", temp
        time.sleep(0.5)
    stop_ray_head(proc)
    raise RuntimeError(f"the Ray head did not listen within {timeout_s:.0f} s")


def stop_ray_head(proc: subprocess.Popen) -> None:
    """SIGTERM to the head's group (--block: the head stops its cluster), SIGKILL to the group after
    5 s (a head of Ray 2.60 often outlives 30 s of SIGTERM: the tests waited them out)."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def task_runs(flow_run_id, prefix: str) -> list:
    """The task runs of ``flow_run_id`` whose name starts with ``prefix``."""
    from prefect.client.orchestration import get_client

    async def read() -> list:
        async with get_client() as client:
            return [t for t in await client.read_task_runs()
                    if t.flow_run_id == flow_run_id and t.name.startswith(prefix)]

    return asyncio.run(read())


def sample_scenario(s, rows: int) -> tuple[str, str]:
    """The bundled sample ingested into ``s``'s data dir, a replay of all its sessions and an
    offline scenario of ``rows`` rows: (replay id, scenario id)."""
    from models.settings import SAMPLES_DIR
    from tasks import scenario
    from tasks.ingest import run_ingest
    from tasks.scenario import replays
    from tasks.store import catalog

    run_ingest(s, paths=[SAMPLES_DIR / "otlp"])
    with catalog.writer(s) as con:
        rs = replays.create(con, "support-agent", "session", select_all=True)
        sc = scenario.generate(con, s, rs["replay_id"], "bot", "s", rows=rows)
    return rs["replay_id"], sc["scenario_id"]


def outcome(s, execution_id: str) -> tuple[list, list, list, list]:
    """What a run produced, without its ids and times: chats by (row, repetition), their turns'
    answers, every score but latency, the execution's metrics but latency."""
    from tasks.store import catalog

    e = {"e": execution_id}
    with catalog.reader(s) as con:
        chats = con.execute("select row_index, repetition, status, ended_reason, divergence_turn, turn_count "
                            "from chats where execution_id = $e order by all", e).fetchall()
        turns = con.execute("select c.row_index, c.repetition, t.turn_index, t.user_message, t.assistant_message, "
                            "t.similarity from chat_turns t join chats c using (chat_id) "
                            "where t.execution_id = $e order by all", e).fetchall()
        scores = con.execute("select c.row_index, c.repetition, s.turn_index, s.evaluator, s.value, s.label, s.passed "
                             "from eval_scores s join chats c using (chat_id) where s.execution_id = $e "
                             "and s.evaluator <> 'latency' "
                             "order by all", e).fetchall()
        cur = con.execute("select * exclude (execution_id, evaluated_at, avg_chat_latency_ms) "
                          "from execution_metrics where execution_id = $e", e)
        metrics = [dict(zip([d[0] for d in cur.description], r, strict=True)) for r in cur.fetchall()]
    return chats, turns, scores, metrics


def in_process_outcome(s, scenario_id: str, agent: str, opts) -> tuple[list, list, list, list]:
    """The same scenario run and scored in this process: its :func:`outcome`."""
    from tasks.common.runner import IN_PROCESS
    from tasks.evaluate import run_and_score
    from tasks.simulate import start_run

    here = start_run(s, scenario_id, agent, opts)
    info = asyncio.run(run_and_score(s, here, IN_PROCESS))
    assert info.completed_chats == info.total_chats, info
    return outcome(s, here)


_TOKEN: list[Path] = []


def _test_token() -> Path:
    """One Ray token file for every cluster this process starts (never ~/.ray's): a Ray driver reads
    its token once per process, so a second cluster with a token of its own would refuse it."""
    if not _TOKEN:
        token = Path(tempfile.mkdtemp(prefix="raytoken")) / "auth_token"
        token.write_text(secrets.token_hex(32))
        atexit.register(shutil.rmtree, token.parent, ignore_errors=True)
        _TOKEN.append(token)
    return _TOKEN[0]


@contextlib.contextmanager
def ray_cluster() -> Iterator[str]:
    """A Ray head of two CPUs on 127.0.0.1 (:func:`start_ray_head`), started with this process's
    environment (its workers inherit it), token authentication on with this process's test token
    (:func:`_test_token`); yields its address, stops it and its workers after. The driver finds the
    token through RAY_AUTH_TOKEN_PATH, as a team's driver would; the RAY_* variables are put back after."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("RAY_")}
    os.environ["RAY_AUTH_TOKEN_PATH"] = str(_test_token())
    proc, address, temp = start_ray_head({**os.environ, "RAY_AUTH_MODE": "token"})
    try:
        yield address
    finally:
        stop_ray_head(proc)
        shutil.rmtree(temp, ignore_errors=True)
        for k in [k for k in os.environ if k.startswith("RAY_")]:
            os.environ.pop(k)
        os.environ.update(saved)


def run_flow(s, scenario_id: str, agent: str, opts, engine: str, address: str | None = None,
             replay_id: str | None = None):
    """The simulate flow on ``engine`` (``dask`` or ``ray``, at ``address``) for ``s``'s data dir; its
    final state."""
    from flows.simulate import simulate_flow

    return asyncio.run(simulate_flow(scenario_id=scenario_id, agent_ref=agent, options=opts, replay_id=replay_id,
                                     data_dir=str(s.data_dir), task_runner=engine,
                                     dask_address=address if engine == "dask" else None,
                                     ray_address=address if engine == "ray" else None, return_state=True))
