"""Progress of a long command, item by item (``replay run``: chats).

On a terminal (stderr is a tty) a rich progress bar that advances with every item (done /
failed / rate / time left); otherwise — a log, CI, a pipe — one line on stderr every
``every_s`` seconds (``REPLAY_PROGRESS_INTERVAL_S``, default 10) and one at the end, so that a
long run shows it is alive without flooding a log:

    replay run: 250/1,000 chats done, 3 failed, 41.7 chats/s, about 18 s left

The clock and the stream are parameters: the line logic is a pure function of them.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO


class Progress:
    """``total`` items, ``already`` of them done before this process started (a resume)."""

    def __init__(self, total: int, already: int = 0, *, label: str = "replay run", unit: str = "chats",
                 every_s: float = 10.0, enabled: bool = True, stream: IO[str] | None = None,
                 clock: Callable[[], float] = time.monotonic, terminal: bool | None = None) -> None:
        self.total, self.already, self.done, self.failed = total, already, already, 0
        self.label, self.unit, self.every_s, self.enabled = label, unit, every_s, enabled
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.t0 = self.last = clock()
        self.lines = 0
        self.bar = None
        if enabled and (terminal if terminal is not None else _isatty(self.stream)):
            self._start_bar()

    def _start_bar(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        self.bar = RichProgress(TextColumn(self.unit), BarColumn(), MofNCompleteColumn(),
                                TextColumn("failed {task.fields[failed]}"), TimeRemainingColumn(),
                                console=Console(file=self.stream), transient=True)
        self.bar.start()
        self.task = self.bar.add_task(self.label, total=self.total, completed=self.already, failed=0)

    def advance(self, n: int = 1, failed: int = 0) -> None:
        """``n`` more items done, ``failed`` of them failed."""
        self.done += n
        self.failed += failed
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done, failed=self.failed)
        elif self.enabled and self.clock() - self.last >= self.every_s:
            self._line()

    def line(self, final: bool = False) -> str:
        """The progress line as it stands (``final``: the last one, with the time taken)."""
        elapsed = max(1e-9, self.clock() - self.t0)
        rate = (self.done - self.already) / elapsed
        head = f"{self.label}: {self.done:,}/{self.total:,} {self.unit} done, {self.failed:,} failed"
        if final:
            return f"{head} in {elapsed:.1f} s"
        left = f"about {(self.total - self.done) / rate:.0f} s left" if rate > 0 else "time left unknown"
        return f"{head}, {rate:.1f} {self.unit}/s, {left}"

    def _line(self, final: bool = False) -> None:
        self.stream.write(self.line(final) + "\n")
        self.stream.flush()
        self.last = self.clock()
        self.lines += 1

    def close(self) -> None:
        """Stop the bar, or write the last line (when anything was done)."""
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
        elif self.enabled and self.done > self.already:
            self._line(final=True)


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


__all__ = ["Progress"]
