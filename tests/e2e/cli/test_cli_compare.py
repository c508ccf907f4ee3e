"""``replay compare EXECUTION_ID`` against production as a user reads it after the demo: the
diverged chats with their first divergent turn and why, as a capped table; ``--chat`` one chat
turn by turn (word-level differences, tool calls with their answer source); ``--json`` the same."""

from __future__ import annotations

import json

import pytest
from cli_helpers import assert_one_line_error, replay

SOURCES = {"recorded", "nearest", "live", "off_script"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = tmp_path_factory.mktemp("compare") / "data"
    r = replay(d, "--json", "demo", timeout=180)
    assert r.returncode == 0, r.stderr
    return d, json.loads(r.stdout)


def v2_of(result) -> str:
    return result["run_v2"]["execution_id"]


def test_compare_lists_the_diverged_rows_with_their_turn_and_why(demo):
    d, result = demo
    eid = v2_of(result)
    js = json.loads(replay(d, "--json", "compare", eid).stdout)
    assert js["diverged_chats"] == len(js["diverged"]) > 0
    assert {c["chat_id"] for c in js["diverged"]} == {c["chat_id"] for c in js["chats"] if c["divergence_turn"] is not None}
    for c in js["diverged"]:
        chat = next(x for x in js["chats"] if x["chat_id"] == c["chat_id"])
        assert c["turn_index"] == chat["divergence_turn"] and c["why"] in ("answer", "tool calls", "answer, tool calls")
    groups = js["diverged_rows"]
    assert sum(g["chats"] for g in groups) == js["diverged_chats"]
    assert any("issue_refund extra" in g["reason"] for g in groups)  # v2 issues refunds production only offered

    r = replay(d, "compare", eid)
    assert r.returncode == 0, r.stderr
    assert f"{js['diverged_chats']} of {len(js['chats'])} chats diverged from production" in r.stdout
    for g in groups:
        line = next(ln for ln in r.stdout.splitlines() if g["example_chat_id"] in ln)
        assert f"{g['chats']}/{g['of']}" in line and g["why"] in line
    assert f"next: replay compare {eid} --chat {groups[0]['example_chat_id']}" in r.stdout

    capped = replay(d, "compare", eid, "--rows", "3")
    assert f"... and {len(groups) - 3} more" in capped.stdout
    assert groups[3]["example_chat_id"] not in capped.stdout


def test_compare_chat_prints_it_turn_by_turn(demo):
    d, result = demo
    eid = v2_of(result)
    groups = json.loads(replay(d, "--json", "compare", eid).stdout)["diverged_rows"]
    chat_id = next(g["example_chat_id"] for g in groups if "tool calls" in g["why"])
    js = json.loads(replay(d, "--json", "compare", eid, "--chat", chat_id).stdout)
    assert js["chat_id"] == chat_id and js["divergence"]["turn_index"] == js["divergence_turn"]
    turn = js["turns"][js["divergence_turn"]]
    assert turn["diverged"] and {o["op"] for o in turn["words"]} >= {"delete", "insert"}
    replayed = [c for t in js["turns"] for c in t["replayed_tool_calls"]]
    assert replayed and {c["source"] for c in replayed} <= SOURCES
    assert all(c["matched_turn"] is not None for c in replayed if c["source"] == "recorded")

    r = replay(d, "compare", eid, "--chat", chat_id)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert f"diverged at turn {js['divergence_turn']}: tool calls differ" in out
    assert f"turn {js['divergence_turn']} (similarity" in out and ": diverged here" in out
    assert "[-" in out and "{+" in out  # not a terminal: the word diff in markers
    assert "<- recorded turn" in out and "tools, production:" in out


def test_compare_mistakes_are_one_line(demo):
    d, result = demo
    eid = v2_of(result)
    assert "no chat nope" in assert_one_line_error(replay(d, "compare", eid, "--chat", "nope"))
    assert "--chat" in assert_one_line_error(replay(d, "compare", eid, result["run"]["execution_id"],
                                                    "--chat", f"{eid}-r0000-k000"))
