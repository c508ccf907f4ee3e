"""tasks/common/retry.py: the transient rule, Retry-After, the full-jitter backoff, and the
sync/async runs that count attempts. Pure: no server, no real sleep (injected)."""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from types import SimpleNamespace

import httpx
import pytest
from tenacity import RetryCallState

from tasks.common.retry import (
    BACKOFF_MAX_S,
    BACKOFF_S,
    RETRY_AFTER_MAX_S,
    RetryPolicy,
    TransientResponse,
    attempts_of,
    backoff_delay,
    is_transient,
    raise_for_transient,
    retry_after_of,
    retry_after_s,
    retry_delay,
    status_of,
    transient_status,
)

pytestmark = pytest.mark.timeout(10)


def top(lo: float, hi: float) -> float:  # a "random" source that always picks the ceiling
    return hi


def bottom(lo: float, hi: float) -> float:
    return lo


def transient_response(status: int, headers: dict[str, str] | None = None) -> TransientResponse:
    return TransientResponse(httpx.Response(status, headers=headers))


def status_error(status: int, headers: dict[str, str] | None = None) -> httpx.HTTPStatusError:
    req = httpx.Request("GET", "http://x/")
    return httpx.HTTPStatusError("x", request=req, response=httpx.Response(status, headers=headers, request=req))


# --------------------------------------------------------------------------- transient


@pytest.mark.parametrize("status, transient", [
    (None, False), (200, False), (301, False), (400, False), (404, False), (428, False),
    (429, True), (499, False), (500, True), (501, True), (503, True), (504, True), (599, True),
    (600, False),
])
def test_transient_status(status, transient):
    assert transient_status(status) is transient


def test_status_of_reads_the_usual_places():
    assert status_of(SimpleNamespace(status_code=503)) == 503
    assert status_of(SimpleNamespace(status=429)) == 429
    assert status_of(SimpleNamespace(http_status=500)) == 500
    assert status_of(status_error(502)) == 502
    assert status_of(transient_response(504)) == 504
    assert status_of(SimpleNamespace(status=True)) is None  # a bool is not a status
    assert status_of(SimpleNamespace(status="503")) is None
    assert status_of(ValueError("x")) is None


@pytest.mark.parametrize("exc, transient", [
    (TimeoutError(), True),
    (asyncio.TimeoutError(), True),
    (ConnectionResetError(), True),
    (ConnectionRefusedError(), True),
    (httpx.ConnectError("refused"), True),
    (httpx.ReadTimeout("slow"), True),
    (httpx.PoolTimeout("busy"), True),
    (httpx.RemoteProtocolError("dropped"), True),
    (httpx.UnsupportedProtocol("ftp"), False),
    (httpx.InvalidURL("bad"), False),
    (transient_response(503), True),
    (transient_response(429), True),
    (status_error(500), True),
    (status_error(404), False),
    (status_error(400), False),
    (type("RateLimitError", (Exception,), {})(), True),  # an SDK's, by name
    (type("APIConnectionError", (Exception,), {})(), True),
    (type("APIStatusError", (Exception,), {"status_code": 503})(), True),
    (type("APIStatusError", (Exception,), {"status_code": 422})(), False),
    (ValueError("x"), False),
    (RuntimeError("x"), False),
    (asyncio.CancelledError(), False),  # never: cancellation must go through
    (KeyboardInterrupt(), False),
])
def test_is_transient(exc, transient):
    assert is_transient(exc) is transient


def test_a_verdict_decides_first_and_none_defers():
    class Mine(Exception):
        def __init__(self, transient):
            self.transient = transient

    def verdict(exc):
        return exc.transient if isinstance(exc, Mine) else None

    assert is_transient(Mine(True), verdict) is True
    assert is_transient(Mine(False), verdict) is False
    assert is_transient(TimeoutError(), verdict) is True  # deferred to the rule
    assert is_transient(ValueError(), verdict) is False
    assert is_transient(TimeoutError(), lambda e: False) is False  # the caller overrides
    assert is_transient(asyncio.CancelledError(), lambda e: True) is False


def test_raise_for_transient():
    ok, missing = httpx.Response(200), httpx.Response(404)
    assert raise_for_transient(ok) is ok and raise_for_transient(missing) is missing
    with pytest.raises(TransientResponse, match="HTTP 503") as e:
        raise_for_transient(httpx.Response(503))
    assert e.value.status == 503 and e.value.response.status_code == 503


# --------------------------------------------------------------------------- Retry-After


