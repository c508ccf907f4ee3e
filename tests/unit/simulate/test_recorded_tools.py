"""RecordedTools on rows rebuilt from the bundled sample's expected.json."""

from __future__ import annotations

import asyncio
import json
import pickle

import pytest

from models.scenario import Persona, ScenarioRow, ToolCall, Turn
from models.settings import SAMPLES_DIR
from models.simulate import ToolMatchConfig, ToolRule
from tasks.simulate.recorded_tools import OffScriptError, RecordedTools

REFUND_FAILED_THEN_OK = "sess_9dfbab13dfae"  # turn 0: lookup_order, issue_refund (error); turn 1: issue_refund ok
SEVERAL_TOOLS = "sess_3cea8142c8ea"  # lookup_order, search_products, issue_refund in turns 0..2

EXPECTED = json.loads((SAMPLES_DIR / "expected.json").read_text())
# A search query is free text by default (a reworded query is answered from the recording);
# these tests exercise the nearest policy on a query declared key.
QUERY_IS_KEY = ToolMatchConfig(tools={"search_products": ToolRule(fields={"query": "key"})})


def row_of(session_id: str) -> ScenarioRow:
    """A scenario row as the warehouse would give it: arguments parsed, results JSON text,
    a failed call with no result (what the sample's spans record)."""
    s = EXPECTED["sessions"][session_id]
    turns = [Turn(turn_index=t["turn_index"], trace_id=t["trace_id"],
                  user_message=t["user_message"], assistant_message=t["assistant_message"],
                  tool_calls=[ToolCall(id=c["id"], name=c["name"], arguments=c["arguments"],
                                       result=None if c["result"] is None else json.dumps(c["result"]),
                                       status=c["status"])
                              for c in t["tool_call_details"]])
             for t in s["turns"]]
    return ScenarioRow(row_index=0, origin_id=session_id, persona=Persona(name="Sam"),
                       situation="x" * 40, outcome="It went fine. The end.",
                       conversation_branch="start", branch_category="resolved",
                       user_turns=[t.user_message or "" for t in turns], expected_turns=turns)


def call(tools: RecordedTools, name, arguments=None, **kw):
    return asyncio.run(tools.call(name, arguments, **kw))


def test_same_turn_match_returns_parsed_result():
    tools = RecordedTools.from_row(row_of(SEVERAL_TOOLS))
    tools.set_turn(0)
    result = call(tools, "lookup_order", {"order_id": "A1077"})
    assert result["order_id"] == "A1077" and result["items"][0]["color"] == "black"
    [entry] = tools.log
    assert (entry.name, entry.status, entry.source, entry.matched_turn) == (
        "lookup_order", "ok", "recorded", 0)
    assert entry.arguments == {"order_id": "A1077"} and entry.result == result


def test_match_in_another_turn_nearest_first():
    tools = RecordedTools.from_row(row_of(SEVERAL_TOOLS))
    tools.set_turn(3)  # production called no tool in turn 3
    result = call(tools, "search_products", {"query": "black everyday hoodie size L"})
    assert result["results"][0]["in_stock_sizes"] == ["S", "M", "L"]
    assert tools.log[-1].matched_turn == 1 and tools.log[-1].source == "recorded"
    tools.set_turn(0)  # called earlier than production did
    refund = call(tools, "issue_refund", {"order_id": "A1077", "amount": 54})
    assert refund["refund_id"] == "RF-48213" and tools.log[-1].matched_turn == 2


def test_arguments_normalised_key_order_whitespace_numbers():
    tools = RecordedTools.from_row(row_of(SEVERAL_TOOLS))
    tools.set_turn(2)
    for args in ('{ "amount" : 54,\n "order_id": "A1077" }', {"amount": 54.0, "order_id": "A1077"},
                 '{"order_id":"A1077","amount":54.00}'):
        assert call(tools, "issue_refund", args)["refund_id"] == "RF-48213"
    assert [e.source for e in tools.log] == ["recorded"] * 3
    assert tools.log[0].arguments == {"amount": 54, "order_id": "A1077"}  # parsed for the log
    # strings compare exactly: another case is another argument
    call(tools, "lookup_order", {"order_id": "a1077"})
    assert tools.log[-1].source == "off_script"
    # a bool is not a number
    call(tools, "issue_refund", {"order_id": "A1077", "amount": True})
    assert tools.log[-1].source == "off_script"


def test_recorded_error_served_as_error_in_its_turn_success_in_the_next():
    tools = RecordedTools.from_row(row_of(REFUND_FAILED_THEN_OK))
    args = {"order_id": "A1130", "amount": 129.99}
    tools.set_turn(0)
    assert call(tools, "lookup_order", {"order_id": "A1130"})["total"] == 129.99
    failed = call(tools, "issue_refund", args)
    assert "error" in failed and "issue_refund" in failed["error"]
    retried = call(tools, "issue_refund", args)  # a retry in the same turn fails again
    assert retried == failed
    tools.set_turn(1)
    ok = call(tools, "issue_refund", dict(reversed(list(args.items()))))
    assert ok["refund_id"] == "RF-48377"
    assert [(e.status, e.matched_turn) for e in tools.log] == [
        ("ok", 0), ("error", 0), ("error", 0), ("ok", 1)]
    assert all(e.source == "recorded" for e in tools.log)


