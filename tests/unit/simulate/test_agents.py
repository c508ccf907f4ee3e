"""tasks/agents.py: loading the agent under test, normalising its replies, the HTTP agent's
tool loop against a real loopback stub, and call_with_retries' timeouts and retries."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import sys
import textwrap
import time
import uuid
from types import SimpleNamespace

import httpx
import pytest
from llm_stub import llm_stub

from models.scenario import AgentDefinition
from models.simulate import AgentInput, AgentResponse, RunOptions
from tasks.common.llm import InvalidReply, LLMError
from tasks.simulate.agents import (
    LIVE_TOOL_ERROR,
    MAX_TOOL_ROUNDS,
    AgentHTTPError,
    AgentLoadError,
    AgentReplyError,
    AgentTimeout,
    AgentToolLoopError,
    AgentUnavailable,
    call_with_retries,
    is_transient,
    load_agent,
    normalize_response,
    retry_delay,
    token_usage,
)

pytestmark = pytest.mark.timeout(10)

OPTS = RunOptions(turn_timeout_s=5, concurrency=4)
SETTINGS = SimpleNamespace(agent_api_key="sk-agent-secret-123")
TOOLS = [{"type": "function", "function": {
    "name": "lookup_order", "description": "Find an order",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}}}}]
AGENT_DEF = AgentDefinition(agent_name="support", version=1, system_prompt="You are Support.",
                            tools=TOOLS, model="agent-model")


def make_input(tools=None, **kw) -> AgentInput:
    base = dict(thread_id="chat-1",
                messages=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
                new_message={"role": "user", "content": "where is my order A1?"}, turn_index=1,
                metadata={"origin_id": "s1", "scenario_id": "sc1", "row_index": 0,
                          "persona": {"name": "Ann"}, "situation": "waiting", "expected_outcome": "found"},
                tools=tools)
    base.update(kw)
    return AgentInput(**base)


class FakeTools:
    """Recorded tools stand-in: answers by name, records every call."""

    def __init__(self, results):
        self.results = results
        self.calls = []

    async def call(self, name, arguments=None):
        self.calls.append((name, arguments))
        return self.results[name]


async def respond(agent, inp):
    try:
        return await agent.respond(inp)
    finally:
        await agent.aclose()


async def retried(agent, inp, **kw):
    kw.setdefault("timeout_s", 5)
    kw.setdefault("retries", 2)
    kw.setdefault("backoff_s", 0.01)
    try:
        return await call_with_retries(agent, inp, **kw)
    finally:
        await agent.aclose()


# --------------------------------------------------------------------------- Python agents


@pytest.fixture
def agent_module(tmp_path, monkeypatch):
    """agent_module(source) -> a unique module name importable from the cwd (tmp_path)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    names = []

    def write(source: str, name: str | None = None) -> str:
        name = name or f"agent_{uuid.uuid4().hex[:10]}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        names.append(name)
        return name

    yield write
    for n in names:
        sys.modules.pop(n, None)


def load(ref):
    return load_agent(ref, None, OPTS, SETTINGS)


def test_sync_agent_returning_str(agent_module):
    mod = agent_module("""
        def agent(input):
            return "you said " + input.new_message["content"]
    """)
    agent = load(f"{mod}:agent")
    assert agent.kind == "python"
    resp = asyncio.run(respond(agent, make_input()))
    assert resp == AgentResponse(content="you said where is my order A1?")


def test_async_agent_returning_agent_response(agent_module):
    mod = agent_module("""
        from models.simulate import AgentResponse

        async def agent(input):
            return AgentResponse(content="ok", tool_calls=[{"id": "c1", "name": "t", "arguments": {"a": 1}}],
                                 metadata={"usage": {"input_tokens": 7, "output_tokens": 3}})
    """)
    resp = asyncio.run(respond(load(f"{mod}:agent"), make_input()))
    assert resp.content == "ok"
    assert resp.tool_calls == [{"id": "c1", "name": "t", "arguments": {"a": 1}}]
    assert token_usage(resp.metadata) == (7, 3)


def test_sync_agent_returning_dict(agent_module):
    mod = agent_module("""
        def agent(input):
            return {"content": "from a dict", "tool_responses": [{"id": "c1", "name": "t", "result": "r"}],
                    "metadata": {"prompt_tokens": 11, "completion_tokens": 2}}
    """)
    resp = asyncio.run(respond(load(f"{mod}:agent"), make_input()))
    assert resp.content == "from a dict"
    assert resp.tool_responses == [{"id": "c1", "name": "t", "result": "r"}]
    assert resp.metadata["usage"] == {"input_tokens": 11, "output_tokens": 2}


