"""Failed chats grouped into reasons (tasks/simulate/failures.py): numbers and ids masked, URLs
and HTTP statuses kept, the most frequent first with one example chat each."""

import pytest

from tasks.simulate.failures import REASON_CHARS, group_errors, reason_of, reasons_line


@pytest.mark.parametrize("error, reason", [
    ("RuntimeError: agent exploded on turn 1", "RuntimeError: agent exploded on turn <n>"),
    ("RuntimeError: agent exploded on turn 12", "RuntimeError: agent exploded on turn <n>"),
    ("LookupError: no order A1208 for session sess_9dfbab13dfae", "LookupError: no order <id> for session <id>"),
    ("KeyError: 'd3b07384-d9a0-4c9b-8e2d-1a2b3c4d5e6f'", "KeyError: '<id>'"),
    ("ValueError: chat ex_0da9e5be874b-r0003-k001 trace 4bf92f3577b34da6a3ce929d0e0e4736",
     "ValueError: chat <id> trace <id>"),
    ("AgentUnavailable: cannot reach the agent at http://127.0.0.1:9/v1: ConnectError: [Errno 111] Connection "
     "refused; is it up? (after 4 attempts)",
     "AgentUnavailable: cannot reach the agent at http://127.0.0.1:9/v1: ConnectError: [Errno <n>] Connection "
     "refused; is it up? (after <n> attempts)"),
    ("AgentHTTPError: agent at http://h:8000/v1 answered HTTP 503: busy for 2.5 s",
     "AgentHTTPError: agent at http://h:8000/v1 answered HTTP 503: busy for <n> s"),
    ("Boom: first line\nsecond line 2", "Boom: first line"),
    ("  spaced   out  ", "spaced out"),
])
def test_reason_of_masks_numbers_and_ids(error, reason):
    assert reason_of(error) == reason


def test_reason_of_a_chat_without_an_error_is_how_it_ended_and_long_ones_are_cut():
    assert reason_of(None, "off_script") == "ended: off_script"
    assert reason_of("", None) == "failed without an error"
    long = reason_of("ValueError: " + "word " * 100)
    assert len(long) == REASON_CHARS and long.endswith("…")
    assert reason_of("X: \ue000 private use 1") == "X: private use <n>"  # never taken for a kept URL


def test_group_errors_counts_reasons_most_frequent_first_with_one_example():
    rows = [  # as execution_errors.sql gives them: one row a distinct error
        {"error": "RuntimeError: agent exploded on turn 0", "ended_reason": "error", "n": 3, "example_chat_id": "c05"},
        {"error": "RuntimeError: agent exploded on turn 1", "ended_reason": "error", "n": 5, "example_chat_id": "c02"},
        {"error": "TimeoutError: slow", "ended_reason": "timeout", "n": 8, "example_chat_id": "c01"},
        {"error": None, "ended_reason": "off_script", "n": 1, "example_chat_id": "c09"},
    ]
    reasons = group_errors(rows)
    assert [(r.reason, r.count, r.example_chat_id) for r in reasons] == [
        ("RuntimeError: agent exploded on turn <n>", 8, "c02"),  # ties by reason; the example of its largest error
        ("TimeoutError: slow", 8, "c01"),
        ("ended: off_script", 1, "c09")]
    assert [r.reason for r in group_errors(rows, top=1)] == ["RuntimeError: agent exploded on turn <n>"]
    assert reasons_line(reasons, limit=2) == ("8 x RuntimeError: agent exploded on turn <n> (e.g. c02); "
                                              "8 x TimeoutError: slow (e.g. c01); and 1 more reason")
