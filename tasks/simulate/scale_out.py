"""Scale-out of the simulate stage: batches of chats run in other processes or machines
(a Dask cluster through ``prefect_dask.DaskTaskRunner``, or a Ray cluster through
``prefect_ray.RayTaskRunner``: the same batch contract on both).

The unit shipped to a worker is a BATCH, never a chat. A worker runs its batch entirely by
itself: it loads the agent, runs the chats on its own event loop (uvloop when installed) with
recorded tools, writes the batch's Parquet parts to the shared lake, and returns only a few
counts. The flow never sees a chat record.

Concurrency: the execution's ``--concurrency`` is split across the cluster's task slots
(Dask worker threads, Ray CPUs): chats in flight per slot = ceil(concurrency / slots). With the
default local clusters (Dask ``threads_per_worker=1``, Ray ``num_cpus=2``) a slot is a worker
process, so per worker = ceil(concurrency / n_workers). A slot runs one batch at a time, so a worker has at most
min(batch_size, that share) chats in flight: use ``--batch-size`` >= the share.

Exactly once: a batch's part files are named after its first chat, so a batch that the cluster runs
again (its worker died after writing) replaces its own parts instead of adding rows.

Secrets never travel to the workers: they get the settings without the secret fields and read
those from their own environment (a local cluster inherits this process's environment).

Pure parts first, then the worker-side batch, the driver, and the thin Prefect task last.
"""

from __future__ import annotations

import asyncio
import math
import os
import queue
import socket
import time
from typing import Any, Callable, Iterable

import orjson
from pydantic import SecretStr

from models.simulate import Execution
from tasks.common.errors import ReplayError
from tasks.common.runner import prefect_task

# The local cluster made when no address is given: two worker processes of one thread each,
# listening on the loopback only, no dashboard.
LOCAL_CLUSTER = {"n_workers": 2, "threads_per_worker": 1, "processes": True, "host": "127.0.0.1",
                 "dashboard_address": None}
# the local Ray instance made when no address is given: two CPUs (two worker processes at a time),
# on the loopback, no dashboard, no usage report
LOCAL_RAY = {"num_cpus": 2, "include_dashboard": False, "_node_ip_address": "127.0.0.1",
             "configure_logging": False}
ENGINES = ("dask", "ray")
# settings a worker must not receive from the flow (read from the worker's own environment)
_NOT_SHIPPED = {"prefect_api_url"}


# --------------------------------------------------------------------------- pure parts
def per_slot_concurrency(concurrency: int, slots: int) -> int:
    """Chats in flight per task slot: the execution's limit split across the slots."""
    return max(1, math.ceil(concurrency / max(1, slots)))


def shippable_settings(settings) -> dict[str, Any]:
    """The settings a worker gets: every field but the secrets (and the Prefect API URL)."""
    return {k: v for k, v in settings if k not in _NOT_SHIPPED and not isinstance(v, SecretStr)}


def part_name(batch: list[tuple[str, Any, int]]) -> str:
    """The batch's part file name: the same every time the same batch runs."""
    return f"part-b-{batch[0][0]}-n{len(batch)}.parquet"


def pack_batch(batch: list[tuple[str, Any, int]]) -> bytes:
    """A batch as one compact JSON payload (each row once, however often it repeats): cheap
    to pickle, to hash, and for Prefect to walk, unlike a list of nested models."""
    rows = {str(row.row_index): row.model_dump(mode="json") for _cid, row, _k in batch}
    return orjson.dumps({"rows": rows, "chats": [[cid, row.row_index, k] for cid, row, k in batch]})


def unpack_batch(payload: bytes) -> list[tuple[str, Any, int]]:
    from models.scenario import ScenarioRow

    data = orjson.loads(payload)
    rows = {int(i): ScenarioRow.model_validate(r) for i, r in data["rows"].items()}
    return [(cid, rows[i], k) for cid, i, k in data["chats"]]


def window_size(slots: int) -> int:
    """Batches submitted at once: every slot busy and the next batch queued behind it; the
    rest wait in this process, so memory does not grow with the number of chats."""
    return max(2, 2 * slots)


