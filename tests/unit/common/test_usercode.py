"""tasks/common/usercode.py: user code that never returns is given up on (in daemon threads,
never joined), and sys.exit from it is an error, not the end of the process."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tasks.common.usercode import DaemonPool, UserCodeError, as_exception, run_each, user_exit


@pytest.fixture
def gate():
    """An event the hanging jobs wait on; set at the end so that no thread outlives the test."""
    ev = threading.Event()
    yield ev
    ev.set()


def test_user_exit_words_what_user_code_did():
    assert user_exit(SystemExit(0), "the agent") == "the agent called sys.exit(0)"
    assert user_exit(SystemExit("bye"), "it") == "it called sys.exit('bye')"
    assert user_exit(GeneratorExit(), "it") == "it raised GeneratorExit"
    assert user_exit(ValueError("x"), "it") is None and user_exit(KeyboardInterrupt(), "it") is None
    assert isinstance(as_exception(SystemExit(2), "it"), UserCodeError)
    err = ValueError("kept")
    assert as_exception(err, "it") is err


def test_run_each_gives_up_on_a_job_that_hangs_and_runs_the_rest(gate):
    ran = []

    def job(i):
        def go():
            if i == 1:
                gate.wait()
            ran.append(i)
            return i * 10
        return go

    out = run_each([job(i) for i in range(4)], 0.2, lambda i: f"timeout {i}")
    assert out == [0, "timeout 1", 20, 30] and ran == [0, 2, 3]
    hung = [t for t in threading.enumerate() if t.name.startswith("replay-user-0")]
    assert hung and all(t.daemon for t in hung)  # never joined at exit
    gate.set()
    hung[0].join(5)
    assert ran == [0, 2, 3, 1] and out[1] == "timeout 1"  # its late result is dropped


def test_run_each_without_a_timeout_runs_here_and_raises_what_a_job_raises():
    assert run_each([lambda: 1, lambda: 2], None, lambda i: None) == [1, 2]
    with pytest.raises(ZeroDivisionError):
        run_each([lambda: 1, lambda: 1 / 0], 5.0, lambda i: None)


def test_daemon_pool_gives_up_on_a_hung_call_and_a_new_thread_takes_its_place(gate):
    pool = DaemonPool(1, name="test-pool")

    async def main():
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await pool.run(gate.wait)
        # the only thread hangs; the next call runs in a new one
        assert await pool.run(lambda x: x + 1, 41) == 42
        with pytest.raises(SystemExit):  # the caller gets what the call raised, to word it
            await pool.run(lambda: (_ for _ in ()).throw(SystemExit(0)))

    asyncio.run(main())
    threads = [t for t in threading.enumerate() if t.name.startswith("test-pool")]
    assert len(threads) >= 2 and all(t.daemon for t in threads)
    pool.close()
