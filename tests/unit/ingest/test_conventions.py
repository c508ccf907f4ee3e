"""What a span says about the conversation, for each convention."""

import json

from tasks.ingest.conventions import extract_messages, span_facts, span_kind


def raw(attrs, name="span", events=(), resource=None):
    return {"trace_id": "t" * 32, "span_id": "s" * 16, "parent_span_id": None, "name": name,
            "otel_kind": "INTERNAL", "start_ns": 1, "end_ns": 2, "status_code": "unset",
            "status_message": None, "attributes": attrs, "resource": resource or {}, "scope": {},
            "events": list(events), "location": "x"}


def test_openinference_llm_span():
    f = span_facts(raw({
        "openinference.span.kind": "LLM", "llm.model_name": "gpt-4o", "session.id": "s1", "user.id": "u1",
        "llm.input_messages.0.message.role": "system", "llm.input_messages.0.message.content": "Be nice.",
        "llm.input_messages.1.message.role": "user", "llm.input_messages.1.message.content": "old question",
        "llm.input_messages.2.message.role": "assistant", "llm.input_messages.2.message.content": "old answer",
        **{f"llm.input_messages.{i}.message.role": "assistant" for i in range(3, 10)},
        "llm.input_messages.10.message.role": "user", "llm.input_messages.10.message.content": "new question",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.tool_calls.0.tool_call.id": "call_1",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "lookup_order",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"order_id": "7"}',
        "llm.token_count.prompt": 120, "llm.token_count.completion": "8",
        "llm.tools.0.tool.json_schema": json.dumps({"type": "function", "function": {"name": "lookup_order"}}),
    }))
    assert (f["kind"], f["convention"], f["session_id"], f["user_id"]) == ("LLM", "openinference", "s1", "u1")
    assert f["user_message"] == "new question"  # index 10 sorts after 2, not before
    assert f["system_prompt"] == "Be nice."
    assert f["input_tokens"] == 120 and f["output_tokens"] == 8 and f["model"] == "gpt-4o"
    assert json.loads(f["tool_calls"]) == [{"id": "call_1", "name": "lookup_order", "arguments": '{"order_id": "7"}'}]
    assert json.loads(f["tools"])[0]["function"]["name"] == "lookup_order"


def test_openinference_contents_parts_and_tool_messages_after_last_user():
    ins, outs = extract_messages({
        "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.contents.0.message_content.type": "text",
        "llm.input_messages.0.message.contents.0.message_content.text": "hello",
        "llm.input_messages.1.message.role": "tool", "llm.input_messages.1.message.content": "42",
        "llm.input_messages.1.message.tool_call_id": "c9",
        "llm.output_messages.0.message.role": "assistant", "llm.output_messages.0.message.content": "It is 42.",
    }, [])
    assert ins[0]["content"] == "hello" and ins[1]["tool_call_id"] == "c9"
    assert outs[0]["content"] == "It is 42."
    f = span_facts(raw({"openinference.span.kind": "LLM", "llm.input_messages.0.message.role": "user",
                        "llm.input_messages.0.message.content": "q",
                        "llm.input_messages.1.message.role": "tool", "llm.input_messages.1.message.content": "42",
                        "llm.input_messages.1.message.tool_call_id": "c9"}))
    assert json.loads(f["tool_results"]) == [{"id": "c9", "name": None, "result": "42"}]


def test_genai_json_parts():
    f = span_facts(raw({
        "gen_ai.operation.name": "chat", "gen_ai.request.model": "m1", "gen_ai.conversation.id": "conv",
        "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "System!"}]),
        "gen_ai.input.messages": json.dumps([
            {"role": "user", "parts": [{"type": "text", "content": "refund please"}]},
            {"role": "assistant", "parts": [{"type": "tool_call", "id": "t1", "name": "issue_refund",
                                             "arguments": {"order_id": "9"}}]},
            {"role": "tool", "parts": [{"type": "tool_call_response", "id": "t1", "response": {"ok": True}}]},
        ]),
        "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "Done."}],
                                               "finish_reason": "stop"}]),
        "gen_ai.usage.input_tokens": 50, "gen_ai.usage.output_tokens": 5,
    }, name="chat m1"))
    assert (f["kind"], f["convention"], f["session_id"]) == ("LLM", "genai", "conv")
    assert f["user_message"] == "refund please" and f["assistant_text"] == "Done."
    assert f["system_prompt"] == "System!"
    assert json.loads(f["tool_results"]) == [{"id": "t1", "name": None, "result": '{"ok":true}'}]
    assert (f["input_tokens"], f["output_tokens"]) == (50, 5)


