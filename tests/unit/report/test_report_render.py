"""The report page without a browser: the template's whitespace rule, the inlined asset files,
the word diff's HTML (the browser tests in tests/e2e/report judge the page itself)."""

from __future__ import annotations

from importlib import resources

from jinja2 import Environment

from tasks.report.render import TagLineBreaks, render_report, word_diff


def _data(user_message: str, answer: str, original: str) -> dict:
    turn = {"chat_id": "c1", "turn_index": 0, "user_message": user_message, "assistant_message": answer,
            "original_assistant_message": original, "tool_calls": [], "original_tool_calls": [],
            "latency_ms": 10.0, "similarity": 0.5, "user_source": "original", "error": None}
    chat = {"chat_id": "c1", "row_index": 0, "repetition": 0, "origin_id": "s1", "status": "completed",
            "ended_reason": "script_done", "divergence_turn": None, "turn_count": 1, "avg_latency_ms": 10.0,
            "input_tokens": 1, "output_tokens": 1, "error": None, "branch_category": None, "persona_name": None}
    return {"execution": {"execution_id": "ex1"}, "metrics": {"total_chats": 1}, "scores": [], "chats": [chat],
            "turns": [turn]}


def test_line_breaks_next_to_tags_are_dropped_from_the_template_only():
    source = '<div>\n  <b>{{ x }}</b>\n  {% if y %} <i>y</i>{% endif %}\n</div>\ntwo\nwords'
    page = Environment(extensions=[TagLineBreaks]).from_string(source).render(x="a\n  b", y=True)
    assert page == "<div><b>a\n  b</b> <i>y</i></div>two\nwords"


def test_the_page_inlines_the_asset_files_and_keeps_the_whitespace_of_the_texts():
    page = render_report(_data("line one\n\n   indented <b>", "  a  b\n", "a c"))
    assets = resources.files("tasks.report") / "assets"
    assert (assets / "report.css").read_text(encoding="utf-8") in page
    assert (assets / "report.js").read_text(encoding="utf-8") in page
    assert page.count("<style>") == 1 and "<link" not in page
    assert '<div class="msg">line one\n\n   indented &lt;b&gt;</div>' in page
    assert '<div class="msg">  a  <ins>b</ins>\n</div>' in page
    assert '<div class="msg">a <del>c</del></div>' in page


def test_word_diff_marks_the_words_only_one_side_has():
    assert word_diff("a b c", "a x c") == ("a <ins>b</ins> c", "a <del>x</del> c")
    assert word_diff("<b>", None) == ("<ins>&lt;b&gt;</ins>", "")
