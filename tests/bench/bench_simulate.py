"""Simulation benchmark: `replay run` against an agent that sleeps 50 ms a turn.

    uv run python tests/bench/bench_simulate.py [--chats 10000] [--concurrency 256] [--baseline 200]

Builds a scenario of 4-turn rows (no model), runs it at 1/4, 1/2 and all of --chats, and
prints wall time against the ideal (total agent time / concurrency) and the peak RSS of the
process (memory must stay flat as chats grow). In the same run, the naive design — one
Prefect task per chat, on a temporary Prefect server — runs on --baseline chats as the
baseline, and its per-chat cost is extrapolated to --chats.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "bench"), str(ROOT / "tests" / "support")]

TURNS = 4


def make_scenario(settings, n_rows: int) -> str:
    from models.scenario import Persona, ScenarioRow, Turn
    from tasks.common.clock import now
    from tasks.scenario import scenarios as scenario
    from tasks.store import catalog

    rows = [ScenarioRow(row_index=i, origin_id=f"o{i}", persona=Persona(name=f"user {i}"),
                        situation="A benchmark user who asks four short questions in a row.",
                        outcome="The agent answered. It did so four times.", conversation_branch="start -> end",
                        branch_category="resolved", user_turns=[f"question {t}" for t in range(TURNS)],
                        expected_turns=[Turn(turn_index=t, trace_id=f"t{i}-{t}", user_message=f"question {t}",
                                             assistant_message=f"answer {t}") for t in range(TURNS)])
            for i in range(n_rows)]
    sid = f"scn_bench_{n_rows}"
    with catalog.writer(settings) as con:
        con.execute("insert into agent_definitions values ('bench', 1, 'bench', '', null, '[]', null, 'text', now()) "
                    "on conflict do nothing")
        scenario.store_scenario(con, {"scenario_id": sid, "scenario_name": sid, "replay_id": None, "project": "bench",
                                      "agent_name": "bench", "agent_version": 1, "source": "bench", "graph": None,
                                      "row_count": n_rows, "writer": "bench", "redactions": None, "failures": None,
                                      "created_at": now()}, rows)
    return sid


class PeakRSS:
    def __init__(self):
        self.peak, self._stop = 0, threading.Event()

    def _rss(self) -> int:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) // 1024
        return 0

    def __enter__(self):
        self.peak = self._rss()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(0.05)

    def __exit__(self, *exc):
        self._stop.set()
        self.t.join()


def run_replay(settings, chats: int, concurrency: int, batch: int) -> dict:
    from stages import run_local

    from models.simulate import RunOptions

    repeat = 10
    sid = make_scenario(settings, chats // repeat)
    opts = RunOptions(concurrency=concurrency, repeat=repeat, batch_size=batch, tool_mode="recorded",
                      turn_timeout_s=30, retries=0)
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        info = run_local(settings, sid, "sleepy_agent:agent", opts, progress=False)
        wall = time.perf_counter() - t0
    ideal = chats * TURNS * 0.05 / concurrency
    assert info.completed_chats == chats, info
    return {"chats": chats, "wall": wall, "ideal": ideal, "ratio": wall / ideal, "rss": mem.peak,
            "chats_s": chats / wall, "run": info.seconds, "run_ratio": info.seconds / ideal}


def run_naive(settings, chats: int) -> dict:
    """The naive design: one Prefect task per chat, on a temporary Prefect server."""
    import sleepy_agent
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from prefect.testing.utilities import prefect_test_harness

    from models.simulate import AgentInput

    @task(cache_policy=NO_CACHE)
    async def one_chat(i: int) -> int:
        for t in range(TURNS):
            await sleepy_agent.agent(AgentInput(thread_id=str(i), new_message={"role": "user", "content": "q"},
                                                turn_index=t))
        return i

    @flow
    async def naive(n: int) -> int:
        return len(await asyncio.gather(*(one_chat(i) for i in range(n))))

    with prefect_test_harness(server_startup_timeout=120):
        t0 = time.perf_counter()
        asyncio.run(naive(chats))
        wall = time.perf_counter() - t0
    return {"chats": chats, "wall": wall, "per_chat_ms": wall / chats * 1000}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chats", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=256)
    ap.add_argument("--batch", type=int, default=250)
    ap.add_argument("--baseline", type=int, default=200, help="chats for the naive baseline (0: skip)")
    args = ap.parse_args()
    os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="bench-prefect-"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.pop("PREFECT_API_URL", None)
    from models.settings import load_settings

    rows = []
    for frac in (4, 2, 1):
        n = args.chats // frac
        settings = load_settings(data_dir=tempfile.mkdtemp(prefix="bench-sim-"))
        rows.append(run_replay(settings, n, args.concurrency, args.batch))
        print(f"  {n} chats: {rows[-1]['wall']:.2f} s (ideal {rows[-1]['ideal']:.2f} s), rss {rows[-1]['rss']} MB",
              flush=True)
    print(f"\n### Simulation: 50 ms a turn, {TURNS} turns a chat, concurrency {args.concurrency}, "
          f"batches of {args.batch}\n")
    print("| chats | wall s (whole run) | chats phase s | ideal s | wall/ideal | chats phase/ideal | chats/s | peak RSS MB |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['chats']:,} | {r['wall']:.2f} | {r['run']:.2f} | {r['ideal']:.2f} | {r['ratio']:.3f} | "
              f"{r['run_ratio']:.3f} | {r['chats_s']:.0f} | {r['rss']} |")
    if args.baseline:
        b = run_naive(load_settings(data_dir=tempfile.mkdtemp(prefix="bench-naive-")), args.baseline)
        est = b["per_chat_ms"] * args.chats / 1000
        print(f"\nNaive baseline (one Prefect task per chat, same agent, temporary Prefect server): "
              f"{b['chats']} chats in {b['wall']:.2f} s = {b['per_chat_ms']:.1f} ms a chat -> "
              f"~{est:.0f} s for {args.chats:,} chats (vs {rows[-1]['wall']:.1f} s batched: "
              f"{est / rows[-1]['wall']:.0f}x)")
    print(f"\n(2 CPUs: {os.cpu_count()}; Python {sys.version.split()[0]}; "
          f"ru_maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB)")


if __name__ == "__main__":
    main()
