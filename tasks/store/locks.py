"""The data dir's one-writer lock, and waiting for another Replay process.

DuckDB lets one process at a time write a database file (and none read it meanwhile), so
Replay's writers queue on ``<data dir>/.replay.lock`` (``flock``) before they open the
catalog. The lock

- dies with its holder: a process that forks (the ingest's parse workers) closes it in the
  child (``os.register_at_fork``), so no child keeps it once the holder is gone; a holder
  killed with -9 frees it at once;
- says who holds it: the holder writes its pid, host, command line (without secrets) and
  since when into the file; a command that waits says so on stderr within half a second,
  with how long it will wait (``REPLAY_LOCK_TIMEOUT_S``), and fails in one line after that;
- cleans up: whoever takes it removes the staging dirs dead processes left in the lake; the
  ingest also their temporary parts (:func:`tasks.store.lake.sweep`).

:class:`Waiting` is the same bounded, said-once wait for the catalog file itself (a reader
while a writer has it open).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import orjson

from tasks.common.errors import ReplayError
from tasks.common.processes import command_line, pid_alive
from tasks.store import lake

LOCK_NAME = ".replay.lock"
DEFAULT_TIMEOUT_S = 600.0

_HELD: set[int] = set()  # descriptors of the locks this process holds (or waits for)


def _forget_in_child() -> None:
    """In a forked child: close the parent's lock descriptors, so that the lock is the
    parent's alone and dies with it (a flock belongs to the open file, which a fork shares)."""
    for fd in list(_HELD):
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


os.register_at_fork(after_in_child=_forget_in_child)


class LockTimeout(ReplayError):
    """Another process held what this one waited for past the timeout: one-line reason."""


def lock_timeout(settings) -> float:
    return float(getattr(settings, "lock_timeout_s", DEFAULT_TIMEOUT_S))


class Waiting:
    """A bounded wait for another process: call :meth:`pause` after each failed try. It sleeps
    with backoff (``first`` doubling up to ``cap`` seconds), says once on stderr, after
    ``say_after`` seconds, what it waits for (``holder()``: who has it) and how long it will
    wait, and raises :class:`LockTimeout` past ``timeout``."""

    def __init__(self, what: str, timeout: float, holder: Callable[[], str | None], *,
                 say_after: float = 0.5, first: float = 0.02, cap: float = 0.25):
        self.what, self.timeout, self.holder = what, timeout, holder
        self.t0 = time.monotonic()
        self.say_after, self.delay, self.cap = say_after, first, cap
        self.said = False

    def pause(self) -> None:
        waited = time.monotonic() - self.t0
        if waited >= self.timeout:
            raise LockTimeout(f"gave up waiting for {self.what} after {self.timeout:.0f} s, held by "
                              f"{self.holder() or 'another process'}; try again once it has finished "
                              "(or raise REPLAY_LOCK_TIMEOUT_S)")
        if not self.said and waited >= self.say_after:
            who = self.holder()
            if who or waited >= 2 * self.say_after:
                sys.stderr.write(f"replay: waiting for {self.what}, held by {who or 'another process'}; "
                                 f"waiting up to {self.timeout:.0f} s\n")
                sys.stderr.flush()
                self.said = True
        time.sleep(max(0.0, min(self.delay, self.timeout - waited)))
        self.delay = min(self.delay * 2, self.cap)


# --------------------------------------------------------------------------- the holder's record
def _record() -> bytes:
    return orjson.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": command_line(),
                         "since": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")})


def read_holder(lock_path: Path) -> dict | None:
    """What the lock's holder wrote: pid, host, command, since (UTC); None when nobody did."""
    try:
        rec = orjson.loads(lock_path.read_bytes())  # another open file: no effect on a flock
    except (OSError, orjson.JSONDecodeError):
        return None
    return rec if isinstance(rec, dict) and isinstance(rec.get("pid"), int) else None


def describe(rec: dict | None, lock_path: Path | None = None) -> str | None:
    """``pid N (command) since T UTC`` of a holder's record; for a holder that is gone, which
    processes still hold ``lock_path`` (children it left behind)."""
    if rec is None:
        return None
    text = f"pid {rec['pid']} ({rec.get('command') or '?'}) since {rec.get('since') or '?'} UTC"
    if rec.get("host") not in (None, socket.gethostname()):
        return text + f" on {rec['host']}"
    if lock_path is not None and not pid_alive(rec["pid"]):
        others = open_by(lock_path)
        text += (", which is gone; " + (f"pid {', '.join(map(str, others))} still hold{'s' if len(others) == 1 else ''} "
                 "its lock (left behind by it: stop them)" if others else "its lock is being freed"))
    return text


def open_by(path: Path) -> list[int]:
    """The processes (Linux, this user's) that have ``path`` open, this one left out."""
    target, me, out = str(path.resolve()), os.getpid(), []
    with contextlib.suppress(OSError):
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == me:
                continue
            with contextlib.suppress(OSError):
                if any(os.readlink(fd) == target for fd in (proc / "fd").iterdir()):
                    out.append(int(proc.name))
    return sorted(out)


# --------------------------------------------------------------------------- the lock
@contextlib.contextmanager
def write_lock(settings, timeout: float | None = None, sweep_parts: bool = False) -> Iterator[None]:
    """The one writer: an exclusive lock on the data dir; waits up to ``timeout`` seconds
    (default: the settings' ``lock_timeout_s``), saying so, for the process that has it. Once
    it has it, removes the staging dirs of dead processes (with ``sweep_parts``, their
    temporary parts in the lake too: the ingest does)."""
    timeout = lock_timeout(settings) if timeout is None else timeout
    settings.home.mkdir(parents=True, exist_ok=True)
    path = settings.home / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    _HELD.add(fd)
    try:
        wait = Waiting(f"the writer lock of {settings.data_dir}", timeout, lambda: describe(read_holder(path), path))
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                wait.pause()
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, _record(), 0)
            with contextlib.suppress(OSError):
                lake.sweep(settings.work_dir, parts=sweep_parts)
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        _HELD.discard(fd)
        os.close(fd)


def holder(settings) -> dict | None:
    """The record of the data dir's writer (whoever has the lock, or last had it)."""
    return read_holder(settings.home / LOCK_NAME)
