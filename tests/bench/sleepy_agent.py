"""The benchmark's agent under test: 50 ms a turn, no CPU."""

import asyncio

SLEEP_S = 0.05


async def agent(input):
    await asyncio.sleep(SLEEP_S)
    return f"answer {input.turn_index}"