# --------------------------------------------------------------------------- in the worker
def run_batch_here(settings_fields: dict[str, Any], execution_id: str, scenario_id: str, agent_ref: str,
                   agent_def: Any, options: Any, batch_no: int, batch: bytes | list[tuple[str, Any, int]],
                   concurrency: int) -> dict[str, Any]:
    """Run one batch (a ``pack_batch`` payload, or the chats) in this process, start to finish;
    returns counts only."""
    from models.settings import Settings
    from tasks.simulate import agents, executor

    t0 = time.perf_counter()
    if isinstance(batch, bytes):
        batch = unpack_batch(batch)
    settings = Settings(**settings_fields)
    opts = options.model_copy(update={"concurrency": concurrency})

    async def go() -> list:
        agent = agents.load_agent(agent_ref, agent_def, opts, settings)
        ctx = executor.ChatContext(execution_id, scenario_id, agent, opts, settings, asyncio.Semaphore(concurrency),
                                   llm_client=executor.make_user_client(settings, opts))
        try:
            return await asyncio.gather(*(executor.run_chat(ctx, cid, row, k) for cid, row, k in batch))
        finally:
            await agent.aclose()
            if ctx.llm_client is not None:
                await ctx.llm_client.aclose()

    results = executor.run_async(go())
    executor.write_batch(settings.lake_dir, execution_id, results, part_name(batch),
                         crash_after=settings.test_crash_after)
    failed = sum(1 for c, _ in results if c.status == "failed")
    return {"batch": batch_no, "chats": len(results), "completed": len(results) - failed, "failed": failed,
            "pid": os.getpid(), "seconds": round(time.perf_counter() - t0, 3)}


# --------------------------------------------------------------------------- in the flow
def dask_runner(address: str | None = None, cluster_kwargs: dict[str, Any] | None = None):
    """A ``DaskTaskRunner``: on the cluster at ``address``, else on a new local cluster."""
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:  # pragma: no cover - a dependency of the project
        raise RuntimeError("the dask task runner needs prefect-dask: uv add prefect-dask") from None
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(cluster_kwargs={**LOCAL_CLUSTER, **(cluster_kwargs or {})})


def ray_runner(address: str | None = None, init_kwargs: dict[str, Any] | None = None):
    """A ``RayTaskRunner``: on the cluster at ``address`` (``host:6379`` of ``ray start --head``, or
    ``ray://host:10001``), else on a new local Ray instance (two CPUs, loopback)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # under `uv run`, Ray would otherwise package the working directory and have every worker
    # build a fresh environment from it with `uv run` (seconds per worker, a copy of the code):
    # the workers run in the cluster's own environment, like Dask's
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    if address is None or is_loopback(address):
        # Ray swaps a loopback node address for the machine's own unless clusters are "disabled"
        # (read when ray is imported): then a local instance listens on 127.0.0.1 only, and a
        # driver finds the head started with `ray start --node-ip-address=127.0.0.1` there
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    if address and "RAY_AUTH_MODE" not in os.environ and ray_token_available():
        # `ray start` turns token authentication on when it finds a token (RAY_AUTH_TOKEN,
        # RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token, which a local Ray instance writes); a driver
        # sends the token only in token mode: the same rule here
        os.environ["RAY_AUTH_MODE"] = "token"
    try:
        from prefect_ray import RayTaskRunner
    except ImportError:  # pragma: no cover - a dependency of the project
        raise RuntimeError("the ray task runner needs prefect-ray: uv add prefect-ray") from None
    if address:
        return RayTaskRunner(address=address, init_kwargs={"configure_logging": False, **(init_kwargs or {})})
    return RayTaskRunner(init_kwargs={**LOCAL_RAY, **(init_kwargs or {})})


def ray_token_available() -> bool:
    """Whether this machine holds a Ray authentication token (where Ray looks for one)."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return True
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.join(os.path.expanduser("~"), ".ray", "auth_token")
    return os.path.isfile(path) and os.path.getsize(path) > 0


def is_loopback(address: str) -> bool:
    """Whether a ``host:port`` (or ``ray://host:port``) address is on this machine's loopback."""
    host = address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")


def cluster_runner(engine: str, address: str | None = None, options: dict[str, Any] | None = None):
    """The task runner of ``engine`` (``dask`` or ``ray``)."""
    if engine == "dask":
        return dask_runner(address, options)
    if engine == "ray":
        return ray_runner(address, options)
    raise ValueError(f"unknown engine {engine!r}: one of {', '.join(ENGINES)}")


