"""How a stage's steps run: in this process, or as Prefect task runs.

Each stage is composed once (``run_ingest``, ``run_scenario``, ``run_execution``,
``run_evaluation``, ``run_report``) and takes a runner; the CLI, the Prefect flows and the
nightly flow all call that one composition, with :data:`IN_PROCESS` (no Prefect: a one-off
command must not wait for a temporary server it does not need) or :data:`PREFECT` (inside a
flow: each step is a task run the Prefect UI shows, with its retries).

A step is a plain function of the stage (its inputs are settings and small manifests, never
data frames); ``runner.step(fn, name=...)`` returns what to call: the function itself, or its
Prefect task. ``runner.map`` runs one step per batch (never per span or per chat: the Prefect
server records ~30 task runs a second). ``runner.publish`` sends a summary to the Prefect UI
(artifacts); in-process it does nothing.

Importing Prefect costs ~1.5 s: it is imported only when the Prefect runner first builds a
task, never by the in-process path, ``replay sql`` or the parser worker processes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from typing import Any


class Runner:
    """Steps run in this process, one after the other (the default)."""

    kind = "in-process"

    def step(self, fn: Callable[..., Any], *, name: str, **task_options: Any) -> Callable[..., Any]:
        """``fn`` as this runner runs it (``name`` and ``task_options`` matter to Prefect)."""
        return fn

    def map(self, fn: Callable[..., Any], jobs: Iterable[Sequence[Any]], *, name: str,
            **task_options: Any) -> list[Any]:
        """``fn(*job)`` for every job (a batch), results in job order."""
        step = self.step(fn, name=name, **task_options)
        return [step(*job) for job in jobs]

    def publish(self, key: str, *, markdown: str | None = None, table: list[dict[str, Any]] | None = None,
                link: str | None = None, link_text: str | None = None, description: str | None = None) -> str | None:
        """A summary for the orchestrator's UI (a table, a markdown text, a link); returns its
        key, or None when there is no UI."""
        return None


class PrefectRunner(Runner):
    """Each step is a Prefect task run of the current flow run; maps are submitted together."""

    kind = "prefect"

    def step(self, fn: Callable[..., Any], *, name: str, **task_options: Any) -> Callable[..., Any]:
        return prefect_task(fn, name, tuple(sorted(task_options.items())))

    def map(self, fn: Callable[..., Any], jobs: Iterable[Sequence[Any]], *, name: str,
            **task_options: Any) -> list[Any]:
        step = self.step(fn, name=name, **task_options)
        futures = [step.submit(*job) for job in jobs]
        return [f.result() for f in futures]

    def publish(self, key: str, *, markdown: str | None = None, table: list[dict[str, Any]] | None = None,
                link: str | None = None, link_text: str | None = None, description: str | None = None) -> str | None:
        from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

        key = artifact_key(key)
        # _sync: the same blocking call from a sync or an async flow (Prefect would hand an
        # async flow a coroutine to await)
        if table is not None:
            create_table_artifact(key=key, table=table, description=description, _sync=True)
        if markdown is not None:
            create_markdown_artifact(key=key if table is None else f"{key}-summary", markdown=markdown,
                                     description=description, _sync=True)
        if link is not None:
            create_link_artifact(key=key, link=link, link_text=link_text or key, description=description, _sync=True)
        return key


@cache
def prefect_task(fn: Callable[..., Any], name: str, options: tuple[tuple[str, Any], ...] = ()) -> Any:
    """The Prefect task of a step (built once per function, name and options). ``no_cache=True``
    in the options: inputs Prefect cannot hash (an agent, a semaphore) are not cached."""
    from prefect import task

    opts = dict(options)
    if opts.pop("no_cache", False):
        from prefect.cache_policies import NO_CACHE

        opts["cache_policy"] = NO_CACHE
    return task(fn, name=name, **opts)


def artifact_key(text: str) -> str:
    """A Prefect artifact key: lower case letters, digits and dashes."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", text.lower())).strip("-") or "replay"


IN_PROCESS = Runner()
PREFECT = PrefectRunner()

__all__ = ["IN_PROCESS", "PREFECT", "PrefectRunner", "Runner", "artifact_key", "prefect_task"]
