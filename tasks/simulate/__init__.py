"""Simulate: every row of a scenario played as a conversation with the agent under test.

``executor`` (one chat, batches, persistence, the execution's bookkeeping), ``agents`` (the
agent under test: a Python callable or an OpenAI-compatible endpoint), ``recorded_tools``
(production's tool results served during a replay), ``simulated_user``, ``divergence``,
``scale_out`` (batches on a Dask cluster); ``stage`` composes an execution's lifecycle once
(``start_run``, ``run_execution``)."""

from tasks.simulate.executor import RunError, load_execution, run_async
from tasks.simulate.stage import run_execution, start_run

__all__ = ["RunError", "load_execution", "run_async", "run_execution", "start_run"]
