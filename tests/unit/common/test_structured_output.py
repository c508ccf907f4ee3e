"""Structured output across servers: json_schema -> json_object + schema -> schema in the prompt,
remembered per endpoint; a validation 500 is not retried as transient (tests/llm_stub.py)."""

from __future__ import annotations

import httpx
import pytest
from llm_stub import StubResponse, llm_stub
from pydantic import BaseModel, Field

from tasks.common.llm import ChatClient, LLMError, ask_json, endpoint_format, forget_formats
from tasks.common.retry import TransientResponse, raise_for_transient, request_was_invalid

pytestmark = pytest.mark.timeout(20)
MSGS = [{"role": "user", "content": "Weather in Oslo?"}]
GOOD = {"content": '{"city": "Oslo", "temp_c": -3}'}
# what llama-cpp-python's server answers to response_format json_schema (HTTP 500)
LLAMA_500 = StubResponse(500, {"error": {"message": "1 validation error:\n  {'type': 'literal_error', 'loc': "
                                                    "('body', 'response_format', 'type'), 'msg': \"Input should be "
                                                    "'text' or 'json_object'\", 'input': 'json_schema'}"}})


class Weather(BaseModel):
    city: str
    temp_c: int


@pytest.fixture(autouse=True)
def _fresh_formats():
    forget_formats()
    yield
    forget_formats()


def client(server) -> ChatClient:
    return ChatClient(server.base_url, model="m", max_retries=3, backoff_s=0.01, timeout=2.0)


def kind(req) -> str | None:
    return (req.json.get("response_format") or {}).get("type")


def test_a_validation_500_falls_back_to_json_object_once_and_is_remembered():
    def script(req):
        return LLAMA_500 if (req.get("response_format") or {}).get("type") == "json_schema" else GOOD

    with llm_stub(script) as server, client(server) as c:
        assert ask_json(c, MSGS, Weather).city == "Oslo"
        assert [kind(r) for r in server.requests] == ["json_schema", "json_object"]  # the 500 not retried
        assert endpoint_format((c.base_url, "m")) == "json_object"
        assert ask_json(c, MSGS, Weather).temp_c == -3  # the next ask starts where it worked
    assert [kind(r) for r in server.requests] == ["json_schema", "json_object", "json_object"]
    sent = server.requests[2].json
    assert sent["response_format"]["schema"] == Weather.model_json_schema()
    assert '"temp_c"' in sent["messages"][-1]["content"]


def test_no_response_format_at_all_ends_with_the_schema_in_the_prompt_and_a_repair():
    def script(req):
        if req.get("response_format"):
            return StubResponse(422, {"detail": "response_format is not supported"})
        return GOOD if len(req["messages"]) > 2 else {"content": "Oslo is cold."}  # repaired on the retry

    with llm_stub(script) as server, client(server) as c:
        assert ask_json(c, MSGS, Weather, retries=1).city == "Oslo"
        assert endpoint_format((c.base_url, "m")) == "prompt"
    assert [kind(r) for r in server.requests] == ["json_schema", "json_object", None, None]
    assert "not valid JSON" in server.requests[3].json["messages"][-1]["content"]


def test_each_endpoint_is_remembered_apart():
    with llm_stub(lambda req: LLAMA_500 if (req.get("response_format") or {}).get("type") == "json_schema"
                  else GOOD) as a, llm_stub(lambda req: GOOD) as b, client(a) as ca, client(b) as cb:
        ask_json(ca, MSGS, Weather)
        ask_json(cb, MSGS, Weather)
        assert endpoint_format((ca.base_url, "m")) == "json_object"
        assert endpoint_format((cb.base_url, "m")) == "json_schema"
        assert endpoint_format((ca.base_url, "other-model")) == "json_schema"


def test_a_500_that_does_not_blame_the_format_is_not_a_fallback():
    with llm_stub(lambda req: StubResponse(500, {"error": {"message": "1 validation error: messages.0.role"}})
                  ) as server, client(server) as c:
        with pytest.raises(LLMError) as e:
            ask_json(c, MSGS, Weather)
    assert e.value.status == 500 and len(server.requests) == 1  # neither retried nor downgraded


def test_a_plain_500_is_still_transient_and_a_validation_500_is_not():
    with pytest.raises(TransientResponse):
        raise_for_transient(httpx.Response(500, json={"error": {"message": "CUDA out of memory"}}))
    with pytest.raises(TransientResponse):
        raise_for_transient(httpx.Response(503))
    invalid = httpx.Response(500, json={"error": {"message": "1 validation error: body.response_format"}})
    assert raise_for_transient(invalid) is invalid and request_was_invalid(invalid)
    assert not request_was_invalid(httpx.Response(500, text="upstream timed out"))
    with llm_stub([500, GOOD]) as server, client(server) as c:  # a real outage: retried
        assert ask_json(c, MSGS, Weather).city == "Oslo"
    assert len(server.requests) == 2


def test_the_sent_schema_requires_every_property_and_drops_what_a_grammar_cannot_take():
    from pydantic import Field

    from tasks.common.llm import server_schema

    class Reply(BaseModel):  # defaults make fields optional in pydantic's schema
        message: str = Field("", max_length=4000, json_schema_extra={"minLength": 1}, pattern=r"\S")
        end: bool = False
        inner: Weather | None = None

    sent = server_schema(Reply.model_json_schema())
    assert sent["required"] == ["message", "end", "inner"]  # else a constrained model writes {}
    assert sent["$defs"]["Weather"]["required"] == ["city", "temp_c"]
    assert sent["properties"]["message"] == {"default": "", "minLength": 1, "title": "Message", "type": "string"}


def test_a_repair_shows_only_the_latest_bad_reply():
    bad = iter(["not json 1", "not json 2"])
    with llm_stub(lambda req: {"content": next(bad)} if len(server.requests) <= 2 else GOOD) as server, \
            client(server) as c:
        assert ask_json(c, MSGS, Weather, retries=2).city == "Oslo"
    last = server.requests[-1].json["messages"]
    assert len(server.requests) == 3 and len(last) == len(MSGS) + 2
    assert last[-2] == {"role": "assistant", "content": "not json 2"}
    assert "not valid JSON" in last[-1]["content"]


class Said(BaseModel):
    message: str = Field(description="your next message to the agent, written in character")


def test_a_reply_that_copies_a_fields_description_is_repaired():
    copied = {"content": '{"message": "Your next message to the agent, written in character."}'}
    with llm_stub(lambda req: copied if len(server.requests) == 1 else {"content": '{"message": "hi"}'}) as server, \
            client(server) as c:
        assert ask_json(c, MSGS, Said, retries=1).message == "hi"
    assert "copies a field's description" in server.requests[-1].json["messages"][-1]["content"]