def test_recorded_error_text_is_returned_as_recorded():
    row = row_of(REFUND_FAILED_THEN_OK)
    row.expected_turns[0].tool_calls[1].result = "payment gateway timeout"
    tools = RecordedTools(row.expected_turns)
    assert call(tools, "issue_refund", {"order_id": "A1130", "amount": 129.99}) == "payment gateway timeout"
    assert tools.log[-1].status == "error"


def test_unused_preferred_then_reused():
    turns = [Turn(turn_index=0, trace_id="t0", tool_calls=[
        ToolCall(name="roll", arguments={}, result='{"n": 1}', status="ok"),
        ToolCall(name="roll", arguments={}, result='{"n": 2}', status="ok")])]
    tools = RecordedTools(turns)
    assert [call(tools, "roll")["n"] for _ in range(3)] == [1, 2, 1]  # None args == {}


def test_results_are_fresh_copies_and_text_stays_text():
    turns = [Turn(turn_index=0, trace_id="t0", tool_calls=[
        ToolCall(name="get", arguments='{"k": 1}', result='{"v": [1]}', status="ok"),
        ToolCall(name="say", arguments="not json", result="plain words", status="ok")])]
    tools = RecordedTools(turns)
    call(tools, "get", {"k": 1})["v"].append(2)
    assert call(tools, "get", '{"k":1}') == {"v": [1]}
    assert call(tools, "say", "not json") == "plain words"


def test_off_script_error_policy():
    tools = RecordedTools.from_row(row_of(SEVERAL_TOOLS), off_script="error")
    tools.set_turn(0)
    result = call(tools, "lookup_order", {"order_id": "A9999"})
    assert result == {"error": 'off-script: no recorded result for lookup_order({"order_id":"A9999"})'}
    entry = tools.log[-1]
    assert (entry.status, entry.source, entry.matched_turn) == ("error", "off_script", None)


def test_off_script_nearest_policy():
    tools = RecordedTools.from_row(row_of(SEVERAL_TOOLS), off_script="nearest", config=QUERY_IS_KEY)
    tools.set_turn(1)
    result = call(tools, "search_products", {"query": "black hoodie L"})
    assert result["query"] == "black everyday hoodie size L"
    entry = tools.log[-1]
    assert (entry.status, entry.source, entry.matched_turn) == ("ok", "nearest", 1)
    # exact matches still win over nearest
    call(tools, "lookup_order", {"order_id": "A1077"})
    assert tools.log[-1].source == "recorded"
    # a tool production never called: the error answer
    result = call(tools, "cancel_order", {"order_id": "A1077"})
    assert result["error"].startswith("off-script: no recorded result for cancel_order(")
    assert tools.log[-1].source == "off_script" and tools.log[-1].status == "error"


def test_nearest_prefers_same_turn_on_ties():
    turns = [Turn(turn_index=i, trace_id=f"t{i}", tool_calls=[
        ToolCall(name="f", arguments={"x": "a"}, result=f'{{"turn": {i}}}', status="ok")])
        for i in range(3)]
    tools = RecordedTools(turns, off_script="nearest")
    tools.set_turn(2)
    assert call(tools, "f", {"x": "b"}) == {"turn": 2}
    tools.set_turn(1)
    assert call(tools, "f", {"x": "b"}) == {"turn": 1}


def test_off_script_fail_policy_raises_one_line():
    tools = RecordedTools.from_row(row_of(REFUND_FAILED_THEN_OK), off_script="fail")
    tools.set_turn(1)
    with pytest.raises(OffScriptError) as info:
        call(tools, "issue_refund", {"order_id": "A1130", "amount": 10})
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("turn 1:") and "issue_refund" in msg
    assert info.value.turn == 1 and info.value.name == "issue_refund"
    assert pickle.loads(pickle.dumps(info.value)).args == info.value.args
    assert tools.log[-1].source == "off_script" and tools.log[-1].status == "error"
    # recorded calls still answer under "fail"
    assert call(tools, "issue_refund", {"order_id": "A1130", "amount": 129.99})["refund_id"] == "RF-48377"


def test_log_sources_ids_and_calls_for_turn():
    tools = RecordedTools.from_row(row_of(SEVERAL_TOOLS), off_script="nearest", config=QUERY_IS_KEY)
    tools.set_turn(0)
    call(tools, "lookup_order", {"order_id": "A1077"}, call_id="call_abc")
    tools.set_turn(1)
    call(tools, "search_products", {"query": "hoodie"})
    call(tools, "track_parcel", {"id": 1})
    assert [e.source for e in tools.log] == ["recorded", "nearest", "off_script"]
    assert [e.name for e in tools.calls_for_turn(1)] == ["search_products", "track_parcel"]
    assert [e.id for e in tools.calls_for_turn(0)] == ["call_abc"]
    assert tools.calls_for_turn(5) == []
    ids = [e.id for e in tools.log]
    assert len(set(ids)) == 3 and all(ids)
    assert tools.tool_names == ["lookup_order", "search_products", "issue_refund"]


def test_bad_policy_refused():
    with pytest.raises(ValueError, match="off_script"):
        RecordedTools([], off_script="ignore")  # type: ignore[arg-type]
