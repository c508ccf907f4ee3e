"""tasks/common/processes.py: command lines as a waiting message shows them (no secrets), a
stop signal deferred to the end of a critical section, dead and live processes."""

import os
import signal
import subprocess
import time

import pytest

from tasks.common.processes import Stopped, command_line, critical, pid_alive, stop_on_signals


@pytest.mark.parametrize("argv, shown", [
    (["/x/.venv/bin/replay", "ingest", "/var/otlp"], "replay ingest /var/otlp"),
    (["/x/replay/cli.py", "--data-dir", "/d", "sql", "select 1"], "replay --data-dir /d sql select 1"),
    (["replay", "ingest", "--phoenix", "https://u:pw@phoenix:6006", "--api-key", "sk-1"],
     "replay ingest --phoenix https://phoenix:6006 --api-key ***"),
    (["replay", "ingest", "--api-key=sk-1", "--project", "p"], "replay ingest --api-key=*** --project p"),
    (["/usr/bin/pytest", "-q", "tests/x.py"], "pytest -q tests/x.py"),
])
def test_a_command_line_is_shown_without_its_secrets(argv, shown):
    assert command_line(argv) == shown


def test_a_long_command_line_is_cut():
    assert len(command_line(["replay", "ingest", *["/a/long/path"] * 50], limit=80)) == 80


def test_pid_alive():
    p = subprocess.Popen(["true"])
    p.wait()
    assert pid_alive(os.getpid()) and not pid_alive(p.pid) and not pid_alive(0)


def test_a_stop_signal_waits_for_the_end_of_a_critical_section():
    before, done = signal.getsignal(signal.SIGTERM), []
    with stop_on_signals(), pytest.raises(Stopped) as stopped:
        with critical():
            os.kill(os.getpid(), signal.SIGTERM)
            done.append("published")  # not cut in half
        done.append("after")  # never: the stop is raised when the section ends
    assert done == ["published"] and stopped.value.signum == signal.SIGTERM
    assert str(stopped.value) == "stopped by SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is put back


def test_outside_a_critical_section_a_stop_is_at_once():
    with stop_on_signals(), pytest.raises(Stopped):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # not reached: the handler raises first
