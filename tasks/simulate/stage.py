"""The simulate stage, composed once: an execution's lifecycle, lock -> plan -> run -> finish.

``start_run`` stores a run test and its execution (``running``); ``run_execution`` runs the
chats of an execution that are not persisted yet and counts them: a new run, ``replay runs
resume``, the simulate flow and the nightly flow all go through it. Where the batches run is
the runner's and the settings' business: in this process (``IN_PROCESS``), one Prefect task
run per batch (``PREFECT``), or on a Dask or Ray cluster (``PREFECT`` with ``REPLAY_TASK_RUNNER=dask``
or ``ray``).
Scoring is the evaluate stage's (``tasks.evaluate.run_evaluation``), called after this one.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from models.scenario import AgentDefinition, ScenarioRow
from models.settings import Settings
from models.simulate import Budget, Execution, ExecutionInfo, RunOptions
from tasks.common.progress import Progress
from tasks.common.runner import IN_PROCESS, Runner
from tasks.simulate.executor import (
    ChatContext,
    RunError,
    claim,
    create_run,
    discard_half_batches,
    execution_lock,
    finish,
    finished_chats,
    load_execution,
    plan,
    run_batch_now,
    run_target,
    run_with_agent,
)
from tasks.simulate.scale_out import ENGINES
from tasks.store import catalog

Chats = list[tuple[str, ScenarioRow, int]]


def start_run(settings: Settings, scenario_id: str, agent_ref: str, options: RunOptions,
              replay_id: str | None = None) -> str:
    """A run test and its execution (``running``) of a scenario against an agent; returns the
    execution id. With ``replay_id`` the replay session moves to COMPLETED. What makes the run
    impossible (:func:`check_run`) is refused first, in one line, with nothing written."""
    check_run(settings, scenario_id, agent_ref, options)
    with catalog.writer(settings) as con:
        _run_test_id, execution_id, _total = create_run(con, settings, scenario_id, agent_ref, options, replay_id)
    return execution_id


def check_run(settings: Settings, scenario_id: str, agent_ref: str, options: RunOptions) -> None:
    """Before anything is written: the run can run (:func:`check_runnable`), the scenario and
    its agent definition are there, and ``agent_ref`` resolves (a Python agent imports, a URL
    agent is http(s) with a model and its endpoint answers). The agent is imported with the
    catalog closed (user code). RunError or AgentLoadError, one line."""
    from tasks.simulate.agents import check_agent

    check_runnable(settings, options)
    with catalog.reader(settings) as con:
        _scenario, agent_def = run_target(con, scenario_id)
    check_agent(agent_ref, agent_def, options, settings)


def check_runnable(settings: Settings, options: RunOptions) -> None:
    """What makes a run impossible before any chat starts (one line, nothing written)."""
    if options.mode in ("simulate", "hybrid") and not (settings.llm_base_url and settings.llm_model):
        raise RunError(f"--mode {options.mode} needs a model for the simulated user: set REPLAY_LLM_BASE_URL and "
                       "REPLAY_LLM_MODEL (an OpenAI-compatible endpoint), or run with --mode replay")


async def batch_step(ctx: ChatContext, no: int, batch: Chats, lake_dir: Path, progress: Progress | None = None) -> int:
    """One batch of chats run to the end and persisted; returns its failed chats."""
    return await run_batch_now(ctx, no, batch, lake_dir, progress)


def _spend(settings: Settings, ex: Execution, agent_def: AgentDefinition, rows: list[ScenarioRow],
           budget: Budget | None):
    """The count of what this invocation's chats spend (None without a budget)."""
    if budget is None or (budget.tokens is None and budget.usd is None):
        return None
    from tasks.simulate import cost

    prices, _source = cost.load_prices(settings.prices_file)
    hit = cost.price_for(prices, cost.agent_model(ex.options, agent_def, rows))
    return cost.Spend(budget, hit[1] if hit else None)


