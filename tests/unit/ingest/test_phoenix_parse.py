"""Phoenix REST -> RawSpan conversion and the paging loop, on responses captured from a
real Phoenix 20.26.1 (tests/cases/phoenix/); no server (httpx.MockTransport for the loop)."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from models.spans import RawEvent, RawSpan
from tasks.ingest.sources import phoenix as phx
from tasks.ingest.sources.phoenix import (
    PhoenixError,
    flatten_attributes,
    iso_to_ns,
    iter_phoenix_pages,
    make_phoenix_client,
    parse_phoenix_page,
    phoenix_span_to_raw,
    restore_json_string_attributes,
)

CASES = Path(__file__).resolve().parents[2] / "cases" / "phoenix"
BASE = "http://phoenix.test:6006"


def load(name: str) -> dict[str, Any]:
    return json.loads((CASES / name).read_text())


def parse(name: str, project: str = "e2e-proj", cursor: str | None = None) -> phx.PhoenixPage:
    return parse_phoenix_page(load(name), base_url=BASE, project=project, cursor=cursor)


def by_kind(page: phx.PhoenixPage, kind: str) -> list[RawSpan]:
    return [s for s in page.spans if s["attributes"].get("openinference.span.kind") == kind]


# --------------------------------------------------------------------------- shape


def test_every_span_is_a_complete_rawspan():
    for name in ("page_first.json", "page_second.json", "page_last.json",
                 "page_error_turn.json", "page_variety.json"):
        page = parse(name)
        assert page.rejects == []
        assert len(page.spans) == len(load(name)["data"])
        for span in page.spans:
            assert set(span) == set(RawSpan.__annotations__)
            assert len(span["trace_id"]) == 32 and span["trace_id"] == span["trace_id"].lower()
            assert len(span["span_id"]) == 16 and span["span_id"] == span["span_id"].lower()
            assert isinstance(span["start_ns"], int) and isinstance(span["end_ns"], int)
            assert span["end_ns"] >= span["start_ns"]
            assert span["status_code"] in ("ok", "error", "unset")
            assert span["otel_kind"] == "UNSPECIFIED"
            assert span["scope"] == {}
            for key, value in span["attributes"].items():
                assert isinstance(key, str)
                assert not isinstance(value, dict), key
                assert not (isinstance(value, list) and any(isinstance(v, dict) for v in value))
            for ev in span["events"]:
                assert set(ev) == set(RawEvent.__annotations__)


def test_one_turn_agent_llm_tool_llm():
    page = parse("page_first.json")
    assert [s["attributes"]["openinference.span.kind"] for s in page.spans] == [
        "AGENT", "LLM", "TOOL", "LLM"]
    agent, llm1, tool, llm2 = page.spans
    assert len({s["trace_id"] for s in page.spans}) == 1
    assert agent["parent_span_id"] is None
    assert {llm1["parent_span_id"], tool["parent_span_id"], llm2["parent_span_id"]} == {
        agent["span_id"]}
    assert agent["name"] == "agent.run" and tool["name"] == "get_weather"
    assert agent["resource"] == {"openinference.project.name": "e2e-proj"}
    assert all(s["status_code"] == "ok" and s["status_message"] is None for s in page.spans)


def test_agent_root_carries_session_user_and_metadata_as_json_string():
    agent = by_kind(parse("page_first.json"), "AGENT")[0]
    attrs = agent["attributes"]
    assert attrs["session.id"] == "sess-0"
    assert attrs["user.id"] == "user-1"
    assert attrs["input.value"] == "question 0"
    assert attrs["tag.tags"] == ["prod", "weather"]  # list of scalars stays a list
    # Phoenix returned metadata.channel / metadata.tier; folded back into the JSON string
    assert "metadata.channel" not in attrs
    assert json.loads(attrs["metadata"]) == {"channel": "web", "tier": "pro"}


def test_llm_span_messages_tool_calls_and_tokens():
    llm1, llm2 = by_kind(parse("page_first.json"), "LLM")
    a = llm1["attributes"]
    assert a["llm.input_messages.0.message.role"] == "system"
    assert a["llm.input_messages.1.message.role"] == "user"
    assert a["llm.input_messages.1.message.content"] == "question 0"
    assert a["llm.output_messages.0.message.tool_calls.0.tool_call.function.name"] == "get_weather"
    # JSON strings stay strings
    assert a["llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments"] == (
        '{"city": "Paris"}')
    assert a["llm.invocation_parameters"] == '{"temperature": 0.0}'
    assert isinstance(a["input.value"], str) and json.loads(a["input.value"])["messages"]
    assert (a["llm.token_count.prompt"], a["llm.token_count.completion"]) == (52, 17)
    assert a["llm.model_name"] == "gpt-4o-mini"
    b = llm2["attributes"]
    assert b["llm.input_messages.2.message.role"] == "tool"
    assert b["llm.input_messages.2.message.tool_call_id"] == "call_t0"
    assert b["llm.output_messages.0.message.content"] == "It is 18°C and sunny in Paris."
    assert llm2["events"] == [RawEvent(name="first_token", time_ns=llm2["events"][0]["time_ns"],
                                       attributes={"latency_ms": 90})]
    assert llm2["start_ns"] < llm2["events"][0]["time_ns"] < llm2["end_ns"]


def test_tool_span_parameters_back_to_json_string():
    tool = by_kind(parse("page_first.json"), "TOOL")[0]
    a = tool["attributes"]
    assert "tool.parameters.city" not in a
    assert a["tool.parameters"] == '{"city": "Paris"}'
    assert a["tool.name"] == "get_weather" and a["tool_call.id"] == "call_t0"
    assert a["output.value"] == '{"temp_c": 18, "sky": "sunny"}'


def test_error_tool_span_status_and_exception_event():
    tool = by_kind(parse("page_error_turn.json"), "TOOL")[0]
    assert tool["status_code"] == "error"
    assert tool["status_message"] == "weather backend timed out"
    (ev,) = tool["events"]
    assert ev["name"] == "exception"
    assert ev["attributes"]["exception.type"] == "RuntimeError"
    assert ev["attributes"]["exception.message"] == "weather backend timed out"
    assert ev["time_ns"] == tool["end_ns"]
    assert "output.value" not in tool["attributes"]


def test_times_are_exact_integer_nanoseconds():
    record = load("page_first.json")["data"][0]
    span = parse("page_first.json").spans[0]
    dt = datetime.fromisoformat(record["start_time"])
    assert span["start_ns"] == int(dt.timestamp()) * 10**9 + dt.microsecond * 1000
    assert span["end_ns"] - span["start_ns"] == 900_000_000  # the AGENT span lasted 900 ms
    assert iso_to_ns("1970-01-01T00:00:01.000001+00:00") == 1_000_001_000
    assert iso_to_ns("1970-01-01T00:00:01.000001Z") == 1_000_001_000
    assert iso_to_ns("1970-01-01T00:00:01.000001") == 1_000_001_000  # naive = UTC
    assert iso_to_ns("1970-01-01T02:00:00+02:00") == 0
    # far from the epoch: no float rounding
    assert iso_to_ns("2026-11-26T06:41:07.507946+00:00") == 1_795_675_267_507_946_000
    assert iso_to_ns(datetime(2030, 1, 1, tzinfo=timezone.utc).isoformat()) == 1_893_456_000 * 10**9


def test_variety_json_string_attributes_gen_ai_and_unknown_kind():
    page = parse("page_variety.json", project="variety")
    chain, retriever, genai, plain = page.spans
    assert chain["attributes"]["openinference.span.kind"] == "CHAIN"
    assert chain["attributes"]["session.id"] == "sess-ü"
    assert json.loads(chain["attributes"]["llm.prompt_template.variables"]) == {
        "city": "Lyon", "n": 3}
    assert chain["attributes"]["llm.prompt_template.template"] == "Where is {x}?"
    assert chain["attributes"]["scores"] == [1, 2, 3]
    r = retriever["attributes"]
    assert json.loads(r["retrieval.documents.0.document.metadata"]) == {
        "source": "wiki", "tags": ["x", "y"], "nested": [{"a": 1}, {"a": 2}]}
    assert not any(k.startswith("retrieval.documents.0.document.metadata.") for k in r)
    assert r["retrieval.documents.1.document.content"] == "Perrache"
    # Phoenix synthesised OpenInference attributes (and the LLM kind) from gen_ai.*
    assert genai["attributes"]["openinference.span.kind"] == "LLM"
    assert genai["attributes"]["llm.model_name"] == "gpt-4o"
    assert genai["attributes"]["gen_ai.usage.input_tokens"] == 10
    # no kind on the span: Phoenix says UNKNOWN, left out as in a file; a metadata that is
    # not JSON stays as sent
    assert load("page_variety.json")["data"][3]["span_kind"] == "UNKNOWN"
    assert "openinference.span.kind" not in plain["attributes"]
    assert plain["attributes"]["metadata"] == "not json {"
    assert plain["attributes"]["empty"] == ""
    assert all(s["status_code"] == "unset" for s in page.spans)


# --------------------------------------------------------------------------- flattening


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    """The nested shape (lists for numeric segments) other Phoenix versions answer with."""
    tree: dict[str, Any] = {}
    for key, value in flat.items():
        node = tree
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    def lists(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        node = {k: lists(v) for k, v in node.items()}
        if node and all(k.isdigit() for k in node):
            return [node[str(i)] for i in range(len(node))]
        return node

    return lists(tree)


@pytest.mark.parametrize("name", ["page_first.json", "page_variety.json"])
def test_nested_attributes_flatten_to_the_same_span(name):
    body = load(name)
    nested = copy.deepcopy(body)
    for record in nested["data"]:
        record["attributes"] = _nest(record["attributes"])
    assert parse_phoenix_page(nested, base_url=BASE, project="p", cursor=None).spans == (
        parse_phoenix_page(body, base_url=BASE, project="p", cursor=None).spans)


def test_flatten_attributes_rules():
    nested = {"llm": {"input_messages": [{"message": {"role": "user", "content": "hi"}},
                                         {"message": {"role": "assistant"}}],
                      "model_name": "m"},
              "tag.tags": ["a", "b"], "empty": [], "n": None, "x": {"y": {"z": 1.5}},
              "mixed": [{"a": 1}, "plain"]}
    assert flatten_attributes(nested) == {
        "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.content": "hi",
        "llm.input_messages.1.message.role": "assistant",
        "llm.model_name": "m",
        "tag.tags": ["a", "b"], "empty": [], "n": None, "x.y.z": 1.5,
        "mixed.0.a": 1, "mixed.1": "plain",
    }


def test_restore_json_string_attributes_only_touches_phoenix_json_keys():
    flat = {"metadata.a": 1, "metadata.b.0.c": "d", "tool.parameters.city": "Paris",
            "input.value": '{"already": "a string"}', "llm.input_messages.0.message.role": "u",
            "tool.name": "t"}
    out = restore_json_string_attributes(flat)
    assert json.loads(out.pop("metadata")) == {"a": 1, "b": [{"c": "d"}]}
    assert json.loads(out.pop("tool.parameters")) == {"city": "Paris"}
    assert out == {"input.value": '{"already": "a string"}',
                   "llm.input_messages.0.message.role": "u", "tool.name": "t"}
    # a root that is already a plain value is left alone
    assert restore_json_string_attributes({"metadata": "x", "metadata.a": 1}) == {
        "metadata": "x", "metadata.a": 1}


# --------------------------------------------------------------------------- cursor


def test_cursor_next_is_first_span_of_next_page():
    first, second = parse("page_first.json"), parse("page_second.json", cursor="U3Bhbjo1")
    assert first.cursor is None and first.next_cursor == "U3Bhbjo1"
    assert first.resume_cursor == first.next_cursor
    assert load("page_second.json")["data"][0]["id"] == first.next_cursor
    assert not {s["span_id"] for s in first.spans} & {s["span_id"] for s in second.spans}
    assert first.location == f"{BASE}/v1/projects/e2e-proj/spans#cursor="
    assert second.location == f"{BASE}/v1/projects/e2e-proj/spans#cursor=U3Bhbjo1"
    assert all(s["location"] == second.location for s in second.spans)


def test_last_page_resumes_at_its_last_span():
    last = parse("page_last.json", cursor="U3BhbjozMg==")
    body = load("page_last.json")
    assert last.next_cursor is None
    assert body["data"][0]["id"] == "U3BhbjozMg=="  # inclusive: the cursor's span comes back
    assert last.resume_cursor == body["data"][-1]["id"]


def test_empty_page_keeps_the_cursor():
    page = parse_phoenix_page({"data": [], "next_cursor": None}, base_url=BASE, project="p",
                              cursor="U3Bhbjo5")
    assert page.spans == [] and page.resume_cursor == "U3Bhbjo5"
    page = parse_phoenix_page({"data": [], "next_cursor": None}, base_url=BASE, project="p",
                              cursor=None)
    assert page.resume_cursor is None


# --------------------------------------------------------------------------- rejects


def test_bad_records_become_rejects_and_the_rest_still_converts():
    body = load("page_first.json")
    good = body["data"]
    bad: list[Any] = [copy.deepcopy(good[0]) for _ in range(7)]
    bad[0]["context"]["trace_id"] = "xyz"
    bad[1]["context"]["span_id"] = "0" * 16
    del bad[2]["context"]
    bad[3]["start_time"] = "yesterday"
    bad[4]["status_code"] = "MAYBE"
    bad[5]["attributes"] = ["not", "a", "dict"]
    bad[6] = "not an object"
    for i, b in enumerate(bad[:6]):
        b["id"] = f"bad{i}"
    page = parse_phoenix_page({"data": [*good, *bad], "next_cursor": None}, base_url=BASE,
                              project="p", cursor=None)
    assert len(page.spans) == len(good)
    reasons = [r.reason for r in page.rejects]
    assert len(reasons) == 7
    for fragment, reason in zip(["trace_id", "span_id", "context", "start_time",
                                 "status_code", "attributes", "not a JSON object"], reasons, strict=False):
        assert fragment in reason and reason.startswith("phoenix span: ")
    assert all(r.location == f"{BASE}/v1/projects/p/spans#cursor=" for r in page.rejects)
    assert json.loads(page.rejects[0].raw)["context"]["trace_id"] == "xyz"
    # the last record WITH an id counts: a reject is not read again forever
    assert page.resume_cursor == "bad5"


def test_uppercase_ids_are_lowercased_and_empty_parent_is_root():
    record = copy.deepcopy(load("page_first.json")["data"][1])
    record["context"]["trace_id"] = record["context"]["trace_id"].upper()
    record["parent_id"] = ""
    span = phoenix_span_to_raw(record, project="p", location="L")
    assert span["trace_id"] == record["context"]["trace_id"].lower()
    assert span["parent_span_id"] is None


def test_not_a_page_is_a_phoenix_error():
    for body in ([], {"data": None}, {"spans": []}, "<html>"):
        with pytest.raises(PhoenixError, match="not a spans page"):
            parse_phoenix_page(body, base_url=BASE, project="p", cursor=None)


# --------------------------------------------------------------------------- paging loop


class FakePhoenix:
    """Serves the captured pages by cursor; records the requests."""

    def __init__(self, pages: dict[str | None, Any], failures: list[Any] | None = None):
        self.pages = pages
        self.failures = list(failures or [])
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.failures:
            failure = self.failures.pop(0)
            if isinstance(failure, Exception):
                raise failure
            return failure
        cursor = request.url.params.get("cursor")
        return httpx.Response(200, json=self.pages[cursor])


def client_for(handler: Any, api_key: str | None = "k3y") -> httpx.Client:
    client = make_phoenix_client(BASE, api_key)
    client._transport = httpx.MockTransport(handler)  # keep base_url and headers
    return client


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr(phx, "RETRY_WAIT_S", 0.0)
    monkeypatch.setattr(phx, "RETRY_WAIT_MAX_S", 0.0)


def two_pages() -> FakePhoenix:
    return FakePhoenix({None: load("page_first.json"),
                        "U3Bhbjo1": {**load("page_second.json"), "next_cursor": None}})


def test_iter_follows_next_cursor_with_sort_id_asc():
    fake = two_pages()
    with client_for(fake) as client:
        pages = list(iter_phoenix_pages(client, "e2e-proj", None, 4))
    assert [len(p.spans) for p in pages] == [4, 4]
    assert [p.cursor for p in pages] == [None, "U3Bhbjo1"]
    assert pages[-1].resume_cursor == load("page_second.json")["data"][-1]["id"]
    first, second = fake.requests
    assert first.url.path == "/v1/projects/e2e-proj/spans"
    assert dict(first.url.params) == {"sort": "id", "order": "asc", "limit": "4"}
    assert dict(second.url.params) == {"sort": "id", "order": "asc", "limit": "4",
                                       "cursor": "U3Bhbjo1"}
    assert first.headers["authorization"] == "Bearer k3y"


def test_iter_quotes_project_and_clamps_page_size():
    fake = FakePhoenix({None: {"data": [], "next_cursor": None}})
    with client_for(fake) as client:
        pages = list(iter_phoenix_pages(client, "my proj", None, 50_000))
    assert len(pages) == 1 and pages[0].spans == []
    assert fake.requests[0].url.raw_path.startswith(b"/v1/projects/my%20proj/spans?")
    assert fake.requests[0].url.params["limit"] == str(phx.MAX_PAGE_SIZE)


def test_iter_retries_transient_failures():
    fake = two_pages()
    fake.failures = [httpx.Response(503, text="busy"), httpx.ConnectError("refused"),
                     httpx.Response(200, json=load("page_first.json")),
                     httpx.Response(429, headers={"retry-after": "0"})]
    with client_for(fake) as client:
        pages = list(iter_phoenix_pages(client, "e2e-proj", None, 4))
    assert [len(p.spans) for p in pages] == [4, 4]
    assert len(fake.requests) == 5


def test_iter_gives_up_after_three_attempts():
    fake = FakePhoenix({}, [httpx.Response(502, text="bad gateway")] * 3)
    with client_for(fake) as client, pytest.raises(PhoenixError, match="HTTP 502") as e:
        list(iter_phoenix_pages(client, "e2e-proj", None, 4))
    assert len(fake.requests) == 3 and "\n" not in str(e.value)


def test_iter_unreachable():
    fake = FakePhoenix({}, [httpx.ConnectError("[Errno 111] Connection refused")] * 3)
    with client_for(fake) as client, pytest.raises(PhoenixError) as e:
        list(iter_phoenix_pages(client, "e2e-proj", None, 4))
    assert str(e.value).startswith(f"cannot reach Phoenix at {BASE}: ConnectError")
    assert len(fake.requests) == 3


@pytest.mark.parametrize(
    ("response", "api_key", "message"),
    [
        (httpx.Response(401, text="Invalid token"), "k3y",
         f"Phoenix refused the API key at {BASE} (HTTP 401: Invalid token)"),
        (httpx.Response(403, text="Forbidden"), "k3y", "Phoenix refused the API key"),
        (httpx.Response(401, text="Invalid token"), None, "it needs an API key"),
        (httpx.Response(404, text="Project with name e2e-proj not found"), "k3y",
         f"no project e2e-proj in Phoenix at {BASE}"),
        (httpx.Response(404, json={"detail": "Not Found"}), "k3y", "is http://phoenix.test"),
        (httpx.Response(200, text="<!doctype html>", headers={"content-type": "text/html"}),
         "k3y", "answered non-JSON"),
        (httpx.Response(400, text="nope"), "k3y", "answered HTTP 400"),
    ],
)
def test_iter_error_messages(response, api_key, message):
    fake = FakePhoenix({}, [response])
    with client_for(fake, api_key) as client, pytest.raises(PhoenixError) as e:
        list(iter_phoenix_pages(client, "e2e-proj", None, 4))
    assert message in str(e.value)
    assert "k3y" not in str(e.value)
    assert len(fake.requests) == 1  # not retried


def test_iter_bad_cursor():
    fake = FakePhoenix({}, [httpx.Response(422, text="Invalid cursor")])
    with client_for(fake) as client, pytest.raises(PhoenixError, match="rejected the saved cursor"):
        list(iter_phoenix_pages(client, "e2e-proj", "garbage", 4))


def test_iter_stops_if_the_server_repeats_the_cursor():
    fake = FakePhoenix({"C": {"data": [], "next_cursor": "C"}})
    with client_for(fake) as client, pytest.raises(PhoenixError, match="same cursor"):
        list(iter_phoenix_pages(client, "e2e-proj", "C", 4))


# --------------------------------------------------------------------------- credentials in the URL


def test_the_url_credentials_become_a_basic_header_and_leave_the_client_url():
    client = make_phoenix_client("http://me:p%40ss-S3CR3T@127.0.0.1:6006/", "k3y")
    assert str(client.base_url).rstrip("/") == "http://127.0.0.1:6006"
    assert client.headers["authorization"] == "Basic bWU6cEBzcy1TM0NSM1Q="  # me:p@ss-S3CR3T
    assert make_phoenix_client(BASE, "k3y").headers["authorization"] == "Bearer k3y"


def test_the_cursor_key_has_no_password_and_is_stable():
    assert phx.watermark_key("http://me:pw@h:6006/", "p") == phx.watermark_key("http://me:pw@h:6006", "p") \
        == phx.watermark_key("http://other:pw2@h:6006", "p") == "http://***@h:6006|p"
    assert phx.watermark_key("http://127.0.0.1:6006/", "p") == "http://127.0.0.1:6006|p"  # as before: no migration


def test_locations_and_errors_show_the_url_without_its_password():
    url = "http://me:pw-S3CR3T@127.0.0.1:6006"
    page = parse("page_first.json", cursor=None)
    assert page.location.startswith(BASE)
    client = make_phoenix_client(url)
    client._transport = httpx.MockTransport(lambda r: httpx.Response(
        500, json={"detail": f"echo {r.headers['authorization']} pw-S3CR3T"}))
    with pytest.raises(phx.PhoenixError) as err:
        list(iter_phoenix_pages(client, "e2e-proj", None, 4, url=url))
    assert "http://***@127.0.0.1:6006" in str(err.value) and "S3CR3T" not in str(err.value)
    client._transport = httpx.MockTransport(two_pages())
    pages = list(iter_phoenix_pages(client, "e2e-proj", None, 4, url=url))
    assert {s["location"] for p in pages for s in p.spans} == {
        "http://***@127.0.0.1:6006/v1/projects/e2e-proj/spans#cursor=",
        "http://***@127.0.0.1:6006/v1/projects/e2e-proj/spans#cursor=U3Bhbjo1"}
