"""Agents for the CLI tests of runs, compare and evaluate (imported by `module:function` refs)."""

import asyncio
import os

from models.simulate import AgentResponse


async def explodes_on_second_turn(input):
    """Answers the first turn; every chat with a second turn fails on it, with one same error."""
    if input.turn_index == 1:
        raise RuntimeError("agent exploded on turn 1")
    return AgentResponse(content=f"answer {input.turn_index}")


async def slow(input):
    await asyncio.sleep(float(os.environ.get("SLOW_AGENT_S", "0.2")))
    return f"slow answer {input.turn_index}"
