"""Lazy Prefect task wrappers.

Importing Prefect costs ~1.5 s; the CLI's in-process path, ``replay sql`` and the parser
worker processes must not pay it. A stage module declares its thin ``@task`` as
``name_task = lazy_task(fn, **options)``; a flow calls ``name_task()`` to get the Prefect
task, and Prefect is imported then, the first time.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Callable


def lazy_task(fn: Callable[..., Any], **options: Any) -> Callable[[], Any]:
    @cache
    def build() -> Any:
        from prefect import task

        opts = dict(options)
        if opts.pop("no_cache", False):  # inputs that cannot be hashed (an agent, a semaphore)
            from prefect.cache_policies import NO_CACHE

            opts["cache_policy"] = NO_CACHE
        return task(fn, **opts)

    return build