def test_agent_returning_sdk_like_object(agent_module):
    """Future AGI's SDK AgentResponse is another class with the same attributes; OpenAI-form
    tool calls (function with JSON text arguments) are normalised."""
    mod = agent_module("""
        class SdkResponse:
            def __init__(self, content, tool_calls=None, tool_responses=None, metadata=None):
                self.content = content
                self.tool_calls = tool_calls or []
                self.tool_responses = tool_responses or []
                self.metadata = metadata or {}

        async def agent(input):
            call = {"id": "c9", "type": "function",
                    "function": {"name": "lookup_order", "arguments": '{"order_id": "A1"}'}}
            return SdkResponse("found it", [call], [{"id": "c9", "name": "lookup_order", "result": "shipped"}],
                               {"input_tokens": 5, "output_tokens": 6})
    """)
    resp = asyncio.run(respond(load(f"{mod}:agent"), make_input()))
    assert isinstance(resp, AgentResponse)
    assert resp.content == "found it"
    assert resp.tool_calls == [{"id": "c9", "name": "lookup_order", "arguments": {"order_id": "A1"}}]
    assert resp.tool_responses[0]["result"] == "shipped"
    assert resp.metadata["usage"] == {"input_tokens": 5, "output_tokens": 6}


def test_future_agi_style_callback(agent_module):
    mod = agent_module("""
        from models.simulate import AgentResponse

        async def agent_callback(input):
            history = " / ".join(m["content"] for m in input.messages)
            meta = input.metadata
            text = (f"{input.thread_id}|{input.turn_index}|{history}|{input.new_message['content']}|"
                    f"{meta['scenario_id']}|{meta['persona']['name']}")
            return AgentResponse(content=text)
    """)
    resp = asyncio.run(respond(load(f"{mod}:agent_callback"), make_input()))
    assert resp.content == "chat-1|1|hi / hello|where is my order A1?|sc1|Ann"


def test_python_agent_uses_recorded_tools(agent_module):
    mod = agent_module("""
        async def agent(input):
            result = await input.tools.call("lookup_order", {"order_id": "A1"})
            return f"status: {result['status']}"
    """)
    tools = FakeTools({"lookup_order": {"status": "shipped"}})
    resp = asyncio.run(respond(load(f"{mod}:agent"), make_input(tools=tools)))
    assert resp.content == "status: shipped"
    assert tools.calls == [("lookup_order", {"order_id": "A1"})]


def test_file_path_ref_and_attribute_path(agent_module, tmp_path):
    (tmp_path / "bots").mkdir()
    (tmp_path / "bots" / "support_bot.py").write_text(textwrap.dedent("""
        class Bot:
            def reply(self, input):
                return "bot: " + input.new_message["content"]

        bot = Bot()
    """))
    resp = asyncio.run(respond(load("bots/support_bot.py:bot.reply"), make_input()))
    assert resp.content == "bot: where is my order A1?"


def test_sync_agent_does_not_block_the_loop(agent_module):
    mod = agent_module("""
        import time

        def agent(input):
            time.sleep(0.3)
            return "slept"
    """)
    agent = load(f"{mod}:agent")
    ticks = []

    async def ticker():
        for _ in range(5):
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.03)

    async def main():
        try:
            return await asyncio.gather(*(agent.respond(make_input()) for _ in range(4)), ticker())
        finally:
            await agent.aclose()

    t0 = time.perf_counter()
    out = asyncio.run(main())
    elapsed = time.perf_counter() - t0
    assert [r.content for r in out[:4]] == ["slept"] * 4
    assert elapsed < 0.6  # four 0.3 s sleeps side by side
    assert len(ticks) == 5 and ticks[-1] - ticks[0] < 0.25  # the loop kept ticking meanwhile