def _spent(info: ExecutionInfo, spend) -> ExecutionInfo:
    """The info with what the budget saw: spent, not run, and the line that says it stopped."""
    not_run = info.total_chats - info.completed_chats - info.failed_chats
    if spend is None:
        return info.model_copy(update={"not_run": not_run})
    stopped = spend.line(not_run) if not_run and spend.exhausted() else None
    return info.model_copy(update={"not_run": not_run, "spent_tokens": spend.tokens,
                                   "spent_usd": round(spend.usd, 6) if spend.price else None, "budget_stop": stopped})


async def run_execution(settings: Settings, execution_id: str, runner: Runner = IN_PROCESS,
                        progress: bool = False, budget: Budget | None = None) -> ExecutionInfo:
    """Run the chats of ``execution_id`` not persisted yet, then count them and set its status
    (also when interrupted: the counts say what is left for ``replay runs resume``). ``budget``:
    no new chat starts once this invocation's chats have spent it (the rest stay for a resume)."""
    with catalog.writer(settings) as con:
        ex = load_execution(con, execution_id)
        from tasks.scenario import get_scenario

        _scenario, rows, agent_def = get_scenario(con, ex.scenario_id)
    spend = _spend(settings, ex, agent_def, rows, budget)
    ran, seconds = 0, 0.0
    mode = runner.kind if settings.task_runner == "thread" else f"{runner.kind}-{settings.task_runner}"
    with execution_lock(settings.work_dir, execution_id):
        try:
            discard_half_batches(settings.lake_dir, execution_id)  # a crash cut a batch in two
            done = finished_chats(settings.lake_dir, execution_id)
            todo = [c for c in plan(execution_id, rows, ex.options.repeat) if c[0] not in done]
            if todo:
                check_runnable(settings, ex.options)
                with catalog.writer(settings) as con:
                    claim(con, execution_id)  # running, in this process (runs list: gone = interrupted)
                import tasks.simulate.agents  # noqa: F401 - loaded before the clock: the chats phase times chats
                loop = asyncio.get_running_loop()
                t0 = loop.time()
                await _run_chats(settings, ex, agent_def, todo, runner, progress, already=len(done), spend=spend)
                ran = len(finished_chats(settings.lake_dir, execution_id)) - len(done)
                seconds = loop.time() - t0
        finally:
            with catalog.writer(settings) as con:
                info = finish(con, settings, execution_id, ran, seconds, mode=mode,
                              stopped=spend.line(0) if spend is not None and spend.exhausted() else None)
    return _spent(info, spend)


async def _run_chats(settings: Settings, ex: Execution, agent_def: AgentDefinition, todo: Chats, runner: Runner,
                     progress: bool, already: int, spend=None) -> None:
    if runner.kind != IN_PROCESS.kind and settings.task_runner in ENGINES:  # no budget counted there
        await _run_on_cluster(settings, ex, agent_def, todo)
        return
    # a progress bar (or a line every few seconds) only in this process: a flow run logs its task runs
    bar = (Progress(already + len(todo), already, enabled=progress, every_s=settings.progress_interval_s)
           if runner.kind == IN_PROCESS.kind else None)
    step = runner.step(batch_step, name="simulate-batch", retries=0, no_cache=True)
    try:
        await run_with_agent(settings, ex.execution_id, ex.scenario_id, ex.agent_ref, agent_def, ex.options, todo,
                             progress=bar, batch_runner=step, spend=spend)
    finally:
        if bar is not None:
            bar.close()


async def _run_on_cluster(settings: Settings, ex: Execution, agent_def: AgentDefinition, todo: Chats) -> None:
    """The batches on a Dask or Ray cluster, each a Prefect task run that runs in a worker."""
    from prefect import get_run_logger

    from tasks.simulate import agents, scale_out

    # fail fast, here, on an agent that does not load (rather than once per batch on the workers)
    await agents.load_agent(ex.agent_ref, agent_def, ex.options, settings).aclose()
    # the cluster's client blocks: drive it from a thread (it sees this flow run's context)
    engine = settings.task_runner
    address = settings.dask_address if engine == "dask" else settings.ray_address
    await asyncio.to_thread(scale_out.run_on_cluster, settings, ex, agent_def, todo, engine, address,
                            log=get_run_logger().info)


__all__ = ["batch_step", "check_run", "check_runnable", "run_execution", "start_run"]
