"""The OpenAI-compatible client, ask_json and LLMWriter against a real loopback server
(tests/llm_stub.py): retries, Retry-After, timeouts, one-line errors without the key,
corrective retries that quote the error, and ConversationNotes from a scripted model."""

from __future__ import annotations

import asyncio
import json
import pickle
import socket
import threading
import time
from types import SimpleNamespace

import httpx
import pytest
from llm_stub import StubResponse, llm_stub
from pydantic import BaseModel, SecretStr

from models.scenario import ConversationNotes, GenerationFailure, ToolCall, Transcript, Turn
from tasks.common.llm import (
    AsyncChatClient,
    ChatClient,
    InvalidReply,
    LLMError,
    aask_json,
    ask_json,
    history_message,
    make_llm_client,
    parse_json_text,
    retry_after_s,
)
from tasks.scenario.writer_llm import LLMWriter, count_sentences

pytestmark = pytest.mark.timeout(20)

KEY = "sk-test-SECRET-0123456789abcdef"
MSGS = [{"role": "user", "content": "What's the weather in Paris?"}]


class Weather(BaseModel):
    city: str
    temp_c: int


def client(server, **kw) -> ChatClient:
    opts = dict(model="stub-model", api_key=KEY, timeout=1.0, max_retries=2, backoff_s=0.01)
    opts.update(kw)
    return ChatClient(server.base_url, **opts)


def last_user(request) -> str:
    return request.json["messages"][-1]["content"]


# --------------------------------------------------------------------------- chat


def test_chat_returns_the_assistant_message_and_usage():
    with llm_stub([{"content": "18°C and sunny.",
                    "usage": {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}},
                   {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}]
                  ) as server, client(server) as c:
        reply = c.chat(MSGS)
        assert reply["content"] == "18°C and sunny."
        assert reply["tool_calls"] == []
        assert reply["usage"] == {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}
        assert reply["finish_reason"] == "stop"
        tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
        reply = c.chat(MSGS, tools=tools, max_tokens=50)
        call = reply["tool_calls"][0]
        assert call["function"]["name"] == "get_weather"
        assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
        assert history_message(reply) == {"role": "assistant", "content": "",
                                          "tool_calls": reply["tool_calls"]}
    first, second = server.requests
    assert first.method == "POST" and first.path == "/v1/chat/completions"
    assert first.headers["authorization"] == f"Bearer {KEY}"
    assert first.json == {"model": "stub-model", "messages": MSGS, "temperature": 0}
    assert second.json["tools"] == tools and second.json["max_tokens"] == 50
    assert KEY not in repr(c)


def test_500_then_ok_is_retried():
    with llm_stub([500, {"content": "ok"}]) as server, client(server) as c:
        assert c.chat(MSGS)["content"] == "ok"
    assert len(server.requests) == 2


def test_5xx_every_time_fails_after_the_bounded_attempts():
    with llm_stub(lambda req: 503) as server, client(server, max_retries=2) as c:
        with pytest.raises(LLMError) as e:
            c.chat(MSGS)
    assert len(server.requests) == 3
    assert e.value.status == 503 and e.value.attempts == 3
    assert "kept failing: HTTP 503" in str(e.value) and "after 3 attempts" in str(e.value)
    assert "\n" not in str(e.value)


def test_429_retry_after_is_honoured():
    with llm_stub([(429, {"Retry-After": "1"}), {"content": "ok"}]) as server, \
            client(server, backoff_s=0.001) as c:
        t0 = time.monotonic()
        assert c.chat(MSGS)["content"] == "ok"
        elapsed = time.monotonic() - t0
    first, second = server.requests
    assert 0.95 <= second.received_at - first.received_at < 1.8
    assert elapsed < 1.9


def test_retry_after_is_capped():
    with llm_stub([(429, {"Retry-After": "3600"}), {"content": "ok"}]) as server, \
            client(server, retry_after_max_s=0.1) as c:
        t0 = time.monotonic()
        assert c.chat(MSGS)["content"] == "ok"
        assert time.monotonic() - t0 < 1.0