def cluster_slots(runner, engine: str) -> int:
    """Task slots of the runner's cluster, now: Dask worker threads, Ray CPUs."""
    if engine == "ray":
        import ray

        return max(1, int(ray.cluster_resources().get("CPU", 1)))
    client = runner.client  # starts the local cluster / connects
    workers = client.scheduler_info().get("workers", {})
    return max(1, sum(int(w.get("nthreads", 1)) for w in workers.values()))


class ClusterUnreachable(ReplayError):
    """No cluster answers at the address given (one-line reason)."""


def cluster_endpoint(address: str) -> tuple[str, int] | None:
    """(host, port) of a cluster address: ``host:port``, ``tcp://host:port``, ``ray://host:port``
    (None: an address with no port, e.g. ``auto``, which the engine resolves itself)."""
    rest = address.split("://", 1)[-1].split("/", 1)[0]
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]") or "127.0.0.1", int(port)


def check_reachable(engine: str, address: str | None, timeout_s: float = 5.0) -> None:
    """Fail at once, in one line, when nothing listens at a cluster's address (Ray would retry
    for ~40 s and Dask for 30 s before saying so)."""
    end = cluster_endpoint(address) if address else None
    if end is None:
        return
    try:
        socket.create_connection(end, timeout=timeout_s).close()
    except OSError as exc:
        raise ClusterUnreachable(f"no {engine} cluster answers at {address}: "
                                 f"{exc.strerror or exc} (is its head/scheduler running?)") from None


def drive(submit: Callable[[Any], Any], jobs: Iterable[Any], window: int,
          on_result: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Submit jobs with at most ``window`` in flight (``submit`` returns a PrefectFuture);
    results in completion order. When a job fails, no new job starts, the jobs in flight are
    waited for (so that nothing still writes to the lake after this returns), then the
    first error is raised."""
    done_q: queue.Queue = queue.Queue()
    it = iter(jobs)
    in_flight = 0
    error: BaseException | None = None
    results: list[dict[str, Any]] = []

    def launch() -> bool:
        job = next(it, None)
        if job is None:
            return False
        submit(job).add_done_callback(done_q.put)
        return True

    while in_flight < window and launch():
        in_flight += 1
    while in_flight:
        fut = done_q.get()
        in_flight -= 1
        try:
            res = fut.result()
        except BaseException as exc:  # noqa: BLE001 - re-raised once the jobs in flight are done
            error = error or exc
            continue
        results.append(res)
        if on_result is not None:
            on_result(res)
        if error is None and launch():
            in_flight += 1
    if error is not None:
        raise error
    return results


def run_on_cluster(settings, execution: Execution, agent_def: Any, todo: list[tuple[str, Any, int]],
                   engine: str = "dask", address: str | None = None, options: dict[str, Any] | None = None,
                   log: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Run the chats ``todo`` as batches on a Dask or Ray cluster, from inside a Prefect flow run
    (each batch is one task run of that flow, ``simulate-<engine>-batch``); returns the batches'
    counts."""
    opts = execution.options
    size = opts.batch_size
    batches = [todo[i:i + size] for i in range(0, len(todo), size)]
    task = prefect_task(run_batch_here, f"simulate-{engine}-batch", (("no_cache", True), ("retries", 0)))
    fields = shippable_settings(settings)
    check_reachable(engine, address)
    with cluster_runner(engine, address, options) as runner:
        slots = cluster_slots(runner, engine)
        share = per_slot_concurrency(opts.concurrency, slots)
        if log:
            log(f"{engine}: {len(batches)} batches of up to {size} chats on {slots} task slots, "
                f"{share} chats in flight per slot (concurrency {opts.concurrency})")

        def submit(job):
            no, batch = job
            return runner.submit(task, parameters={
                "settings_fields": fields, "execution_id": execution.execution_id,
                "scenario_id": execution.scenario_id, "agent_ref": execution.agent_ref,
                "agent_def": agent_def, "options": opts, "batch_no": no, "batch": pack_batch(batch),
                "concurrency": share})

        def report(res):
            if log:
                log(f"{engine}: batch {res['batch']}: {res['completed']}/{res['chats']} completed, "
                    f"{res['failed']} failed, pid {res['pid']}, {res['seconds']} s")

        return drive(submit, enumerate(batches), window_size(slots), report)
