"""The processes Replay starts and the signals that stop them.

- A worker process (the ingest's parsers) dies with the process that started it:
  :func:`worker_init` asks Linux for a parent-death signal (``prctl(PR_SET_PDEATHSIG)``), or
  watches its parent elsewhere; it leaves SIGINT/SIGTERM to its parent, which stops it.
- A command that must stop cleanly (``replay ingest``) runs under :func:`stop_on_signals`:
  SIGTERM and SIGINT raise :class:`Stopped` in its main thread, so that its ``with`` blocks
  unwind (workers stopped, staging removed, locks released); a signal that comes during a
  :func:`critical` section (a run's parts being published) is taken at its end.
- :func:`pid_alive` and :func:`command_line` (what another process is; a command line without
  its secrets) for the messages of a command that waits for another one; :func:`this_process`
  and :func:`owner_gone` (has the process recorded as a job's owner ended: a running execution
  whose process was killed).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class Stopped(KeyboardInterrupt):
    """A stop asked for by a signal. A KeyboardInterrupt, so that no ``except Exception`` of a
    stage takes it for a failure of a record, and the CLI reports it in one line."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")


# --------------------------------------------------------------------------- worker processes
def worker_init(parent_pid: int) -> None:
    """The first thing a worker process runs (a pool's ``initializer``): it dies when
    ``parent_pid`` does, and takes no stop signal itself (Ctrl-C reaches the whole process
    group; the parent stops its workers)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler (a fork copies it)
    if not _parent_death_signal(signal.SIGKILL):
        threading.Thread(target=_watch_parent, args=(parent_pid,), name="replay-parent-watch", daemon=True).start()
    if os.getppid() != parent_pid:  # the parent died before the signal was asked for
        os._exit(1)


def _parent_death_signal(signum: int) -> bool:
    """Linux: ``signum`` to this process when its parent (the thread that forked it) ends."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent_pid: int, every: float = 0.5) -> None:
    while os.getppid() == parent_pid:
        time.sleep(every)
    os._exit(1)


# --------------------------------------------------------------------------- stop signals
_state = {"critical": 0, "pending": None}


def _on_signal(signum: int, _frame) -> None:
    if _state["critical"]:
        _state["pending"] = signum
        return
    raise Stopped(signum)


@contextlib.contextmanager
def stop_on_signals(signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)) -> Iterator[None]:
    """SIGTERM and SIGINT raise :class:`Stopped` in the main thread while this runs (elsewhere
    than in the main thread, where no handler can be set, it does nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _on_signal) for s in signals}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def critical() -> Iterator[None]:
    """A section a stop must not cut in half (a run's parts and its bookkeeping becoming
    visible): a stop signal that comes during it is raised when it ends."""
    _state["critical"] += 1
    try:
        yield
    finally:
        _state["critical"] -= 1
    pending = _state["pending"]
    if pending is not None and not _state["critical"]:
        _state["pending"] = None
        raise Stopped(pending)


# --------------------------------------------------------------------------- other processes
def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (a zombie counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # Linux: a zombie has exited, only its exit status is left
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (Linux: clock ticks since boot, ``/proc/<pid>/stat`` field 22);
    None where that cannot be read. With the pid it names one process: a pid reused later by
    another process has another start."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def this_process() -> dict[str, Any]:
    """``{pid, host, start}`` of this process: what a long job records as its owner."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "start": process_start(os.getpid())}


def owner_gone(pid: int | None, host: str | None, start: int | None = None) -> bool | None:
    """Whether the process recorded as ``pid`` on ``host`` (started at ``start``) has ended:
    True (dead, or its pid now names another process), False (alive), None (cannot tell: no
    record, or another host)."""
    if pid is None or host is None or host != socket.gethostname():
        return None
    if not pid_alive(pid):
        return True
    now_start = process_start(pid)
    return start is not None and now_start is not None and now_start != start


_SECRET_OPTION = re.compile(r"key|token|secret|password|passwd", re.IGNORECASE)
_USERINFO = re.compile(r"(\w[\w+.-]*://)[^/@\s]+@")


def command_line(argv: list[str] | None = None, limit: int = 200) -> str:
    """A process's command line as a message may show it: ``replay`` for Replay's own CLI, the
    values of options named like a secret (``--api-key``) and URL credentials left out."""
    argv = list(sys.argv if argv is None else argv) or ["?"]
    prog = argv[0]
    name = "replay" if Path(prog).name == "replay" or prog.replace(os.sep, "/").endswith("replay/cli.py") else Path(prog).name
    out, hide = [name], False
    for arg in argv[1:]:
        if hide:
            out.append("***")
            hide = False
        elif arg.startswith("-") and _SECRET_OPTION.search(arg.split("=", 1)[0]):
            out.append(arg.split("=", 1)[0] + "=***" if "=" in arg else arg)
            hide = "=" not in arg
        else:
            out.append(_USERINFO.sub(r"\1", arg))
    text = " ".join(out)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def process_command(pid: int) -> str | None:
    """Another process's command line (Linux /proc), as :func:`command_line` shows it."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    argv = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
    if len(argv) >= 3 and argv[1] == "-m":  # python -m replay.cli ...
        argv = [argv[2].replace(".", "/") + ".py", *argv[3:]]
    elif len(argv) >= 2 and Path(argv[0]).name.startswith("python"):
        argv = argv[1:]
    return command_line(argv) if argv else None
