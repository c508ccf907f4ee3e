"""Stage compositions as the tests call them (in this process, no Prefect)."""

from __future__ import annotations

from models.simulate import ExecutionInfo, RunOptions
from tasks.evaluate import run_and_score
from tasks.simulate import run_async, start_run


def run_local(settings, scenario_id: str, agent_ref: str, options: RunOptions | None = None,
              replay_id: str | None = None, progress: bool = False,
              evaluators: list[str] | None = None) -> ExecutionInfo:
    """A run test and its execution, run and scored in this process (what ``replay run`` does)."""
    execution_id = start_run(settings, scenario_id, agent_ref, options or RunOptions(), replay_id)
    return run_async(run_and_score(settings, execution_id, evaluator_refs=evaluators, progress=progress))
