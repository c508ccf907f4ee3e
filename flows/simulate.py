"""The simulate flow: a scenario against the agent under test. Composition only.

Maps over BATCHES of chats (one Prefect task run per batch, never one per chat); inside a
batch, asyncio; one concurrency limit for the whole execution (the tasks run in this flow's
event loop and share its semaphore).
"""

from __future__ import annotations

import asyncio

from prefect import flow

from models.simulate import RunOptions
from models.settings import load_settings
from tasks import catalog, evaluate, scenario, simulate


@flow(name="simulate", log_prints=True)
async def simulate_flow(scenario_id: str | None = None, agent_ref: str | None = None, options: RunOptions | None = None,
                        replay_id: str | None = None, execution_id: str | None = None,
                        data_dir: str | None = None, evaluator_refs: list[str] | None = None) -> dict:
    """Run a scenario against an agent (or resume ``execution_id``); returns the execution's KPIs."""
    settings = load_settings(data_dir=data_dir)
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
                from tasks import agents

                if opts.mode in ("simulate", "hybrid") and not settings.llm_base_url:
                    raise simulate.RunError(f"{opts.mode} mode needs a model: set REPLAY_LLM_BASE_URL and REPLAY_LLM_MODEL")
                agent = agents.load_agent(ex["agent_ref"], agent_def, opts, settings)
                ctx = simulate.ChatContext(execution_id, ex["scenario_id"], agent, opts, settings,
                                           asyncio.Semaphore(opts.concurrency),
                                           llm_client=simulate.make_user_client(settings, opts))
                loop_t0 = asyncio.get_running_loop().time()
                try:
                    await simulate.run_chats(ctx, todo, settings.lake_dir,
                                             run_batch=lambda no, b: batch(ctx, no, b, settings.lake_dir))
                finally:
                    await agent.aclose()
                    if ctx.llm_client is not None:
                        await ctx.llm_client.aclose()
                ran, seconds = len(todo), asyncio.get_running_loop().time() - loop_t0
        finally:
            with catalog.writer(settings) as con:
                info = simulate.finish(con, settings, execution_id, ran, seconds, mode="prefect")
    # scores, execution_metrics, and the metrics published as Prefect artifacts
    info.metrics = evaluate.evaluate_task()(settings, execution_id, evaluator_refs)
    print(f"execution {execution_id}: {info.completed_chats}/{info.total_chats} completed, {info.failed_chats} failed")
    return info.model_dump(mode="json")


if __name__ == "__main__":
    asyncio.run(simulate_flow())
