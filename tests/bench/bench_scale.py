"""Scale benchmark: ingest and simulation at 1x, 4x and 16x the bundled sample.

    uv run python tests/bench/bench_scale.py [--scales 1,4,16] [--runners local,thread,dask,ray]
                                             [--agent oracle|sleepy|busy] [--repeat 4] [--concurrency 32] [--batch-size 16]

Run on demand (pytest ignores tests/bench). For each scale N it
1. multiplies ``data/samples/otlp`` N times: copy c rewrites every trace/span id by xor-ing c
   into its first four bytes (hex ids as hex, proto-JSON base64 ids as base64) and every
   session id by a ``~c`` suffix (copy 0 is the sample itself); everything else — files,
   lines, span shapes, the trace split across two files, timestamps — is kept;
2. ingests it into a fresh data dir (in a child process: ``tasks.ingest.run_ingest``, what
   ``replay ingest`` runs without a Prefect server) and checks spans = 139 N, sessions = 12 N;
3. makes a replay of every session and its scenario (one row per session; not timed);
4. runs the scenario ``--repeat`` times (48 N chats) against the agent with each runner, each
   in its own child process: ``local`` (``replay run`` in-process, no Prefect), ``thread`` (the
   Prefect flow, batches as task runs in the flow's event loop), ``dask`` (the Prefect flow,
   batches on the local Dask cluster of two worker processes that the flow starts and stops)
   ``dask-warm`` (the Prefect flow on an existing cluster, ``REPLAY_DASK_ADDRESS``: two
   loopback workers started once by this script, their imports warmed), ``dask-warm-1`` (the
   same with one worker), ``ray`` (the Prefect flow on ``prefect_ray.RayTaskRunner``: a local
   Ray instance of two CPUs that the flow starts and stops) and ``ray-warm`` (an existing Ray
   head of two CPUs, ``REPLAY_RAY_ADDRESS``, started once by this script with ``ray start``;
   Ray starts a job's worker processes for each flow run, so their imports are not warm); the
   flows report to one temporary Prefect server started by this script.
Peak RSS is the largest sum of RSS over the child's process tree (the Dask workers and the local
Ray instance included; for dask-warm(-1), the worker processes of the script's cluster are
added, for ray-warm every process of the script's Ray head), sampled every 20 ms.
"simulate s" is the chats phase (``ExecutionInfo.seconds``: for dask and ray it includes starting
and stopping the cluster); "run s" the whole call (run test, chats, scoring).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "support")]

SAMPLE = ROOT / "data" / "samples"
SAMPLE_SPANS, SAMPLE_SESSIONS = 139, 12
SLEEPY = f"{Path(__file__).resolve()}:sleepy"  # imported by path (also in the Dask and Ray workers)
BUSY = f"{Path(__file__).resolve()}:busy"
AGENTS = {"oracle": "examples.support_agent:oracle", "sleepy": SLEEPY, "busy": BUSY}


async def sleepy(input) -> str:
    """An agent that waits 5 ms a turn (an I/O-bound agent: no CPU)."""
    import asyncio

    await asyncio.sleep(0.005)
    return f"answer {input.turn_index}"


async def busy(input) -> str:
    """An agent that computes for 20 ms a turn (a CPU-bound agent: what more processes help)."""
    end = time.process_time() + 0.02
    n = 0
    while time.process_time() < end:
        n += 1
    return f"answer {input.turn_index} after {n > 0}"


# --------------------------------------------------------------------------- data
def _xor_id(value: str, c: int) -> str:
    """The id of copy ``c``: c xor-ed into the id's first four bytes, in the id's own encoding."""
    if not value or c == 0:
        return value
    try:
        raw, hex_form = bytes.fromhex(value), True
    except ValueError:
        raw, hex_form = base64.b64decode(value), False
    out = (int.from_bytes(raw[:4], "big") ^ c).to_bytes(4, "big") + raw[4:]
    return out.hex() if hex_form else base64.b64encode(out).decode()


def _rewrite_spans(req: dict[str, Any], c: int) -> None:
    for rs in req.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for sp in ss.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if sp.get(key):
                        sp[key] = _xor_id(sp[key], c)
                for link in sp.get("links", []) or []:
                    for key in ("traceId", "spanId"):
                        if link.get(key):
                            link[key] = _xor_id(link[key], c)


def multiply_sample(out: Path, n: int) -> dict[str, Any]:
    """``n`` copies of the sample in ``out`` (same files, each with n times the lines)."""
    sessions = list(json.loads((SAMPLE / "expected.json").read_text())["sessions"])
    out.mkdir(parents=True, exist_ok=True)
    lines_out = 0
    for src in sorted((SAMPLE / "otlp").iterdir()):
        gz = src.suffix == ".gz"
        text = (gzip.decompress(src.read_bytes()) if gz else src.read_bytes()).decode()
        proto = "proto" in src.name
        lines = [ln for ln in text.splitlines() if ln.strip()]
        copies = []
        for c in range(n):
            for line in lines:
                req = json.loads(line)
                _rewrite_spans(req, c)
                s = json.dumps(req) if proto else json.dumps(req, separators=(",", ":"), ensure_ascii=False)
                if c:
                    for sid in sessions:  # session ids only ever appear as whole attribute values
                        s = s.replace(f'"{sid}"', f'"{sid}~{c}"')
                copies.append(s)
        data = ("\n".join(copies) + "\n").encode()
        (out / src.name).write_bytes(gzip.compress(data, mtime=0) if gz else data)
        lines_out += len(copies)
    return {"dir": str(out), "lines": lines_out, "spans": SAMPLE_SPANS * n, "sessions": SAMPLE_SESSIONS * n}


# --------------------------------------------------------------------------- children
def child_ingest(a) -> dict[str, Any]:
    from models.settings import load_settings
    from tasks.ingest import run_ingest

    s = load_settings(data_dir=a.data_dir)
    t0 = time.perf_counter()
    info = run_ingest(s, paths=[a.input])
    return {"seconds": time.perf_counter() - t0, "ingested": info.ingested, "rejected": info.rejected,
            "sessions": info.sessions, "turns": info.turns}


def child_prepare(a) -> dict[str, Any]:
    from models.settings import load_settings
    from tasks import scenario
    from tasks.scenario import replays
    from tasks.store import catalog

    s = load_settings(data_dir=a.data_dir)
    with catalog.writer(s) as con:
        spans = con.execute("select count(*) from spans").fetchone()[0]
        n = con.execute("select count(*) from sessions").fetchone()[0]
        rs = replays.create(con, "support-agent", "session", select_all=True)
        sc = scenario.generate(con, s, rs["replay_id"], "bench", "scale", rows=n)
    return {"spans": spans, "sessions": n, "scenario_id": sc["scenario_id"], "rows": sc["rows"]}


def child_simulate(a) -> dict[str, Any]:
    import asyncio

    from models.settings import load_settings
    from models.simulate import RunOptions

    s = load_settings(data_dir=a.data_dir)
    opts = RunOptions(repeat=a.repeat, concurrency=a.concurrency, batch_size=a.batch_size, retries=0,
                      turn_timeout_s=60, name=f"bench {a.runner}")
    t0 = time.perf_counter()
    if a.runner == "local":
        from stages import run_local

        info = run_local(s, a.scenario, AGENTS[a.agent], opts, progress=False).model_dump()
    else:
        from flows.simulate import simulate_flow

        info = asyncio.run(simulate_flow(scenario_id=a.scenario, agent_ref=AGENTS[a.agent], options=opts,
                                         data_dir=str(s.data_dir), task_runner=a.runner.split("-")[0]))
    # (ray-warm: REPLAY_RAY_ADDRESS in the environment; dask-warm*: REPLAY_DASK_ADDRESS)
    wall = time.perf_counter() - t0
    match = (info.get("metrics") or {}).get("avg_ground_truth_match")
    return {"wall": wall, "seconds": info["seconds"], "total": info["total_chats"],
            "completed": info["completed_chats"], "failed": info["failed_chats"], "mode": info["mode"],
            "match": match}


# --------------------------------------------------------------------------- the parent
def _warm_imports() -> None:
    """What a worker imports for its first batch (run on the dask-warm cluster's workers)."""
    import importlib

    for name in ("prefect.task_engine", "tasks.simulate", "tasks.simulate.scale_out", "examples.support_agent"):
        importlib.import_module(name)


class Clusters:
    """The clusters this script starts once for the warm runners, and each runner's environment."""

    def __init__(self, runners: list[str], tmp: Path, flow_env: dict[str, str]):
        self.flow_env, self.dask, self.pids = flow_env, {}, {}
        self.ray_head, self.ray_address = None, None
        for r, workers in (("dask-warm", 2), ("dask-warm-1", 1)):
            if r in runners:
                from distributed import Client, LocalCluster

                from tasks.simulate.scale_out import LOCAL_CLUSTER

                self.dask[r] = LocalCluster(**(LOCAL_CLUSTER | {"n_workers": workers}))
                with Client(self.dask[r]) as client:
                    client.run(_warm_imports)
                    self.pids[r] = list(client.run(os.getpid).values())
                print(f"Dask cluster at {self.dask[r].scheduler_address}, worker pids {self.pids[r]}", flush=True)
        if "ray-warm" in runners:
            from clusters import start_ray_head  # tests/support

            self.ray_head, self.ray_address, _temp = start_ray_head(flow_env)
            self.pids["ray-warm"] = [self.ray_head.pid]  # its tree: raylet, the job's workers
            print(f"Ray head at {self.ray_address}", flush=True)

    def env(self, runner: str, base_env: dict[str, str]) -> tuple[dict[str, str], list[int] | None]:
        """The child's environment and the processes outside its tree that run its chats."""
        if runner == "local":
            return base_env, None
        if runner in self.dask:
            return self.flow_env | {"REPLAY_DASK_ADDRESS": self.dask[runner].scheduler_address}, self.pids[runner]
        if runner == "ray-warm":
            return self.flow_env | {"REPLAY_RAY_ADDRESS": self.ray_address}, self.pids[runner]
        return self.flow_env, None

    def close(self) -> None:
        for cluster in self.dask.values():
            cluster.close()
        if self.ray_head is not None:
            from clusters import stop_ray_head

            stop_ray_head(self.ray_head)


def run_child(args: list[str], env: dict[str, str], timeout: float = 1800,
              extra_pids: list[int] | None = None) -> dict[str, Any]:
    """Run this script as a child; returns its JSON answer and the peak RSS of its process tree
    (plus the processes ``extra_pids``)."""
    import psutil

    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        tree, peak, t0 = psutil.Process(proc.pid), 0, time.perf_counter()
        while proc.poll() is None:
            try:
                procs = [tree, *tree.children(recursive=True)]
            except psutil.Error:
                procs = []
            for pid in extra_pids or []:  # with their children (a Ray head's workers)
                try:
                    extra = psutil.Process(pid)
                    procs += [extra, *extra.children(recursive=True)]
                except psutil.Error:
                    pass
            rss = 0
            for p in procs:
                try:
                    rss += p.memory_info().rss
                except psutil.Error:
                    pass
            peak = max(peak, rss)
            if time.perf_counter() - t0 > timeout:
                for p in [*tree.children(recursive=True), tree]:  # only the tree this bench started
                    try:
                        p.kill()
                    except psutil.Error:
                        pass
            time.sleep(0.02)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"child {' '.join(args[:2])} failed ({proc.returncode}):\n{stderr[-12000:]}")
    res = json.loads(stdout.strip().splitlines()[-1])
    res["peak_rss_mb"] = peak / 2**20
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scales", default="1,4,16")
    ap.add_argument("--runners", default="local,thread,dask,dask-warm,dask-warm-1,ray,ray-warm")
    ap.add_argument("--agent", choices=sorted(AGENTS), default="oracle")
    ap.add_argument("--repeat", type=int, default=4)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--keep", action="store_true", help="keep the data dirs (printed)")
    ap.add_argument("--child", choices=["ingest", "prepare", "simulate"], help=argparse.SUPPRESS)
    ap.add_argument("--input", help=argparse.SUPPRESS)
    ap.add_argument("--data-dir", help=argparse.SUPPRESS)
    ap.add_argument("--scenario", help=argparse.SUPPRESS)
    ap.add_argument("--runner", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        fn = {"ingest": child_ingest, "prepare": child_prepare, "simulate": child_simulate}[a.child]
        print(json.dumps(fn(a), default=str), flush=True)
        return

    scales = [int(x) for x in a.scales.split(",") if x.strip()]
    runners = [x.strip() for x in a.runners.split(",") if x.strip()]
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "REPLAY_"))}
    base_env |= {"PREFECT_HOME": str(tmp / "prefect-home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                 "PYTHONPATH": str(ROOT)}
    flow_env = dict(base_env)
    harness = None
    if any(r != "local" for r in runners):
        os.environ.update(PREFECT_HOME=base_env["PREFECT_HOME"], PREFECT_SERVER_ANALYTICS_ENABLED="false")
        os.environ.pop("PREFECT_API_URL", None)
        from prefect.settings import PREFECT_API_URL
        from prefect.testing.utilities import prefect_test_harness

        harness = prefect_test_harness(server_startup_timeout=120)
        harness.__enter__()
        flow_env["PREFECT_API_URL"] = PREFECT_API_URL.value()
        print(f"temporary Prefect server at {flow_env['PREFECT_API_URL']}", flush=True)
    clusters = Clusters(runners, tmp, flow_env)
    ingest_rows, sim_rows = [], []
    try:
        for n in scales:
            d = tmp / f"x{n}"
            data = multiply_sample(d / "input", n)
            ing = run_child(["--child", "ingest", "--input", data["dir"], "--data-dir", str(d / "data")], base_env)
            assert ing["ingested"] == data["spans"] and ing["sessions"] == data["sessions"], (ing, data)
            ingest_rows.append({"scale": n, "spans": ing["ingested"], **ing})
            print(f"x{n}: ingest {ing['ingested']} spans in {ing['seconds']:.2f} s, "
                  f"peak RSS {ing['peak_rss_mb']:.0f} MB", flush=True)
            prep = run_child(["--child", "prepare", "--data-dir", str(d / "data")], base_env)
            assert prep["spans"] == data["spans"] and prep["rows"] == data["sessions"], prep
            for r in runners:
                env, extra = clusters.env(r, base_env)
                res = run_child(["--child", "simulate", "--data-dir", str(d / "data"), "--scenario",
                                 prep["scenario_id"], "--runner", r, "--agent", a.agent, "--repeat", str(a.repeat),
                                 "--concurrency", str(a.concurrency), "--batch-size", str(a.batch_size)],
                                env, extra_pids=extra)
                assert res["completed"] == res["total"] == data["sessions"] * a.repeat, res
                sim_rows.append({"scale": n, "runner": r, **res})
                print(f"x{n} {r}: {res['total']} chats, chats phase {res['seconds']:.2f} s, run {res['wall']:.2f} s, "
                      f"peak RSS {res['peak_rss_mb']:.0f} MB, match {res['match']}", flush=True)
    finally:
        clusters.close()
        if harness is not None:
            harness.__exit__(None, None, None)
        if a.keep:
            print(f"data kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print("\n### Ingest (in-process `replay ingest`, fresh data dir)\n")
    print("| scale | spans | ingest s | spans/s | ingest s per 1k spans | peak RSS MB (tree) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in ingest_rows:
        print(f"| {r['scale']}x | {r['spans']:,} | {r['seconds']:.2f} | {r['spans'] / r['seconds']:,.0f} | "
              f"{r['seconds'] / r['spans'] * 1000:.3f} | {r['peak_rss_mb']:.0f} |")
    print(f"\n### Simulate (agent {AGENTS[a.agent].split(':')[-1]}, repeat {a.repeat}, concurrency {a.concurrency}, "
          f"batches of {a.batch_size})\n")
    print("| scale | runner | chats | simulate s (chats phase) | run s (whole call) | chats/s | s per 100 chats "
          "| peak RSS MB (tree) |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in sim_rows:
        print(f"| {r['scale']}x | {r['runner']} | {r['total']:,} | {r['seconds']:.2f} | {r['wall']:.2f} | "
              f"{r['total'] / r['seconds']:,.0f} | {r['seconds'] / r['total'] * 100:.3f} | {r['peak_rss_mb']:.0f} |")
    print(f"\n({os.cpu_count()} CPUs; Python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
