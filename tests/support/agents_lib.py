"""Agents under test for the simulation tests (imported by `module:function` refs)."""

import asyncio
import os
import random
import time

from models.simulate import AgentResponse


def sync_echo(input):
    return f"echo: {input.new_message['content']}"


async def async_echo(input):
    await asyncio.sleep(0)
    return AgentResponse(content=f"echo: {input.new_message['content']}",
                         metadata={"usage": {"input_tokens": 3, "output_tokens": 2}})


async def off_script(input):
    """Calls a tool production never called with these arguments."""
    result = await input.tools.call("lookup_order", {"order_id": "Z9999"})
    return AgentResponse(content=f"got {result}")


_rng = random.Random(7)
_attempts: dict[str, int] = {}


class Boom(Exception):
    pass


async def faulty(input):
    """~20% of turns fail: a timeout, a transient 5xx-like error (retried), or a crash."""
    key = f"{input.thread_id}:{input.turn_index}"
    n = _attempts[key] = _attempts.get(key, 0) + 1
    r = random.Random(hash(key) % 1000).random()
    if r < 0.05 and n == 1:
        await asyncio.sleep(5)  # longer than the turn timeout: retried
    if r < 0.10 and n == 1:
        raise TimeoutError("transient timeout")  # retried, then fine
    if r < 0.15:
        raise Boom(f"agent crashed on {key}")  # not transient: the chat fails
    if r < 0.20:
        return AgentResponse(content=None, tool_calls=[{"bad": "shape"}])  # malformed but not fatal
    return f"ok {input.turn_index}"


async def slow(input):
    await asyncio.sleep(float(os.environ.get("SLOW_AGENT_S", "0.2")))
    return f"slow answer {input.turn_index}"


def sleepy_sync(input):
    time.sleep(0.01)
    return "sync ok"


CHANGED = ("sess_9dfbab13dfae", 1)  # (origin, turn) where the changed agent differs from production


async def changed_one_turn(input):
    """The oracle, except on one turn of one conversation: a different answer, no tool call."""
    from examples.support_agent import oracle

    if (input.metadata["origin_id"], input.turn_index) == CHANGED:
        return AgentResponse(content="Sorry, I cannot help with refunds today.")
    return await oracle(input)


class ShortAnswers:
    """A custom evaluator: passes when the answer has at most 40 words."""

    name = "short_answers"
    version = "2"
    level = "turn"

    def evaluate(self, ctx):
        from models.evals import EvalResult

        words = len((ctx.turn or {}).get("assistant_message") or "".split())
        return EvalResult(value=float(words), passed=words <= 40, reason=f"{words} words")


# --------------------------------------------------------------------------- user code that misbehaves
# (tests/e2e/simulate/test_user_code.py): the turn or chat it misbehaves on is row 0's second turn
def _is_the_one(input) -> bool:
    return input.metadata["row_index"] == 0 and input.turn_index == 1


def _mark(name: str) -> None:
    """Touch $MARK_DIR/name: the test waits for it to know the misbehaviour has started."""
    if os.environ.get("MARK_DIR"):
        open(os.path.join(os.environ["MARK_DIR"], name), "a").close()


def sync_hangs(input):
    """A sync agent that never returns on one turn (a blocking call without a timeout)."""
    if _is_the_one(input):
        import threading

        threading.Event().wait()
    return f"echo: {input.new_message['content']}"


def sync_exits(input):
    """A sync agent that calls sys.exit(0) on one turn."""
    if _is_the_one(input):
        import sys

        sys.exit(0)
    return f"echo: {input.new_message['content']}"


async def async_exits(input):
    """An async agent that raises SystemExit(3) on one turn."""
    if _is_the_one(input):
        raise SystemExit(3)
    return f"echo: {input.new_message['content']}"


class _OnRowZero:
    version = "1"
    level = "chat"

    def evaluate(self, ctx):
        if ctx.chat["row_index"] == 0:
            self.misbehave()
        return True


class HangingEvaluator(_OnRowZero):
    """Never returns on row 0's chats (marks that it started hanging)."""

    name = "hangs"

    def misbehave(self):
        import threading

        _mark("evaluator-hangs")
        threading.Event().wait()


class ExitingEvaluator(_OnRowZero):
    """Calls sys.exit(0) on row 0's chats."""

    name = "exits"

    def misbehave(self):
        import sys

        sys.exit(0)


def huge_answers(input):
    """Answers $HUGE_ANSWER_MB MB of text (random words, barely compressible) on the first turn
    of the first $HUGE_ANSWER_ROWS rows (default 3); echoes otherwise."""
    if input.metadata["row_index"] < int(os.environ.get("HUGE_ANSWER_ROWS", "3")) and input.turn_index == 0:
        rng = random.Random(input.metadata["row_index"])
        words = [f"{rng.getrandbits(40):x}" for _ in range(4096)]
        size = int(float(os.environ.get("HUGE_ANSWER_MB", "50")) * 1_000_000)
        block = " ".join(rng.choice(words) for _ in range(200_000))
        return (block * (size // len(block) + 1))[:size]
    return f"echo: {input.new_message['content']}"


def explodes(input):
    """Fails most chats, in two ways that differ only by numbers and ids (tests/e2e/simulate/
    test_run_feedback.py): rows 0-7 raise RuntimeError on turn 0 (even rows) or turn 1 (odd
    rows); rows 8-9 a LookupError naming an order and a session id; rows 10+ answer."""
    row, turn = input.metadata["row_index"], input.turn_index
    if row < 8 and turn == row % 2:
        raise RuntimeError(f"agent exploded on turn {turn}")
    if row in (8, 9):
        raise LookupError(f"no order A{1200 + row} for session {input.metadata['origin_id']}")
    return f"echo: {input.new_message['content']}"


_USAGE: dict = {}


async def oracle_with_usage(input):
    """The example oracle (production's answers and tool calls), reporting production's recorded
    token usage of the turn: a run of it spends exactly what ``replay run --dry-run`` expects."""
    from examples.support_agent import oracle
    from models.settings import load_settings
    from tasks.store import catalog

    d = input.metadata["replay_data_dir"]
    if d not in _USAGE:
        with catalog.reader(load_settings(data_dir=d)) as con:
            rows = con.execute("select session_id, turn_index, input_tokens, output_tokens from turns").fetchall()
        _USAGE[d] = {(s, i): (a, b) for s, i, a, b in rows}
    resp = await oracle(input)
    tin, tout = _USAGE[d].get((input.metadata["origin_id"], input.turn_index), (0, 0))
    resp.metadata["usage"] = {"input_tokens": tin, "output_tokens": tout}
    return resp
