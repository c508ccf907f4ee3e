"""The simulate flow: a scenario against the agent under test, then its scores. Wiring only:
``tasks.simulate.start_run`` and ``tasks.evaluate.run_and_score``; one Prefect task run per
batch of chats (never one per chat), or, with ``task_runner="dask"`` / ``"ray"``
(``REPLAY_TASK_RUNNER``), each batch on a Dask cluster (``REPLAY_DASK_ADDRESS``, else a local
cluster of two workers) or a Ray cluster (``REPLAY_RAY_ADDRESS``, else a local Ray instance of
two CPUs).
"""

from __future__ import annotations

import asyncio
from typing import Literal

from prefect import flow

from models.settings import load_settings
from models.simulate import Budget, RunOptions
from tasks.common.runner import PREFECT
from tasks.evaluate import check_evaluators, run_and_score
from tasks.simulate import start_run


@flow(name="simulate", log_prints=True)
async def simulate_flow(scenario_id: str | None = None, agent_ref: str | None = None, options: RunOptions | None = None,
                        replay_id: str | None = None, execution_id: str | None = None,
                        data_dir: str | None = None, evaluator_refs: list[str] | None = None,
                        task_runner: Literal["thread", "dask", "ray"] | None = None,
                        dask_address: str | None = None, ray_address: str | None = None,
                        budget: Budget | None = None, prices_file: str | None = None) -> dict:
    """Run a scenario against an agent (or resume ``execution_id``); returns the execution's KPIs.
    ``task_runner``/``dask_address``/``ray_address`` override ``REPLAY_TASK_RUNNER``/
    ``REPLAY_DASK_ADDRESS``/``REPLAY_RAY_ADDRESS``;
    ``budget``: no new chat past it (``prices_file``: the prices of ``budget.usd``)."""
    settings = load_settings(data_dir=data_dir, task_runner=task_runner, dask_address=dask_address,
                             ray_address=ray_address, prices_file=prices_file)
    if execution_id is None:
        check_evaluators(settings, evaluator_refs)  # a bad evaluator refused before anything is written
        execution_id = start_run(settings, scenario_id, agent_ref, options or RunOptions(), replay_id)
    info = await run_and_score(settings, execution_id, PREFECT, evaluator_refs, budget=budget)
    print(f"execution {execution_id}: {info.completed_chats}/{info.total_chats} completed, {info.failed_chats} failed")
    return info.model_dump(mode="json")


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
    ap.add_argument("--ray-address", help="host:6379 of an existing Ray cluster (ray start --head)")
    for name in ("concurrency", "repeat", "batch_size"):
        ap.add_argument(f"--{name.replace('_', '-')}", type=int, help=f"default {RunOptions.model_fields[name].default}")
    a = ap.parse_args(argv)
    options = RunOptions(**{k: getattr(a, k) for k in ("concurrency", "repeat", "batch_size") if getattr(a, k)})
    result = asyncio.run(simulate_flow(scenario_id=a.scenario, agent_ref=a.agent, execution_id=a.execution,
                                       data_dir=a.data_dir, options=options, task_runner=a.task_runner,
                                       dask_address=a.dask_address, ray_address=a.ray_address))
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
