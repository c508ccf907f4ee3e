"""Pure divergence checks: canonical_json, tool_calls_match, diverged (answers by meaning:
tasks.common.semantic, tested in tests/unit/common/test_semantic.py)."""

from __future__ import annotations

from models.simulate import ToolCallLog
from tasks.simulate.arguments import canonical_json
from tasks.simulate.divergence import (
    diverged,
    tool_call_differences,
    tool_calls_match,
)

PROD = ("Done! Refund RF-48213 for $54.00 is approved and will be back on your original "
        "payment method in 5-7 business days. No need to send the green hoodie back.")


def test_canonical_json():
    assert canonical_json('{ "b": 1.0, "a": [true, 2.5] }') == '{"a":[true,2.5],"b":1}'
    assert canonical_json(None) == canonical_json("") == canonical_json({}) == "{}"
    assert canonical_json("not json") == '"not json"'
    assert canonical_json({"x": True}) != canonical_json({"x": 1})


def test_tool_calls_match_order_and_argument_forms():
    expected = [{"name": "lookup_order", "arguments": '{"order_id": "A1077"}'},
                {"name": "issue_refund", "arguments": {"order_id": "A1077", "amount": 54.0}}]
    actual = [{"name": "issue_refund", "arguments": '{"amount": 54, "order_id": "A1077"}'},
              ToolCallLog(name="lookup_order", arguments={"order_id": "A1077"})]
    assert tool_calls_match(actual, expected)
    assert tool_calls_match([], [])
    # multiset: a repeated call is not the same as one
    assert not tool_calls_match(expected + expected[:1], expected)
    assert not tool_calls_match([{"name": "lookup_order", "arguments": {"order_id": "a1077"}}],
                                expected[:1])


def test_tool_call_differences_names():
    expected = [{"name": "lookup_order", "arguments": {"order_id": "A1"}},
                {"name": "issue_refund", "arguments": {"order_id": "A1", "amount": 5}}]
    assert tool_call_differences(expected[:1], expected) == ["issue_refund missing"]
    assert tool_call_differences(expected + [{"name": "search_products"}], expected) == [
        "search_products extra"]
    assert tool_call_differences(
        [expected[0], {"name": "issue_refund", "arguments": {"order_id": "A1", "amount": 6}}],
        expected) == ["issue_refund arguments differ"]


REWORDED = ("Your refund RF-48213 of $54.00 has been approved; expect it on your original "
            "payment method in 5-7 business days. No need to return the green hoodie.")


def test_diverged():
    calls = [{"name": "issue_refund", "arguments": {"order_id": "A1077", "amount": 54.0}}]
    assert diverged(PROD, PROD, calls, calls) == (False, 1.0, "")
    d, sim, reason = diverged(PROD, PROD, [], calls)
    assert d and sim == 1.0 and reason == "tool calls differ: issue_refund missing"
    # the same answer in other words does not diverge; another answer does, with its reason
    d, sim, reason = diverged(REWORDED, PROD, calls, calls)
    assert not d and 0.58 <= sim < 1.0 and reason == ""
    d, sim, reason = diverged("Sorry, which order?", PROD, calls, calls)
    assert d and sim < 0.58 and reason.startswith("answer differs: missing 4 fact(s): 5, 54, 7, RF48213")
    d, _, reason = diverged(None, PROD, [], calls)
    assert d and reason == "tool calls differ: issue_refund missing; answer differs: no answer"
    # the threshold moves the similarity's pass mark, never the facts
    assert diverged("RF-48213 54.00 5-7 ok", PROD, calls, calls, 0.0)[0] is False
    assert diverged(REWORDED, PROD, calls, calls, 0.999)[0] is True
