"""Pure pieces of a chat's comparison with production: the word diff, its rendering, the
grouping of diverged chats."""

from rich.console import Console

from replay.views import words_text
from tasks.compare.chats import call_view, diverged_rows, word_diff


def test_word_diff_keeps_both_sides_in_reading_order():
    ops = word_diff("Your refund of $54.00 is approved", "Your refund of $54.00 was  issued today")
    assert ops == [{"op": "equal", "text": "Your refund of $54.00"}, {"op": "delete", "text": "is approved"},
                   {"op": "insert", "text": "was issued today"}]
    both = lambda keep: " ".join(o["text"] for o in ops if o["op"] in keep)  # noqa: E731
    assert both(("equal", "delete")) == "Your refund of $54.00 is approved"
    assert both(("equal", "insert")) == "Your refund of $54.00 was issued today"
    assert word_diff("same  words\n", "same words") == [{"op": "equal", "text": "same words"}]
    assert word_diff(None, "new") == [{"op": "insert", "text": "new"}]
    assert word_diff("", None) == []


def test_words_render_red_struck_deletions_and_green_insertions():
    ops = word_diff("the parcel is late", "the parcel arrived")
    text = words_text(ops, color=True)
    styles = {text.plain[s.start:s.end]: str(s.style) for s in text.spans}
    assert styles == {"is late": "red strike", "arrived": "green"}
    assert words_text(ops, color=False).plain == "the parcel [-is late-] {+arrived+}"
    console = Console(color_system="truecolor", force_terminal=True, width=80)
    with console.capture() as cap:
        console.print(text)
    assert "\x1b[9;31mis late" in cap.get()  # strike (9) red (31)


def test_diverged_chats_group_by_row_turn_and_why():
    d = [{"chat_id": f"ex-r0001-k00{k}", "row_index": 1, "origin_id": "s1", "turn_index": 0, "why": "answer",
          "reason": "answer differs"} for k in range(3)]
    d.append({"chat_id": "ex-r0000-k000", "row_index": 0, "origin_id": "s0", "turn_index": 2, "why": "tool calls",
              "reason": "tool calls differ: issue_refund extra"})
    rows = diverged_rows(d, {0: 3, 1: 3})
    assert [(r["row_index"], r["chats"], r["of"], r["example_chat_id"]) for r in rows] == [
        (0, 1, 3, "ex-r0000-k000"), (1, 3, 3, "ex-r0001-k000")]


def test_a_replayed_call_says_where_its_answer_came_from():
    c = {"name": "lookup_order", "arguments": {"order_id": "A1"}, "status": "ok", "source": "nearest",
         "matched_turn": 2}
    assert call_view(c, True) == {"name": "lookup_order", "arguments": '{"order_id":"A1"}', "status": "ok",
                                  "source": "nearest", "matched_turn": 2}
    assert "source" not in call_view(c, False)


def test_huge_answers_are_not_diffed_word_by_word():
    from tasks.compare.chats import MAX_WORDS

    big = " ".join(f"w{i}" for i in range(MAX_WORDS + 1))
    assert [o["op"] for o in word_diff(big, "short answer")] == ["delete", "insert"]