@pytest.mark.parametrize("metadata, expected", [
    ({"usage": {"input_tokens": 3, "output_tokens": 4}}, (3, 4)),
    ({"usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}, (3, 4)),
    ({"input_tokens": 3, "output_tokens": 4}, (3, 4)),
    ({"prompt_tokens": 3, "completion_tokens": 4}, (3, 4)),
    ({"usage": SimpleNamespace(prompt_tokens=3, completion_tokens=4)}, (3, 4)),
    ({"output_tokens": 9}, (0, 9)),
    ({"model": "x"}, None),
    ({}, None),
])
def test_token_usage(metadata, expected):
    assert token_usage(metadata) == expected
    resp = normalize_response({"content": "x", "metadata": metadata})
    if expected is None:
        assert "usage" not in resp.metadata
    else:
        assert resp.metadata["usage"] == {"input_tokens": expected[0], "output_tokens": expected[1]}


@pytest.mark.parametrize("value, reason", [
    (None, "returned None"),
    (42, "returned int"),
    ({"answer": "x"}, "without any of content"),
    ({"content": "x", "metadata": "nope"}, "malformed response"),
])
def test_bad_return_values(value, reason):
    with pytest.raises(AgentReplyError, match=reason):
        normalize_response(value)
    assert not is_transient(AgentReplyError("x"))


@pytest.mark.parametrize("source, ref, expected", [
    (None, "no_such_agent_module_xyz:agent",
     "cannot import module no_such_agent_module_xyz: No module named 'no_such_agent_module_xyz'; "
     "is it on PYTHONPATH?"),
    ("def agent(input):\n    return 'x'\n", "{mod}:nope", "{mod} has no attribute nope; it has agent"),
    ("agent = 42\n", "{mod}:agent", "{mod}.agent is not callable (it is a int)"),
    ("class Agent:\n    pass\n", "{mod}:Agent", "{mod}.Agent is a class"),
    ("import not_installed_dep_xyz\n", "{mod}:agent",
     "cannot import module {mod}: it failed with ModuleNotFoundError"),
    ("def agent(input:\n", "{mod}:agent", "cannot import module {mod}: it failed with SyntaxError"),
    (None, "just_a_name", "is not module:function"),
    (None, "missing/dir/bot.py:agent", "cannot import missing/dir/bot.py: no such file"),
])
def test_bad_refs(agent_module, source, ref, expected):
    mod = agent_module(source) if source is not None else "unused"
    with pytest.raises(AgentLoadError) as e:
        load(ref.format(mod=mod))
    msg = str(e.value)
    assert "\n" not in msg
    assert expected.format(mod=mod) in msg


def test_python_agent_error_raised_at_once_and_transient_one_retried(agent_module):
    mod = agent_module("""
        CALLS = {"n": 0}

        def broken(input):
            CALLS["n"] += 1
            raise ValueError("bad state")

        def flaky(input):
            CALLS["n"] += 1
            if CALLS["n"] == 1:
                raise ConnectionResetError("peer reset")
            return "recovered"
    """)
    with pytest.raises(ValueError, match="bad state"):
        asyncio.run(retried(load(f"{mod}:broken"), make_input(), retries=3))
    calls = sys.modules[mod].CALLS
    assert calls["n"] == 1
    calls["n"] = 0
    resp, attempts = asyncio.run(retried(load(f"{mod}:flaky"), make_input(), retries=3))
    assert (resp.content, attempts, calls["n"]) == ("recovered", 2, 2)


def test_python_agent_timeout_retried_then_raised(agent_module):
    mod = agent_module("""
        import asyncio
        CALLS = []

        async def slow(input):
            CALLS.append(1)
            await asyncio.sleep(5)
    """)
    t0 = time.perf_counter()
    with pytest.raises(AgentTimeout) as e:
        asyncio.run(retried(load(f"{mod}:slow"), make_input(), timeout_s=0.1, retries=2))
    assert time.perf_counter() - t0 < 1.5
    assert isinstance(e.value, TimeoutError)
    assert e.value.attempts == 3 and len(sys.modules[mod].CALLS) == 3
    assert "did not answer within 0.1 s (after 3 attempts)" in str(e.value)


# --------------------------------------------------------------------------- HTTP agents


def reply(content=None, tool_calls=None, usage=(10, 2)):
    msg = {"content": content, "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                                         "total_tokens": sum(usage)}}
    if tool_calls:
        msg["tool_calls"] = tool_calls
    return msg


def call(cid, name, args):
    return {"id": cid, "name": name, "arguments": args}


def test_http_plain_answer_sends_prompt_tools_and_history():
    with llm_stub([reply("Your order A1 shipped.")]) as stub:
        agent = load_agent(stub.base_url, AGENT_DEF, OPTS, SETTINGS)
        assert agent.kind == "http"
        resp = asyncio.run(respond(agent, make_input(tools=FakeTools({}))))
    assert resp.content == "Your order A1 shipped."
    assert resp.tool_calls == [] and resp.tool_responses == []
    assert resp.metadata["usage"] == {"input_tokens": 10, "output_tokens": 2}
    assert resp.metadata["rounds"] == 1
    [req] = stub.chat_requests
    body = req.json
    assert body["model"] == "agent-model"
    assert body["tools"] == TOOLS
    assert body["messages"] == [
        {"role": "system", "content": "You are Support."},
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "where is my order A1?"}]
    assert req.headers["authorization"] == "Bearer sk-agent-secret-123"


def test_http_system_prompt_and_model_override():
    opts = OPTS.model_copy(update={"system_prompt": "You are Support v2.", "model": "other-model"})
    bare = AgentDefinition(agent_name="bare", version=1, model="bare-model")  # no prompt, no tools
    with llm_stub([reply("a"), reply("b")]) as stub:
        asyncio.run(respond(load_agent(stub.base_url, AGENT_DEF, opts, SETTINGS), make_input()))
        asyncio.run(respond(load_agent(stub.base_url + "/chat/completions", bare, OPTS, SETTINGS),
                            make_input(messages=[])))
    first, second = (r.json for r in stub.chat_requests)
    assert first["model"] == "other-model"
    assert first["messages"][0] == {"role": "system", "content": "You are Support v2."}
    assert second["model"] == "bare-model"
    assert second["messages"] == [{"role": "user", "content": "where is my order A1?"}]
    assert "tools" not in second


def test_http_needs_a_model():
    with pytest.raises(AgentLoadError, match="needs a model name"):
        load_agent("http://127.0.0.1:9/v1", AgentDefinition(agent_name="a", version=1), OPTS, SETTINGS)


def test_http_tool_loop_two_rounds():
    script = [
        reply("Let me check.", [call("c1", "lookup_order", {"order_id": "A1"}),
                                call("c2", "get_customer", {"email": "ann@x.io"})], usage=(20, 5)),
        reply(None, [call("c3", "track_parcel", {"parcel": "P9"})], usage=(30, 4)),
        reply("A1 is out for delivery.", usage=(40, 6)),
    ]
    tools = FakeTools({"lookup_order": {"status": "shipped", "parcel": "P9"},
                       "get_customer": "Ann", "track_parcel": {"eta": "today"}})
    with llm_stub(script) as stub:
        resp = asyncio.run(respond(load_agent(stub.base_url, AGENT_DEF, OPTS, SETTINGS),
                                   make_input(tools=tools)))
    assert tools.calls == [("lookup_order", {"order_id": "A1"}), ("get_customer", {"email": "ann@x.io"}),
                           ("track_parcel", {"parcel": "P9"})]
    assert resp.content == "A1 is out for delivery."
    assert resp.tool_calls == [{"id": "c1", "name": "lookup_order", "arguments": {"order_id": "A1"}},
                               {"id": "c2", "name": "get_customer", "arguments": {"email": "ann@x.io"}},
                               {"id": "c3", "name": "track_parcel", "arguments": {"parcel": "P9"}}]
    assert resp.tool_responses == [
        {"id": "c1", "name": "lookup_order", "result": {"status": "shipped", "parcel": "P9"}},
        {"id": "c2", "name": "get_customer", "result": "Ann"},
        {"id": "c3", "name": "track_parcel", "result": {"eta": "today"}}]
    assert resp.metadata["usage"] == {"input_tokens": 90, "output_tokens": 15}
    assert resp.metadata["rounds"] == 3
    reqs = [r.json for r in stub.chat_requests]
    assert len(reqs) == 3 and not stub.errors
    second = reqs[1]["messages"]
    assert second[:4] == reqs[0]["messages"]
    assistant, tool1, tool2 = second[4:]
    assert assistant["role"] == "assistant" and assistant["content"] == "Let me check."
    assert [c["id"] for c in assistant["tool_calls"]] == ["c1", "c2"]
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {"order_id": "A1"}
    assert tool1 == {"role": "tool", "tool_call_id": "c1",
                     "content": json.dumps({"status": "shipped", "parcel": "P9"}, separators=(",", ":"))}
    assert tool2 == {"role": "tool", "tool_call_id": "c2", "content": "Ann"}
    third = reqs[2]["messages"]
    assert third[-1] == {"role": "tool", "tool_call_id": "c3", "content": '{"eta":"today"}'}
    assert all(r["tools"] == TOOLS for r in reqs)


def test_http_tool_loop_with_recorded_tools_keeps_call_ids():
    from models.scenario import ToolCall, Turn
    from tasks.simulate.recorded_tools import RecordedTools

    tools = RecordedTools([Turn(turn_index=0, trace_id="t0"), Turn(
        turn_index=1, trace_id="t1", tool_calls=[ToolCall(
            id="prod-1", name="lookup_order", arguments={"order_id": "A1"}, result="shipped")])])
    tools.set_turn(1)
    with llm_stub([reply(None, [call("c7", "lookup_order", {"order_id": "A1"})]),
                   reply("It shipped.")]) as stub:
        resp = asyncio.run(respond(load_agent(stub.base_url, AGENT_DEF, OPTS, SETTINGS),
                                   make_input(tools=tools)))
    assert resp.content == "It shipped."
    assert resp.tool_responses == [{"id": "c7", "name": "lookup_order", "result": "shipped"}]
    [logged] = tools.calls_for_turn(1)
    assert (logged.id, logged.name, logged.result, logged.source) == ("c7", "lookup_order", "shipped", "recorded")


def test_http_live_tools_answered_with_an_error():
    with llm_stub([reply(None, [call("c1", "lookup_order", {"order_id": "A1"})]),
                   reply("I cannot look that up.")]) as stub:
        resp = asyncio.run(respond(load_agent(stub.base_url, AGENT_DEF, OPTS, SETTINGS),
                                   make_input(tools=None)))
    err = {"error": LIVE_TOOL_ERROR.format(name="lookup_order")}
    assert err["error"] == "tool lookup_order cannot run: live tools need a Python agent"
    assert resp.tool_responses == [{"id": "c1", "name": "lookup_order", "result": err}]
    assert json.loads(stub.chat_requests[1].json["messages"][-1]["content"]) == err


def test_http_500_then_ok_is_retried():
    with llm_stub([500, reply("ok")]) as stub:
        resp, attempts = asyncio.run(retried(load_agent(stub.base_url, AGENT_DEF, OPTS, SETTINGS),
                                             make_input()))
    assert (resp.content, attempts, len(stub.chat_requests)) == ("ok", 2, 2)


def test_http_429_honours_retry_after():
    with llm_stub([(429, {"Retry-After": "1"}), reply("ok")]) as stub:
        t0 = time.perf_counter()
        resp, attempts = asyncio.run(retried(load_agent(stub.base_url, AGENT_DEF, OPTS, SETTINGS),
                                             make_input()))
        waited = stub.chat_requests[1].received_at - stub.chat_requests[0].received_at
    assert (resp.content, attempts) == ("ok", 2)
    assert 0.9 <= waited < 1.8 and time.perf_counter() - t0 < 1.9


def test_http_500s_exhaust_retries():
    with llm_stub([503, 503, 503]) as stub:
        with pytest.raises(AgentHTTPError) as e:
            asyncio.run(retried(load_agent(stub.base_url, AGENT_DEF, OPTS, SETTINGS), make_input()))
    assert e.value.status == 503 and e.value.attempts == 3
    assert "answered HTTP 503" in str(e.value) and "(after 3 attempts)" in str(e.value)


def test_http_timeout_retried_then_raised():
    with llm_stub(lambda req: ("sleep", 3)) as stub:
        t0 = time.perf_counter()
        with pytest.raises(AgentTimeout) as e:
            asyncio.run(retried(load_agent(stub.base_url, AGENT_DEF, OPTS, SETTINGS), make_input(),
                                timeout_s=0.2, retries=1))
        elapsed = time.perf_counter() - t0
        n = len(stub.chat_requests)
    assert n == 2 and e.value.attempts == 2 and isinstance(e.value, TimeoutError)
    assert elapsed < 1.0


@pytest.mark.parametrize("answer, reason", [
    ("this is not json {", "answered non-JSON"),
    ({"choices": []}, "without choices[0].message"),
    ({"id": "x", "choices": [{"index": 0}]}, "without choices[0].message"),
    (reply(None, [{"id": "c1", "type": "function",
                   "function": {"name": "lookup_order", "arguments": "{order_id: A1"}}]),
     "called tool lookup_order with arguments that are not JSON"),
])
def test_http_malformed_reply_not_retried(answer, reason):
    with llm_stub(lambda req: answer) as stub:
        with pytest.raises(AgentReplyError, match=re.escape(reason)) as e:
            asyncio.run(retried(load_agent(stub.base_url, AGENT_DEF, OPTS, SETTINGS),
                                make_input(tools=FakeTools({})), retries=3))
        assert len(stub.chat_requests) == 1
    assert not is_transient(e.value)


def test_http_eight_rounds_of_tool_calls_fail():
    tools = FakeTools({"lookup_order": "again"})
    with llm_stub(lambda req: reply(None, [call("c", "lookup_order", {"order_id": "A1"})])) as stub:
        with pytest.raises(AgentToolLoopError) as e:
            asyncio.run(retried(load_agent(stub.base_url, AGENT_DEF, OPTS, SETTINGS),
                                make_input(tools=tools), retries=3))
        assert len(stub.chat_requests) == MAX_TOOL_ROUNDS == 8
    assert "still asked for tools (lookup_order) after 8 rounds" in str(e.value)
    assert len(tools.calls) == 7 and e.value.attempts == 1


def test_http_client_errors_not_retried_and_key_never_shown():
    with llm_stub([401, 400]) as stub:
        with pytest.raises(AgentHTTPError) as e401:
            asyncio.run(retried(load_agent(stub.base_url, AGENT_DEF, OPTS, SETTINGS), make_input()))
        with pytest.raises(AgentHTTPError) as e400:
            asyncio.run(retried(load_agent(stub.base_url, AGENT_DEF, OPTS, SETTINGS), make_input()))
        assert len(stub.chat_requests) == 2
    assert e401.value.status == 401 and "API key" in str(e401.value)
    assert e400.value.status == 400 and e400.value.attempts == 1
    assert "sk-agent-secret-123" not in str(e401.value) + str(e400.value)


def test_http_unreachable_is_transient():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    agent = load_agent(f"http://127.0.0.1:{port}/v1", AGENT_DEF, OPTS, SETTINGS)
    seen = []
    with pytest.raises(AgentUnavailable, match="cannot reach the agent") as e:
        asyncio.run(retried(agent, make_input(), retries=1,
                            on_retry=lambda attempt, exc, delay: seen.append((attempt, type(exc)))))
    assert e.value.attempts == 2 and seen == [(1, AgentUnavailable)]


# --------------------------------------------------------------------------- classification


def _status_error(status, headers=None):
    req = httpx.Request("POST", "http://x/v1/chat/completions")
    return httpx.HTTPStatusError("x", request=req, response=httpx.Response(status, headers=headers, request=req))


@pytest.mark.parametrize("exc, transient", [
    (asyncio.TimeoutError(), True),
    (TimeoutError(), True),
    (httpx.ConnectError("refused"), True),
    (httpx.ReadTimeout("slow"), True),
    (httpx.ConnectTimeout("slow"), True),
    (httpx.RemoteProtocolError("dropped"), True),
    (httpx.UnsupportedProtocol("ftp"), False),
    (_status_error(503), True),
    (_status_error(429), True),
    (_status_error(404), False),
    (LLMError("x", status=429), True),
    (LLMError("x", status=502), True),
    (LLMError("x", status=400), False),
    (LLMError("x"), False),
    (InvalidReply("bad json", "raw"), False),
    (AgentHTTPError("x", status=500), True),
    (AgentHTTPError("x", status=422), False),
    (AgentReplyError("x"), False),
    (AgentLoadError("x"), False),
    (ConnectionResetError(), True),
    (ValueError("x"), False),
    (type("RateLimitError", (Exception,), {})(), True),  # an SDK's, by name
    (type("APIStatusError", (Exception,), {"status_code": 503})(), True),
    (type("APIStatusError", (Exception,), {"status_code": 400})(), False),
])
def test_is_transient(exc, transient):
    assert is_transient(exc) is transient


def test_retry_delay():
    import random

    random.seed(7)
    err = ValueError("x")
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (10, 8.0)]:
        delays = [retry_delay(err, attempt) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # full jitter spans the range
    assert retry_delay(AgentHTTPError("x", status=429, retry_after=2.5), 1) == 2.5
    assert retry_delay(AgentHTTPError("x", status=429, retry_after=600), 1) == 30.0  # capped
    assert retry_delay(_status_error(429, {"retry-after-ms": "1500"}), 3) == 1.5
    assert retry_delay(AgentHTTPError("x", status=503), 1, backoff_s=0.01) <= 0.01
