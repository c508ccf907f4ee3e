"""Pure divergence checks: normalize, similarity, tool_calls_match, diverged."""

from __future__ import annotations

import pytest

from models.simulate import ToolCallLog
from tasks.simulate.divergence import (
    canonical_json,
    diverged,
    normalize,
    similarity,
    tool_call_differences,
    tool_calls_match,
)

PROD = ("Done! Refund RF-48213 for $54.00 is approved and will be back on your original "
        "payment method in 5-7 business days. No need to send the green hoodie back.")


@pytest.mark.parametrize("text, expected", [
    ("  Hello,\n\n  World!  ", "hello, world"),
    ("\u201cDone.\u201d", "done"),
    ("It\u2019s   fine\t", "it's fine"),
    ("...ok?!", "ok"),
    ("50%", "50%"),
    ("", ""),
    (None, ""),
])
def test_normalize(text, expected):
    assert normalize(text) == expected


def test_similarity_exact_after_normalisation_and_missing():
    assert similarity("Done!", "  done ") == 1.0
    assert similarity("It\u2019s OK", "it's ok.") == 1.0
    assert similarity(None, None) == 1.0
    assert similarity(None, "x") == 0.0 and similarity("x", None) == 0.0
    assert similarity("", "something") == 0.0


def test_similarity_orders_rewording_truncation_and_other_answers():
    reworded = ("Your refund RF-48213 of $54.00 has been approved; expect it on your original "
                "payment method in 5-7 business days. No need to return the green hoodie.")
    truncated = "Done."
    other = "I'm sorry, I can't help with refunds. Please contact support."
    s_reworded, s_trunc, s_other = (similarity(x, PROD) for x in (reworded, truncated, other))
    assert 0.6 <= s_reworded < 1.0
    assert s_trunc < 0.6 and s_other < 0.6
    assert s_reworded > s_trunc and s_reworded > s_other
    assert similarity(PROD, reworded) == pytest.approx(s_reworded)  # symmetric
    assert 0.0 <= s_other <= 1.0


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


def test_diverged():
    calls = [{"name": "issue_refund", "arguments": {"order_id": "A1077", "amount": 54.0}}]
    assert diverged(PROD, PROD, calls, calls, 0.6) == (False, 1.0, "")
    d, sim, reason = diverged(PROD, PROD, [], calls, 0.6)
    assert d and sim == 1.0 and reason == "tool calls differ: issue_refund missing"
    d, sim, reason = diverged("Sorry, which order?", PROD, calls, calls, 0.6)
    assert d and sim < 0.6 and reason == f"answer similarity {sim:.2f} < 0.60"
    d, _, reason = diverged(None, PROD, [], calls, 0.6)
    assert d and reason == ("tool calls differ: issue_refund missing; "
                            "answer similarity 0.00 < 0.60")
    # threshold 0 never diverges on text
    assert diverged("x", PROD, calls, calls, 0.0)[0] is False