def test_retry_after_forms():
    assert retry_after_s({"Retry-After": "2"}) == 2.0
    assert retry_after_s({"retry-after-ms": "250"}) == 0.25
    assert retry_after_s({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # past
    assert retry_after_s({"Retry-After": "soon"}) is None
    assert retry_after_s({}) is None


def test_401_fails_at_once_in_one_line_without_the_key():
    # the server even echoes the key back: it must not reach the message
    body = {"error": {"message": f"Incorrect API key provided: {KEY}.\nSee the docs.",
                      "type": "invalid_request_error", "code": "invalid_api_key"}}
    with llm_stub(lambda req: StubResponse(401, body)) as server, client(server) as c:
        with pytest.raises(LLMError) as e:
            c.chat(MSGS)
    assert len(server.requests) == 1
    msg = str(e.value)
    assert e.value.status == 401
    assert "\n" not in msg and KEY not in msg and KEY not in repr(e.value)
    assert "SECRET" not in msg
    assert "refused the API key (HTTP 401" in msg and "REPLAY_LLM_API_KEY" in msg


def test_other_4xx_fail_at_once():
    with llm_stub(lambda req: 400) as server, client(server) as c:
        with pytest.raises(LLMError, match=r"rejected the request for model 'stub-model' "
                                           r"\(HTTP 400: stub: HTTP 400\)"):
            c.chat(MSGS)
    with llm_stub(lambda req: 404) as server2, client(server2) as c:
        with pytest.raises(LLMError, match="ending in /v1"):
            c.chat(MSGS)
    assert len(server.requests) == 1 and len(server2.requests) == 1


def test_timeout_is_retried_then_fails():
    with llm_stub(lambda req: ("sleep", 3)) as server, \
            client(server, timeout=0.2, max_retries=2) as c:
        t0 = time.monotonic()
        with pytest.raises(LLMError) as e:
            c.chat(MSGS)
        assert time.monotonic() - t0 < 1.5
    assert len(server.requests) == 3
    assert "did not answer within 0.2 s" in str(e.value) and "after 3 attempts" in str(e.value)


def test_timeout_then_ok():
    with llm_stub([("sleep", 1), {"content": "ok"}]) as server, client(server, timeout=0.2) as c:
        assert c.chat(MSGS)["content"] == "ok"
    assert len(server.requests) == 2


def test_unreachable_server_is_retried_then_fails():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with ChatClient(f"http://127.0.0.1:{port}/v1", model="m", max_retries=1,
                    backoff_s=0.01) as c:
        with pytest.raises(LLMError, match=r"cannot reach the LLM at .*: ConnectError: "
                                           r".*\(after 2 attempts\)"):
            c.chat(MSGS)


def test_malformed_body_fails_at_once():
    with llm_stub(lambda req: '{"choices": [') as server, client(server) as c:
        with pytest.raises(LLMError, match="answered non-JSON"):
            c.chat(MSGS)
    assert len(server.requests) == 1


def test_bad_base_url_and_missing_model():
    with pytest.raises(LLMError, match="not an http"):
        ChatClient("127.0.0.1:8000/v1", model="m")
    with llm_stub([]) as server, ChatClient(server.base_url) as c:
        with pytest.raises(LLMError, match="REPLAY_LLM_MODEL"):
            c.chat(MSGS)
    assert server.requests == []


def test_async_client_retries_and_answers():
    async def run(base_url):
        async with AsyncChatClient(base_url, model="stub-model", max_retries=2,
                                   backoff_s=0.01, timeout=1.0) as c:
            reply = await c.chat(MSGS)
            weather = await aask_json(c, MSGS, Weather)
            return reply, weather

    with llm_stub([502, {"content": "ok"}, {"content": "nope"},
                   {"content": '{"city": "Paris", "temp_c": 18}'}]) as server:
        reply, weather = asyncio.run(run(server.base_url))
    assert reply["content"] == "ok" and weather == Weather(city="Paris", temp_c=18)
    assert len(server.requests) == 4
    assert "not valid JSON" in last_user(server.requests[3])


# --------------------------------------------------------------------------- ask_json


def test_ask_json_valid_reply_with_fences():
    content = 'Here you go:\n```json\n{"city": "Paris", "temp_c": 18}\n```'
    with llm_stub([{"content": content}]) as server, client(server) as c:
        assert ask_json(c, MSGS, Weather) == Weather(city="Paris", temp_c=18)
    rf = server.requests[0].json["response_format"]
    assert rf == {"type": "json_schema", "json_schema": {
        "name": "Weather", "schema": Weather.model_json_schema(), "strict": False}}


def test_ask_json_invalid_json_then_valid_quotes_the_error():
    bad = '{city: "Paris", temp_c: 18}'
    try:
        json.loads(bad)
    except json.JSONDecodeError as e:
        error = e.msg
    with llm_stub([{"content": bad}, {"content": '{"city": "Paris", "temp_c": 18}'}]
                  ) as server, client(server) as c:
        assert ask_json(c, MSGS, Weather).temp_c == 18
    first, second = server.requests
    sent = second.json["messages"]
    assert sent[: len(MSGS)] == MSGS
    assert sent[-2] == {"role": "assistant", "content": bad}
    assert "not valid JSON" in sent[-1]["content"] and error in sent[-1]["content"]
    assert first.json["messages"] == MSGS  # the caller's list was not changed


def test_ask_json_validation_error_is_quoted():
    with llm_stub([{"content": '{"city": "Paris", "temp_c": "warm"}'},
                   {"content": '{"city": "Paris", "temp_c": 18}'}]) as server, client(server) as c:
        ask_json(c, MSGS, Weather)
    quoted = last_user(server.requests[1])
    assert "does not match the schema: temp_c: Input should be a valid integer" in quoted


def test_ask_json_always_invalid_raises_with_the_raw():
    replies = ["not json", '{"city": 1}', "```json\n{\"temp_c\": 3}\n```"]
    with llm_stub([{"content": r} for r in replies]) as server, client(server) as c:
        with pytest.raises(InvalidReply) as e:
            ask_json(c, MSGS, Weather, retries=2)
    assert len(server.requests) == 3
    err = e.value
    assert err.raw == replies[-1]
    assert "city: Field required" in err.reason and "after 3 attempts" in err.reason
    assert [raw for _, raw in err.tries] == replies
    assert "\n" not in str(err) and isinstance(err, LLMError)
    again = pickle.loads(pickle.dumps(err))  # Prefect pickles task exceptions
    assert (again.reason, again.raw, str(again)) == (err.reason, err.raw, str(err))


def test_ask_json_empty_content_counts_as_invalid():
    with llm_stub([{"content": None}, {"content": '{"city": "Rome", "temp_c": 20}'}]
                  ) as server, client(server) as c:
        assert ask_json(c, MSGS, Weather).city == "Rome"
    assert "empty" in last_user(server.requests[1])


def test_ask_json_falls_back_when_json_schema_is_not_supported():
    def script(req):
        if req.get("response_format", {}).get("type") == "json_schema":
            return StubResponse(400, {"error": {"message": "response_format json_schema is "
                                                           "not supported"}})
        return {"content": '{"city": "Oslo", "temp_c": -3}'}

    with llm_stub(script) as server, client(server) as c:
        assert ask_json(c, MSGS, Weather).city == "Oslo"
    second = server.requests[1].json
    assert second["response_format"] == {"type": "json_object", "schema": Weather.model_json_schema()}
    assert '"temp_c"' in second["messages"][-1]["content"]  # the schema moved into the prompt


def test_ask_json_transport_errors_pass_through():
    with llm_stub(lambda req: 401) as server, client(server) as c:
        with pytest.raises(LLMError) as e:
            ask_json(c, MSGS, Weather)
    assert not isinstance(e.value, InvalidReply) and len(server.requests) == 1


def test_parse_json_text_and_count_sentences():
    assert parse_json_text('```\n{"a": 1}\n```') == {"a": 1}
    assert parse_json_text('Sure! {"a": [1, 2]} Hope it helps.') == {"a": [1, 2]}
    with pytest.raises(json.JSONDecodeError):
        parse_json_text("no json here")
    assert count_sentences("The agent checked the order. It had shipped.") == 2
    assert count_sentences("The agent called Dr. Who, e.g. Twice. It worked! Done?") == 3
    assert count_sentences("Version 2.5 was used. The user left") == 2
    assert count_sentences("") == 0


# --------------------------------------------------------------------------- LLMWriter


def transcript() -> Transcript:
    return Transcript(origin_id="session-42", project="shop", turns=[
        Turn(turn_index=0, trace_id="t0", user_message="Where is my order 1234??",
             assistant_message="Your order 1234 shipped yesterday and arrives Friday.",
             tool_calls=[ToolCall(id="c1", name="get_order", arguments={"order_id": "1234"},
                                  result='{"status": "shipped"}', status="ok")]),
        Turn(turn_index=1, trace_id="t1", user_message="ok thanks",
             assistant_message="You're welcome!"),
    ])


def notes(**over) -> dict:
    reply = {
        "intents": ["Order Status", "thanks"],
        "situation": "A customer wants to know where order 1234 is and when it will arrive.",
        "outcome": "The agent looked up order 1234 with get_order. It told the user the "
                   "order had shipped and would arrive on Friday. The user thanked it.",
        "persona": {"name": "Dana", "tone": "neutral", "verbosity": "low", "typos": "low",
                    "communication_style": "terse", "languages": ["en"]},
        "steps": ["intent:order_status", "tool:get_order", "intent:thanks", "outcome:resolved"],
        "branch_category": "resolved",
    }
    reply.update(over)
    return {"content": json.dumps(reply)}


def test_writer_describe_returns_conversation_notes():
    with llm_stub([notes()]) as server, client(server, model="judge-1") as c:
        result = LLMWriter(c).describe(transcript())
    assert isinstance(result, ConversationNotes)
    assert result.writer == "llm:judge-1"
    assert result.intents == ["order_status", "thanks"]
    assert result.persona.name == "Dana" and result.persona.persona_id is None
    assert result.steps[-1] == "outcome:resolved" and result.branch_category == "resolved"
    req = server.requests[0].json
    assert req["model"] == "judge-1"
    prompt = req["messages"][-1]["content"]
    for text in ("USER: Where is my order 1234??", "USER: ok thanks",
                 'TOOL CALL get_order({"order_id": "1234"}) -> ok: {"status": "shipped"}',
                 "ASSISTANT: Your order 1234 shipped yesterday", "exactly 2 short snake_case"):
        assert text in prompt
    schema = req["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["intents"]["minItems"] == 2
    assert schema["properties"]["intents"]["maxItems"] == 2
    assert "persona_id" not in json.dumps(schema)


def test_writer_wrong_intent_count_is_retried():
    with llm_stub([notes(intents=["order_status"]), notes()]) as server, client(server) as c:
        result = LLMWriter(c).describe(transcript())
    assert result.intents == ["order_status", "thanks"]
    assert "intents must have exactly 2 items, one per user turn in order; got 1" in \
        last_user(server.requests[1])


def test_writer_wrong_intent_count_every_time_is_an_invalid_reply():
    bad = notes(intents=["a", "b", "c"])
    with llm_stub(lambda req: bad) as server, client(server) as c:
        writer = LLMWriter(c, retries=1)
        with pytest.raises(InvalidReply) as e:
            writer.describe(transcript())
    assert len(server.requests) == 2
    failure = GenerationFailure(origin_id="session-42", writer=writer.name,
                                reason=e.value.reason, raw=e.value.raw)
    assert failure.writer == "llm:stub-model"
    assert "intents must have exactly 2 items" in failure.reason
    assert json.loads(failure.raw)["intents"] == ["a", "b", "c"]


def test_writer_counts_every_turn_and_reads_tool_errors():
    t = transcript()
    t.turns[0].tool_calls[0].status = "error"
    t.turns.append(Turn(turn_index=2, trace_id="t2", user_message=None,
                        assistant_message=None, status="error", error="agent crashed"))
    reply = notes(intents=["order_status", "thanks", "unknown"], branch_category="Failed",
                  steps=["intent:order_status", "Tool_Error: get_order", "intent:thanks",
                         "intent:unknown", "outcome:failed"])
    with llm_stub([reply]) as server, client(server) as c:
        result = LLMWriter(c).describe(t)
    assert result.branch_category == "failed"
    assert result.steps[1] == "tool_error:get_order" and len(result.intents) == 3
    prompt = last_user(server.requests[0])
    assert "TOOL CALL get_order" in prompt and "-> error:" in prompt
    assert "turn 3 (status error: agent crashed)" in prompt
    assert "USER: (no user message recorded)" in prompt


def test_writer_checks_outcome_situation_and_steps():
    with llm_stub([notes(outcome="The agent answered.", situation="too short",
                         steps=["intent:order_status", "tool:get_order"]), notes()]
                  ) as server, client(server) as c:
        LLMWriter(c).describe(transcript())
    quoted = last_user(server.requests[1])
    assert "outcome must be 2 to 4 sentences in the past tense, found 1" in quoted
    assert "situation: String should have at least 30 characters" in quoted
    assert "the last step must be 'outcome:<category>'" in quoted


def test_writer_async():
    async def run(base_url):
        async with AsyncChatClient(base_url, model="m2", backoff_s=0.01) as c:
            return await LLMWriter(c).adescribe(transcript())

    with llm_stub([notes()]) as server:
        assert asyncio.run(run(server.base_url)).writer == "llm:m2"


# --------------------------------------------------------------------------- settings, stub


def test_make_llm_client_from_settings(settings):
    assert make_llm_client(settings) is None  # no REPLAY_LLM_BASE_URL: offline
    assert make_llm_client(SimpleNamespace(llm_base_url=None)) is None
    s = SimpleNamespace(llm_base_url="http://127.0.0.1:9/v1/", llm_model="m",
                        llm_api_key=SecretStr(KEY), llm_timeout_s=5, llm_max_retries=1)
    with make_llm_client(s) as c:
        assert isinstance(c, ChatClient)
        assert (c.base_url, c.model, c.timeout, c.max_retries) == (
            "http://127.0.0.1:9/v1", "m", 5.0, 1)
        assert KEY not in repr(c)
    ac = make_llm_client(s, asynchronous=True)
    assert isinstance(ac, AsyncChatClient)
    asyncio.run(ac.aclose())
    with pytest.raises(LLMError, match="REPLAY_LLM_MODEL is not"):
        make_llm_client(SimpleNamespace(llm_base_url="http://x/v1", llm_model=None))


def test_stub_serves_models_and_shuts_down_cleanly():
    before = threading.active_count()
    with llm_stub([("sleep", 30)]) as server:
        assert httpx.get(f"{server.base_url}/models").json()["data"][0]["id"] == "stub-model"
        assert httpx.post(f"{server.url}/nope", json={}).status_code == 404
        # a request held by the stub must not hold up the shutdown
        threading.Thread(target=lambda: pytest.raises(
            httpx.HTTPError, httpx.post, f"{server.base_url}/chat/completions",
            json={"model": "m", "messages": []}, timeout=10), daemon=True).start()
        deadline = time.monotonic() + 2
        while len(server.chat_requests) < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        t0 = time.monotonic()
    assert time.monotonic() - t0 < 1.0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.base_url}/models", timeout=1)
    time.sleep(0.05)
    assert threading.active_count() <= before
    assert server.errors == []
