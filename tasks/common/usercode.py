"""Running user-supplied code (the agent under test, custom evaluators) so that it cannot stop
Replay: it may never return, and it may call ``sys.exit``.

- A thread cannot be stopped, so code that may hang runs in **daemon threads that are never
  joined**: on a timeout Replay gives up on the call and goes on, and the process exits when
  Replay is done, whatever those threads still do. (``concurrent.futures`` threads are joined
  at interpreter exit: one call that never returns keeps the process alive for ever.)
  :class:`DaemonPool` is such a pool for the async executor (``await pool.run(fn, arg)``);
  :func:`run_each` runs jobs one after another under a timeout each (the evaluators).
- Any ``BaseException`` user code raises but ``KeyboardInterrupt`` (``SystemExit`` from
  ``sys.exit``, a ``GeneratorExit``, a ``BaseException`` of its own) is an error of that call:
  :func:`user_exit` words it (``the agent called sys.exit(0)``), and the caller makes it a row.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def user_exit(exc: BaseException, who: str) -> str | None:
    """The one-line error of a ``BaseException`` that is not an ``Exception`` raised by user
    code (``who``: "the agent", "the evaluator X"); None for an ``Exception`` (the caller
    words it as usual) and for ``KeyboardInterrupt`` (the user stopping Replay: re-raise)."""
    if isinstance(exc, (Exception, KeyboardInterrupt)):
        return None
    if isinstance(exc, SystemExit):
        return f"{who} called sys.exit({exc.code!r})"
    return f"{who} raised {type(exc).__name__}" + (f": {exc}" if str(exc) else "")


class UserCodeError(Exception):
    """User code raised a ``BaseException`` that is not an ``Exception`` (see :func:`user_exit`)."""


def as_exception(exc: BaseException, who: str) -> BaseException:
    """``exc`` itself, or a :class:`UserCodeError` saying what user code did when ``exc`` would
    stop the process (``SystemExit`` and the like; ``KeyboardInterrupt`` stays itself)."""
    msg = user_exit(exc, who)
    return exc if msg is None else UserCodeError(msg)


# --------------------------------------------------------------------------- a pool for async callers
class DaemonPool:
    """At most ``size`` daemon threads running calls (started as needed). A call the caller gave
    up on (its ``await`` was cancelled, e.g. by a timeout) does not count against ``size``: a
    new thread takes its place, and the thread it runs in ends when (if ever) the call returns."""

    def __init__(self, size: int, name: str = "replay-user") -> None:
        self.size, self.name = max(1, int(size)), name
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = self._busy = self._queued = self._abandoned = 0
        self._closed = False

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in one of the pool's threads; cancelling the await gives up on it."""
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self._submit(fut, fn, args)
        try:
            return await asyncio.wrap_future(fut)
        except asyncio.CancelledError:
            if not fut.cancel():  # already running: it cannot be stopped, only left behind
                with self._lock:
                    if not fut.done():
                        self._abandoned += 1
                        fut.add_done_callback(self._forget)
            raise

    def _forget(self, _fut: concurrent.futures.Future) -> None:
        with self._lock:
            self._abandoned -= 1

    def _submit(self, fut: concurrent.futures.Future, fn: Callable[..., Any], args: tuple) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the pool is closed")
            self._jobs.put((fut, fn, args))
            self._queued += 1
            spawn = self._queued > self._threads - self._busy and self._threads - self._abandoned < self.size
            if spawn:
                self._threads += 1
        if spawn:
            threading.Thread(target=self._work, name=f"{self.name}-{self._threads}", daemon=True).start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            with self._lock:
                if job is None:
                    self._threads -= 1
                    return
                self._queued -= 1
                self._busy += 1
            fut, fn, args = job
            result: Any = None
            error: BaseException | None = None
            if fut.set_running_or_notify_cancel():
                try:
                    result = fn(*args)
                except BaseException as exc:  # noqa: BLE001 - the awaiting caller gets it
                    error = exc
            with self._lock:
                self._busy -= 1
            if fut.running():
                if error is None:
                    fut.set_result(result)
                else:
                    fut.set_exception(error)

    def close(self) -> None:
        """Idle threads end; busy ones end after their call (never waited for)."""
        with self._lock:
            self._closed = True
            n = self._threads
        for _ in range(n):
            self._jobs.put(None)


# --------------------------------------------------------------------------- jobs under a watchdog
class _Watch:
    def __init__(self, n: int) -> None:
        self.cond = threading.Condition()
        self.results: list[Any] = [None] * n
        self.next = self.done = self.generation = 0
        self.current: tuple[int, float] | None = None  # (job, its start) of the live thread
        self.error: BaseException | None = None


def run_each(jobs: Sequence[Callable[[], T]], timeout_s: float | None,
             on_timeout: Callable[[int], T], name: str = "replay-user") -> list[T]:
    """``[job() for job in jobs]``, the jobs one after another in a daemon thread, each under
    ``timeout_s`` (None: in this thread, no limit). A job still running after ``timeout_s`` is
    given up on: its result is ``on_timeout(i)``, its thread is left to itself (never joined,
    its late result dropped) and the next jobs run in a new thread. A job's exception is raised
    here (jobs should return their errors as values)."""
    if timeout_s is None:
        return [job() for job in jobs]
    w = _Watch(len(jobs))

    def work(generation: int) -> None:
        while True:
            with w.cond:
                if generation != w.generation or w.next >= len(jobs):
                    return
                i, w.next = w.next, w.next + 1
                w.current = (i, time.monotonic())
                w.cond.notify_all()
            try:
                result, error = jobs[i](), None
            except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread
                result, error = None, exc
            with w.cond:
                if generation != w.generation:
                    return  # given up on: nobody wants this result any more
                w.results[i], w.current, w.done = result, None, w.done + 1
                w.error = w.error or error
                w.cond.notify_all()

    def start(generation: int) -> None:
        threading.Thread(target=work, args=(generation,), name=f"{name}-{generation}", daemon=True).start()

    start(0)
    with w.cond:
        while w.done < len(jobs) and w.error is None:
            if w.current is None:
                w.cond.wait()
                continue
            i, started = w.current
            left = started + timeout_s - time.monotonic()
            if left > 0:
                w.cond.wait(left)
                continue
            w.generation += 1  # the thread running job i is given up on
            w.results[i], w.current, w.done = on_timeout(i), None, w.done + 1
            start(w.generation)
    if w.error is not None:
        raise w.error
    return w.results


__all__ = ["DaemonPool", "UserCodeError", "as_exception", "run_each", "user_exit"]
