"""The simulate flow: a scenario against the agent under test. Composition only.

Maps over BATCHES of chats (one Prefect task run per batch, never one per chat); inside a
batch, asyncio; one concurrency limit for the whole execution (the tasks run in this flow's
event loop and share its semaphore).

``task_runner`` (or ``REPLAY_TASK_RUNNER``): ``thread`` (the default, above); ``dask``: each
batch is a task run on a Dask cluster (``REPLAY_DASK_ADDRESS``, else a local cluster of two
worker processes) that runs the whole batch in the worker and writes its parts to the shared
lake; the concurrency limit is split across the workers (``tasks/scale_out.py``); ``ray``:
not implemented.
"""

from __future__ import annotations

import asyncio
from typing import Literal

from prefect import flow

from models.settings import load_settings
from models.simulate import RunOptions
from tasks import evaluate, scenario, simulate
from tasks.store import catalog


@flow(name="simulate", log_prints=True)
async def simulate_flow(scenario_id: str | None = None, agent_ref: str | None = None, options: RunOptions | None = None,
                        replay_id: str | None = None, execution_id: str | None = None,
                        data_dir: str | None = None, evaluator_refs: list[str] | None = None,
                        task_runner: Literal["thread", "dask", "ray"] | None = None,
                        dask_address: str | None = None) -> dict:
    """Run a scenario against an agent (or resume ``execution_id``); returns the execution's KPIs.
    ``task_runner``/``dask_address`` override ``REPLAY_TASK_RUNNER``/``REPLAY_DASK_ADDRESS``."""
    settings = load_settings(data_dir=data_dir, task_runner=task_runner, dask_address=dask_address)
    if settings.task_runner == "ray":  # before anything is written
        raise simulate.RunError("the ray task runner is not implemented; use --task-runner dask "
                                "(REPLAY_TASK_RUNNER=dask) or thread")
    with catalog.writer(settings) as con:
        if execution_id is None:
            _rt, execution_id, _n = simulate.create_run(con, settings, scenario_id, agent_ref, options or RunOptions(),
                                                        replay_id)
        ex = simulate.load_execution(con, execution_id)
        _sc, rows, agent_def = scenario.get_scenario(con, ex["scenario_id"])
    batch = simulate.batch_task()
    ran, seconds = 0, 0.0
    with simulate.execution_lock(settings.lake_dir, execution_id):
        try:
            opts = ex["options"]
            done = simulate.finished_chats(settings.lake_dir, execution_id)
            todo = [c for c in simulate.plan(execution_id, rows, opts.repeat) if c[0] not in done]
            if todo:

                if opts.mode in ("simulate", "hybrid") and not settings.llm_base_url:
                    raise simulate.RunError(f"{opts.mode} mode needs a model: set REPLAY_LLM_BASE_URL and REPLAY_LLM_MODEL")
                if settings.task_runner != "thread":
                    ran, seconds = await _run_elsewhere(settings, ex, agent_def, todo)
                    todo = []  # ran on the cluster
            if todo:
                loop_t0 = asyncio.get_running_loop().time()
                await simulate.run_with_agent(settings, execution_id, ex["scenario_id"], ex["agent_ref"], agent_def,
                                              opts, todo, batch_runner=batch)
                ran, seconds = len(todo), asyncio.get_running_loop().time() - loop_t0
        finally:
            with catalog.writer(settings) as con:
                info = simulate.finish(con, settings, execution_id, ran, seconds,
                                       mode="prefect" if settings.task_runner == "thread" else f"prefect-{settings.task_runner}")
    # scores, execution_metrics, and the metrics published as Prefect artifacts
    info.metrics = evaluate.evaluate_task()(settings, execution_id, evaluator_refs)
    print(f"execution {execution_id}: {info.completed_chats}/{info.total_chats} completed, {info.failed_chats} failed")
    return info.model_dump(mode="json")


async def _run_elsewhere(settings, ex: dict, agent_def, todo: list) -> tuple[int, float]:
    """The batches on another task runner (dask); returns (chats ran, seconds)."""
    from prefect import get_run_logger

    from tasks.simulate import agents, scale_out

    # fail fast, here, on an agent that does not load (rather than once per batch on the workers)
    await agents.load_agent(ex["agent_ref"], agent_def, ex["options"], settings).aclose()
    logger = get_run_logger()
    t0 = asyncio.get_running_loop().time()
    # the Dask client blocks: drive it from a thread (it sees this flow run's context)
    await asyncio.to_thread(scale_out.run_on_dask, settings, ex, agent_def, todo, settings.dask_address,
                            log=logger.info)
    return len(todo), asyncio.get_running_loop().time() - t0


def main(argv: list[str] | None = None) -> dict:
    """``python -m flows.simulate --scenario ID --agent REF [--task-runner dask] ...``"""
    import argparse
    import json

    ap = argparse.ArgumentParser(prog="python -m flows.simulate", description=main.__doc__)
    ap.add_argument("--scenario")
    ap.add_argument("--agent")
    ap.add_argument("--execution", help="resume this execution instead")
    ap.add_argument("--data-dir")
    ap.add_argument("--task-runner", choices=["thread", "dask", "ray"])
    ap.add_argument("--dask-address", help="tcp://host:8786 of an existing Dask scheduler")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=100)
    a = ap.parse_args(argv)
    result = asyncio.run(simulate_flow(
        scenario_id=a.scenario, agent_ref=a.agent, execution_id=a.execution, data_dir=a.data_dir,
        options=RunOptions(concurrency=a.concurrency, repeat=a.repeat, batch_size=a.batch_size),
        task_runner=a.task_runner, dask_address=a.dask_address))
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
