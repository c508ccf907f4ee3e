"""Clusters the flow tests and the scale benchmark start themselves: a Ray head on the loopback,
and the Prefect task runs of one flow run (what a batch became)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
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
    """SIGTERM to the head's group (--block: the head stops its cluster), SIGKILL after 30 s."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def task_runs(flow_run_id, prefix: str) -> list:
    """The task runs of ``flow_run_id`` whose name starts with ``prefix``."""
    from prefect.client.orchestration import get_client

    async def read() -> list:
        async with get_client() as client:
            return [t for t in await client.read_task_runs()
                    if t.flow_run_id == flow_run_id and t.name.startswith(prefix)]

    return asyncio.run(read())
