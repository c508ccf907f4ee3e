"""SimulatedUser against the real loopback OpenAI-compatible stub (tests/llm_stub.py)."""

from __future__ import annotations

import asyncio
import json

import pytest
from llm_stub import llm_stub

from models.scenario import Persona, ScenarioRow, Turn
from tasks.common.llm import AsyncChatClient, InvalidReply
from tasks.simulate.simulated_user import NO_MODEL_ERROR, SimulatedUser, make_simulated_user

PERSONA = Persona(name="Jay", age_group="18-24", personality="laid-back", communication_style="casual",
                  tone="friendly", verbosity="low", typos="medium", emoji_usage="none",
                  slang_usage="high")
SITUATION = "Jay got a neon green hoodie instead of the black one he ordered (order A1077)."
OUTCOME = "The agent looked up the order and issued a $54.00 refund. Jay thanked it and left."


def row(**kw) -> ScenarioRow:
    return ScenarioRow(row_index=0, origin_id="sess_x", persona=PERSONA, situation=SITUATION,
                       outcome=OUTCOME, conversation_branch="start", branch_category="resolved",
                       user_turns=["yo my order A1077 came w the wrong color"],
                       expected_turns=[Turn(turn_index=0, trace_id="t0")], **kw)


def run(script, steps, first_message=None, retries=2):
    """Start the stub, make a user, and run ``steps(user)`` (a coroutine function)."""
    with llm_stub(script) as server:
        async def go():
            async with AsyncChatClient(server.base_url, model="sim-model", max_retries=0,
                                       timeout=5) as client:
                user = SimulatedUser(client, "sim-model", PERSONA, SITUATION, OUTCOME,
                                     first_message, retries=retries)
                return await steps(user)
        return asyncio.run(go()), server


def test_first_message_verbatim_then_model_reply():
    history = [{"role": "user", "content": "yo my order A1077 came w the wrong color lol"},
               {"role": "assistant", "content": "Sorry! Refund or reorder?"}]

    async def steps(user):
        first = await user.next_message([])
        second = await user.next_message(history)
        return first, second

    (first, second), server = run([{"content": '{"message": "nah just refund me tbh", "end": false}'}],
                                  steps, first_message="yo my order A1077 came w the wrong color lol")
    assert first == "yo my order A1077 came w the wrong color lol"
    assert second == "nah just refund me tbh"
    [req] = server.chat_requests  # the first message did not ask the model
    body = req.json
    assert body["model"] == "sim-model"
    assert body["response_format"]["type"] == "json_schema"
    system, ask = body["messages"][0]["content"], body["messages"][1]["content"]
    # persona (with writing style), situation and outcome are in the prompt
    for text in ("Jay", "casual", "friendly", "typos", "slang", SITUATION, OUTCOME):
        assert text in system
    assert "YOU: yo my order A1077" in ask and "AGENT: Sorry! Refund or reorder?" in ask


def test_no_first_message_asks_the_model_and_empty_history():
    async def steps(user):
        return await user.next_message([])

    msg, server = run([{"content": '```json\n{"message": "hi, wrong hoodie color", "end": false}\n```'}],
                      steps)
    assert msg == "hi, wrong hoodie color"
    assert "you write first" in server.chat_requests[0].json["messages"][1]["content"]


def test_hybrid_handover_first_message_with_existing_history():
    history = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]

    async def steps(user):
        return [await user.next_message(history), await user.next_message(history)]

    out, server = run([{"content": '{"message": "thx", "end": false}'}], steps,
                      first_message="original turn 2")
    assert out == ["original turn 2", "thx"] and len(server.chat_requests) == 1


def test_end_true_returns_none_and_stays_ended():
    async def steps(user):
        first = await user.next_message([{"role": "assistant", "content": "Refund done."}])
        again = await user.next_message([])
        return first, again, user.farewell

    (first, again, farewell), server = run([{"content": '{"message": "bet thx", "end": true}'}], steps)
    assert first is None and again is None and farewell == "bet thx"
    assert len(server.chat_requests) == 1


def test_invalid_json_is_retried_with_the_error_quoted():
    async def steps(user):
        return await user.next_message([{"role": "assistant", "content": "Hi, how can I help?"}])

    msg, server = run([{"content": "sure! my hoodie is the wrong color"},
                       {"content": '{"message": "hm", "end": "perhaps"}'},  # schema: end is not a bool
                       {"content": '{"message": "wrong color hoodie, A1077", "end": false}'}],
                      steps)
    assert msg == "wrong color hoodie, A1077"
    reqs = server.chat_requests
    assert len(reqs) == 3
    assert "not valid JSON" in reqs[1].json["messages"][-1]["content"]
    assert "does not match the schema: end:" in reqs[2].json["messages"][-1]["content"]


def test_an_empty_message_ends_the_conversation():
    async def steps(user):
        return await user.next_message([{"role": "assistant", "content": "Anything else?"}])

    msg, server = run([{"content": '{"message": " ", "end": false}'}], steps)
    assert msg is None and len(server.chat_requests) == 1


def test_the_opening_message_cannot_end_a_conversation_that_has_not_started():
    async def steps(user):
        return await user.next_message([]), user.ended

    (msg, ended), server = run([{"content": '{"message": "my hoodie is the wrong color", "end": true}'}], steps)
    assert msg == "my hoodie is the wrong color" and not ended and len(server.chat_requests) == 1


def test_a_blank_opening_message_is_asked_again():
    async def steps(user):
        return await user.next_message([])

    msg, server = run([{"content": '{"message": " ", "end": false}'},
                       {"content": '{"message": "wrong color hoodie", "end": false}'}], steps)
    assert msg == "wrong color hoodie" and len(server.chat_requests) == 2


def test_a_blank_opening_message_every_time_ends_the_conversation():
    async def steps(user):
        return await user.next_message([])

    msg, server = run([{"content": '{"message": "", "end": true}'}] * 2, steps, retries=1)
    assert msg is None and len(server.chat_requests) == 2


def test_invalid_reply_after_last_try():
    async def steps(user):
        return await user.next_message([])

    with pytest.raises(InvalidReply, match="not valid JSON") as info:
        run([{"content": "nope"}, {"content": "still nope"}], steps, retries=1)
    assert info.value.raw == "still nope" and len(info.value.tries) == 2


def test_make_simulated_user(settings):
    assert make_simulated_user(settings, row()) is None  # no model configured
    assert NO_MODEL_ERROR == ("simulate mode needs a model: set REPLAY_LLM_BASE_URL and "
                              "REPLAY_LLM_MODEL")
    assert make_simulated_user(settings.model_copy(update={"llm_base_url": "http://127.0.0.1:9/v1"}),
                               row()) is None  # a URL without a model is not a model

    with llm_stub([{"content": json.dumps({"message": "do u have it in black", "end": False})}]) as server:
        s = settings.model_copy(update={"llm_base_url": server.base_url, "llm_model": "m1"})

        async def go():
            user = make_simulated_user(s, row(), first_message="yo")
            try:
                return user.persona.name, await user.next_message([]), \
                    await user.next_message([{"role": "user", "content": "yo"}])
            finally:
                await user.aclose()

        assert asyncio.run(go()) == ("Jay", "yo", "do u have it in black")
        assert server.chat_requests[0].json["model"] == "m1"