def test_genai_execute_tool_span():
    f = span_facts(raw({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup_order",
                        "gen_ai.tool.call.id": "t1", "gen_ai.tool.call.arguments": '{"order_id":"9"}',
                        "gen_ai.tool.call.result": '{"status":"lost"}'}, name="execute_tool lookup_order"))
    assert (f["kind"], f["tool_name"], f["tool_call_id"]) == ("TOOL", "lookup_order", "t1")
    assert f["tool_arguments"] == '{"order_id":"9"}' and f["tool_result"] == '{"status":"lost"}'


def test_genai_deprecated_events():
    events = [
        {"name": "gen_ai.system.message", "time_ns": 1, "attributes": {"content": "sys"}},
        {"name": "gen_ai.user.message", "time_ns": 1, "attributes": {"content": "hi there"}},
        {"name": "gen_ai.choice", "time_ns": 2, "attributes": {"message": json.dumps({"role": "assistant", "content": "hello!"})}},
    ]
    f = span_facts(raw({"gen_ai.system": "openai", "gen_ai.request.model": "m"}, events=events))
    assert f["kind"] == "LLM" and f["user_message"] == "hi there" and f["assistant_text"] == "hello!"
    assert f["system_prompt"] == "sys"


def test_traceai_flattened():
    f = span_facts(raw({
        "fi.span.kind": "LLM", "session.id": "s9",
        "gen_ai.input.messages.0.message.role": "user", "gen_ai.input.messages.0.message.content": "bonjour",
        "gen_ai.output.messages.0.message.role": "assistant", "gen_ai.output.messages.0.message.content": "salut",
    }))
    assert (f["kind"], f["convention"]) == ("LLM", "traceai")
    assert f["user_message"] == "bonjour" and f["assistant_text"] == "salut"


def test_openllmetry_prompt_completion():
    ins, outs = extract_messages({"gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "q",
                                  "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "a"}, [])
    assert ins[0]["content"] == "q" and outs[0]["content"] == "a"


def test_kind_detection_and_session_on_resource():
    assert span_kind({"gen_ai.operation.name": "invoke_agent"}, "x") == ("AGENT", "genai")
    assert span_kind({"openinference.span.kind": "chain"}, "x") == ("CHAIN", "openinference")
    assert span_kind({}, "x") == ("UNKNOWN", "none")
    f = span_facts(raw({"enduser.id": "u"}, resource={"session.id": "rs"}))
    assert f["session_id"] == "rs" and f["user_id"] == "u"


def test_flattened_with_gaps_in_the_indices_takes_the_slow_path():
    ins, _ = extract_messages({"gen_ai.prompt.0.role": "system", "gen_ai.prompt.0.content": "s",
                               "gen_ai.prompt.2.role": "user", "gen_ai.prompt.2.content": "two",
                               "gen_ai.prompt.10.role": "user", "gen_ai.prompt.10.content": "ten"}, [])
    assert [m["content"] for m in ins] == ["s", "two", "ten"]


def test_token_counts_out_of_range_are_left_out_with_a_note():
    def tokens(v):
        f = span_facts(raw({"openinference.span.kind": "LLM", "llm.token_count.prompt": v}))
        return f["input_tokens"], f["notes"]

    assert tokens(7) == (7, [])
    assert tokens("12") == (12, [])
    assert tokens(2.0) == (2, [])
    assert tokens((1 << 63) - 1) == ((1 << 63) - 1, [])
    for bad in (1 << 63, 1 << 64, -(1 << 63), -1, float("inf"), float("nan"), "NaN", "Infinity", "1e400",
                1e308, -1e308, "lots"):
        n, notes = tokens(bad)
        assert n is None and len(notes) == 1 and notes[0].startswith("input_tokens "), (bad, notes)


def test_blank_session_and_user_ids_are_none():
    assert span_facts(raw({"session.id": "   ", "user.id": "\t"}))["session_id"] is None
    assert span_facts(raw({"session.id": ""}, resource={"session.id": " "}))["session_id"] is None
    f = span_facts(raw({"session.id": " ", "gen_ai.conversation.id": "real", "user.id": " ", "enduser.id": "u"}))
    assert (f["session_id"], f["user_id"]) == ("real", "u")
    assert span_facts(raw({"session.id": " padded "}))["session_id"] == " padded "  # an id is kept as written
