"""Worker processes for the CPU-heavy stages (parsing spans, rebuilding turns).

The unit shipped to a worker is a batch (a ~64 MB chunk of a file, a few thousand whole
sessions), never a span or a chat. A worker dies with this process (a parent-death signal,
:func:`tasks.common.processes.worker_init`), inherits none of its locks (tasks/store/locks.py),
and is stopped at once when the stage stops (an error, SIGTERM, Ctrl-C): no orphan keeps
parsing, writing parts or holding the data dir.
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Iterator

from tasks.common.processes import worker_init


def _mp_context():
    """fork when this process runs no other Python thread (the CLI: fast, no main-module
    re-import); spawn otherwise (inside a Prefect worker), which is fork-safe."""
    import multiprocessing as mp
    import threading

    return mp.get_context("fork" if threading.active_count() == 1 else "spawn")


@contextlib.contextmanager
def worker_pool(settings) -> Iterator[ProcessPoolExecutor | None]:
    """The stage's worker processes (None: run inline). Create it BEFORE this process opens
    DuckDB: with fork, the workers are started here, so that none inherits an open catalog."""
    n = settings.workers or min(4, os.cpu_count() or 1)
    if n <= 1:
        yield None
        return
    ctx = _mp_context()
    pool = ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=worker_init, initargs=(os.getpid(),))
    try:
        if ctx.get_start_method() == "fork":
            pool.submit(int).result()  # with fork, the first submit starts every worker: now, before DuckDB
        yield pool
    except BaseException:
        stop_workers(pool)
        raise
    pool.shutdown(wait=True)


def stop_workers(pool: ProcessPoolExecutor) -> None:
    """Stop a pool now: its queued jobs cancelled, its workers terminated (not waited for
    to finish their job, as ``shutdown`` would)."""
    terminate = getattr(pool, "terminate_workers", None)  # Python 3.14
    if terminate is not None:
        terminate()
    else:
        for p in list((getattr(pool, "_processes", None) or {}).values()):
            p.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


def pmap(pool: ProcessPoolExecutor | None, fn, jobs: list[dict[str, Any]]) -> list[Any]:
    """fn(**job) for every job, in the pool when there is one, results in job order."""
    if pool is None or len(jobs) <= 1:
        return [fn(**j) for j in jobs]
    futures = [pool.submit(fn, **j) for j in jobs]
    return [f.result() for f in futures]