def test_retry_after_forms():
    assert retry_after_s({"Retry-After": "2"}) == 2.0
    assert retry_after_s({"retry-after": "1.5"}) == 1.5
    assert retry_after_s({"retry-after-ms": "250"}) == 0.25
    assert retry_after_s({"Retry-After-Ms": "250", "Retry-After": "9"}) == 0.25  # ms wins
    assert retry_after_s({"retry-after-ms": "soon", "retry-after": "3"}) == 3.0  # falls back
    assert retry_after_s({"Retry-After": "-4"}) == 0.0
    assert retry_after_s({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # past
    assert retry_after_s({"Retry-After": "soon"}) is None
    assert retry_after_s({}) is None
    assert retry_after_s(httpx.Headers({"Retry-After": "7"})) == 7.0


def test_retry_after_as_an_http_date_in_the_future():
    when = email.utils.formatdate(time.time() + 120, usegmt=True)
    asked = retry_after_s({"Retry-After": when})
    assert asked is not None and 100 < asked <= 120


def test_retry_after_of_an_error():
    assert retry_after_of(SimpleNamespace(retry_after=2.5)) == 2.5
    assert retry_after_of(SimpleNamespace(retry_after=-1)) == 0.0
    assert retry_after_of(SimpleNamespace(retry_after=True)) is None  # a bool is not seconds
    assert retry_after_of(SimpleNamespace(retry_after=None)) is None
    assert retry_after_of(transient_response(429, {"Retry-After": "3"})) == 3.0
    assert retry_after_of(status_error(503, {"retry-after-ms": "1500"})) == 1.5
    assert retry_after_of(transient_response(503)) is None
    assert retry_after_of(SimpleNamespace(response=SimpleNamespace(headers=42))) is None  # not headers
    assert retry_after_of(ValueError("x")) is None
    assert retry_after_of(None) is None


# --------------------------------------------------------------------------- the wait


@pytest.mark.parametrize("attempt, ceiling", [
    (0, 0.5), (1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (6, 8.0), (10_000, 8.0),
])
def test_backoff_ceiling_doubles_to_the_cap(attempt, ceiling):
    assert backoff_delay(attempt, uniform=top) == ceiling
    assert backoff_delay(attempt, uniform=bottom) == 0.0  # full jitter: from zero


def test_backoff_knobs_and_the_real_jitter():
    assert backoff_delay(3, backoff_s=0.1, backoff_max_s=0.25, uniform=top) == 0.25
    assert backoff_delay(2, backoff_s=0.0, backoff_max_s=0.0, uniform=top) == 0.0
    rng = random.Random(7)
    delays = [backoff_delay(3, uniform=rng.uniform) for _ in range(300)]
    assert all(0.0 <= d <= 2.0 for d in delays)
    assert min(delays) < 0.2 and max(delays) > 1.8  # spread over the whole interval


def test_retry_delay_honours_retry_after_over_the_backoff():
    asked = SimpleNamespace(retry_after=0.1)
    assert retry_delay(asked, 5, uniform=top) == 0.1  # shorter than the backoff: still honoured
    assert retry_delay(SimpleNamespace(retry_after=600), 1) == RETRY_AFTER_MAX_S  # capped
    assert retry_delay(SimpleNamespace(retry_after=600), 1, retry_after_max_s=4.0) == 4.0
    assert retry_delay(transient_response(429, {"Retry-After": "0"}), 3, uniform=top) == 0.0
    assert retry_delay(transient_response(503), 3, uniform=top) == 2.0  # no Retry-After
    assert retry_delay(None, 2, backoff_s=0.01, uniform=top) == 0.02
    assert (BACKOFF_S, BACKOFF_MAX_S, RETRY_AFTER_MAX_S) == (0.5, 8.0, 30.0)


def test_policy_wait_is_the_tenacity_wait():
    policy = RetryPolicy(backoff_s=0.1, backoff_max_s=1.0, retry_after_max_s=2.0, uniform=top)
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = 3
    state.set_exception((ValueError, ValueError("x"), None))
    assert policy.wait(state) == pytest.approx(0.4)
    err = transient_response(429, {"Retry-After": "60"})
    state.set_exception((TransientResponse, err, None))
    assert policy.wait(state) == 2.0


# --------------------------------------------------------------------------- runs and attempts


class Script:
    """A callable that raises the scripted errors in turn, then returns ``result``."""

    def __init__(self, *errors: BaseException, result: str = "ok"):
        self.errors = list(errors)
        self.result = result
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.result


def test_attempts_floor_and_attempts_of():
    assert RetryPolicy(attempts=0).attempts == 1
    assert RetryPolicy(attempts=-3).attempts == 1
    assert RetryPolicy().attempts == 4
    assert attempts_of(ValueError()) == 1
    assert attempts_of(ValueError(), default=4) == 4
    assert attempts_of(SimpleNamespace(attempts=3)) == 3
    assert attempts_of(SimpleNamespace(attempts=True)) == 1


def test_call_retries_transient_and_counts_attempts():
    slept, seen = [], []
    fn = Script(ConnectionResetError("reset"), transient_response(503))
    policy = RetryPolicy(attempts=4, backoff_s=0.5, uniform=top)
    result = policy.call(fn, sleep=slept.append,
                         on_retry=lambda attempt, exc, delay: seen.append((attempt, type(exc), delay)))
    assert result == ("ok", 3) and fn.calls == 3
    assert slept == [0.5, 1.0]
    assert seen == [(1, ConnectionResetError, 0.5), (2, TransientResponse, 1.0)]


def test_call_gives_up_with_the_last_error_carrying_attempts():
    slept = []
    fn = Script(*[transient_response(503) for _ in range(5)])
    with pytest.raises(TransientResponse) as e:
        RetryPolicy(attempts=3, uniform=bottom).call(fn, sleep=slept.append)
    assert fn.calls == 3 and e.value.attempts == 3 and attempts_of(e.value) == 3
    assert slept == [0.0, 0.0]


def test_call_raises_what_is_not_transient_at_once():
    slept = []
    fn = Script(TimeoutError("slow"), ValueError("bad"))
    with pytest.raises(ValueError, match="bad") as e:
        RetryPolicy(attempts=5, uniform=bottom).call(fn, sleep=slept.append)
    assert fn.calls == 2 and e.value.attempts == 2 and len(slept) == 1
    fn = Script(httpx.UnsupportedProtocol("ftp"))
    with pytest.raises(httpx.UnsupportedProtocol) as e:
        RetryPolicy(attempts=5).call(fn, sleep=slept.append)
    assert fn.calls == 1 and e.value.attempts == 1


def test_call_with_a_verdict():
    class Flaky(Exception):
        transient = True

    policy = RetryPolicy(attempts=3, verdict=lambda e: True if isinstance(e, Flaky) else None,
                         uniform=bottom)
    assert policy.call(Script(Flaky(), Flaky()), sleep=lambda s: None) == ("ok", 3)
    with pytest.raises(Flaky):
        RetryPolicy(attempts=3).call(Script(Flaky()), sleep=lambda s: None)  # no verdict: not transient


def test_call_honours_retry_after_between_attempts():
    slept = []
    fn = Script(transient_response(429, {"Retry-After": "7"}), transient_response(429, {"Retry-After": "90"}))
    assert RetryPolicy(retry_after_max_s=30.0, uniform=top).call(fn, sleep=slept.append) == ("ok", 3)
    assert slept == [7.0, 30.0]


def test_retrying_is_a_plain_tenacity_loop():
    slept, tries = [], []
    for attempt in RetryPolicy(attempts=3, uniform=top, backoff_s=0.25).retrying(sleep=slept.append):
        with attempt:
            tries.append(attempt.retry_state.attempt_number)
            if len(tries) < 3:
                raise httpx.ConnectError("refused")
    assert tries == [1, 2, 3] and slept == [0.25, 0.5]


class AsyncScript(Script):
    async def __call__(self) -> str:  # type: ignore[override]
        await asyncio.sleep(0)
        return Script.__call__(self)


def test_acall_counts_attempts_and_awaits_an_async_on_retry():
    slept, seen = [], []

    async def sleep(delay):
        slept.append(delay)

    async def on_retry(attempt, exc, delay):
        await asyncio.sleep(0)
        seen.append((attempt, type(exc).__name__, delay))

    fn = AsyncScript(TimeoutError(), httpx.ReadTimeout("slow"))
    policy = RetryPolicy(attempts=3, backoff_s=0.1, uniform=top)
    assert asyncio.run(policy.acall(fn, on_retry=on_retry, sleep=sleep)) == ("ok", 3)
    assert slept == [0.1, 0.2]
    assert seen == [(1, "TimeoutError", 0.1), (2, "ReadTimeout", 0.2)]


def test_acall_takes_a_sync_on_retry_and_gives_up_with_attempts():
    seen = []

    async def sleep(delay):
        pass

    fn = AsyncScript(*[ConnectionResetError() for _ in range(4)])
    with pytest.raises(ConnectionResetError) as e:
        asyncio.run(RetryPolicy(attempts=2).acall(fn, sleep=sleep,
                                                   on_retry=lambda a, exc, d: seen.append(a)))
    assert fn.calls == 2 and e.value.attempts == 2 and seen == [1]


def test_acall_lets_cancellation_through():
    fn = AsyncScript(asyncio.CancelledError())

    async def sleep(delay):
        raise AssertionError("a cancelled attempt must not be retried")

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(RetryPolicy(attempts=3).acall(fn, sleep=sleep))
    assert fn.calls == 1
