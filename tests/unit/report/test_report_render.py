"""The report page without a browser: the template's whitespace rule, the inlined asset files,
the word diff, the row verdicts, repetitions grouped, the SVG charts, the file's mode (the
browser tests in tests/e2e/report judge the page itself)."""

from __future__ import annotations

import re
import stat
from importlib import resources

from jinja2 import Environment

from models.compare import ExecutionComparison
from tasks.compare import regression_gate
from tasks.report import figures
from tasks.report.render import TagLineBreaks, render_report, word_diff, write_report
from tasks.report.view import SideTurns, build_page, side_by_side, unit_verdicts


def _turn(chat_id: str, answer: str, user: str = "hello", i: int = 0, tools=()) -> dict:
    return {"chat_id": chat_id, "turn_index": i, "user_message": user, "assistant_message": answer,
            "original_assistant_message": "a c", "tool_calls": list(tools), "original_tool_calls": [],
            "latency_ms": 10.0, "similarity": 0.5, "user_source": "original", "error": None}


def _chat(chat_id: str, row: int = 0, rep: int = 0, origin: str = "s1") -> dict:
    return {"chat_id": chat_id, "row_index": row, "repetition": rep, "origin_id": origin, "status": "completed",
            "ended_reason": "script_done", "divergence_turn": None, "turn_count": 1, "avg_latency_ms": 10.0,
            "input_tokens": 1, "output_tokens": 1, "error": None, "branch_category": None, "persona_name": None}


def _data(user_message: str, answer: str, original: str) -> dict:
    turn = _turn("c1", answer, user_message)
    production = {0: {"origin_id": "s1", "persona_name": "Ann", "branch_category": "refund",
                      "turns": [{"turn_index": 0, "user_message": user_message, "assistant_message": original,
                                 "tool_calls": []}]}}
    return {"execution": {"execution_id": "ex1"}, "metrics": {"total_chats": 1}, "scores": [], "chats": [_chat("c1")],
            "turns": [turn], "production": production, "units": []}


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
    assert "line one\n\n   indented &lt;b&gt;</span>" in page
    # without a baseline the candidate is diffed against production
    assert '<div class="msg">  a  <ins>b</ins>\n</div>' in page
    assert '<div class="msg">a <del>c</del></div>' in page


def test_word_diff_marks_the_words_only_one_side_has():
    assert word_diff("a b c", "a x c") == ("a <ins>b</ins> c", "a <del>x</del> c")
    assert word_diff("<b>", None) == ("<ins>&lt;b&gt;</ins>", "")


def test_side_by_side_diffs_the_candidate_against_the_baseline_and_marks_other_calls():
    call = {"name": "issue_refund", "arguments": {"order_id": "A1", "amount": 5}, "source": "off_script",
            "status": "error"}
    prod = SideTurns("production", False, {0: {"user_message": "hi", "assistant_message": "p", "tool_calls": []}})
    base = SideTurns("baseline", True, {0: {"user_message": "hi", "assistant_message": "we will refund", "tool_calls": []}})
    cand = SideTurns("candidate", True, {0: {"user_message": "hi", "assistant_message": "we refunded", "tool_calls": [call]}})
    (row,) = side_by_side([prod, base, cand], (1, 2))
    assert row.user == "hi" and [c.present for c in row.cells] == [True, True, True]
    assert [s.tag for s in row.cells[0].segments] == [""]  # production as it was
    assert ("del", "will refund") in [(s.tag, s.text) for s in row.cells[1].segments]
    assert ("ins", "refunded") in [(s.tag, s.text) for s in row.cells[2].segments]
    (tool,) = row.cells[2].tools
    assert tool.key_args == "order_id=A1 · amount=5"
    assert [b.text for b in tool.badges] == ["off_script", "error", "not in baseline"]


def _change(origin, change, significant, rows=(0,)):
    return {"origin_id": origin, "rows": list(rows), "a": 1.0, "b": 0.0, "delta": -1.0, "change": change,
            "p_value": 0.01, "significant": significant, "replays": [5, 5]}


def test_a_row_is_regressed_only_on_a_significant_change_of_the_rule_s_metrics():
    changes = {"task_completion": [_change("s1", "regression", True), _change("s2", "regression", False)],
               "output_tokens": [_change("s3", "regression", True), _change("s1", "improvement", True)],
               "csat": [_change("s3", "improvement", True)]}
    quality = {"task_completion", "csat"}
    assert unit_verdicts("s1", changes, quality) == {"task_completion": "regressed", "output_tokens": "improved",
                                                     "csat": "unchanged", "quality": "regressed", "any": "regressed"}
    assert unit_verdicts("s2", changes, quality)["quality"] == "unchanged"  # moved, not significant
    s3 = unit_verdicts("s3", changes, quality)
    assert (s3["quality"], s3["any"]) == ("improved", "regressed")  # better answers, more tokens


def test_the_gate_is_what_compare_fail_on_regression_checks():
    cmp = ExecutionComparison(execution_id="b", baseline="a", metrics=[], significant_regressions=["csat"],
                              significant_improvements=[], regressed_units={"task_completion": ["s1", "s2"]},
                              flaky_rows=[])
    assert regression_gate(cmp) == ["csat", "task_completion on 2 conversations"]
    assert regression_gate(cmp.model_copy(update={"significant_regressions": [], "regressed_units": {}})) == []


def test_repetitions_are_grouped_under_their_conversation_and_identical_replays_shown_once():
    chats = [_chat(f"c{k}", row=0, rep=k) for k in range(3)] + [_chat("d0", row=1, origin="s2")]
    turns = [_turn(f"c{k}", "same answer") for k in range(3)] + [_turn("d0", "other")]
    data = {**_data("hi", "x", "y"), "chats": chats, "turns": turns}
    data["production"][1] = {"origin_id": "s2", "persona_name": None, "branch_category": None, "turns": []}
    page = build_page(data)
    assert [u.rows for u in page.table.units] == [[0], [1]]
    first = page.table.units[0]
    assert first.replays == "3" and len(first.detail.pairs) == 1 and first.detail.picks == []
    assert "all 3 replays" in first.detail.note
    turns[1] = _turn("c1", "another answer")
    first = build_page({**data, "turns": turns}).table.units[0]
    assert len(first.detail.pairs) == 2 and [p.label for p in first.detail.picks] == [
        "row 0 · replay 1", "row 0 · replay 2", "row 0 · replay 3"]
    assert first.detail.picks[0].pair_id == first.detail.picks[2].pair_id != first.detail.picks[1].pair_id


def test_the_histogram_overlays_both_sides_as_shares_and_escapes_its_texts():
    svg = figures.histogram_svg([0.0, 100.0, 100.0, 100.0], [0.0, 0.0, 100.0], scale=(0, 100), unit="%",
                                names=("<b>", "cand"))
    assert svg.startswith("<svg") and "<b>" not in svg and "&lt;b&gt;" in svg
    heights = {m[0]: float(m[1]) for m in re.findall(r'class="(base|cand)"[^>]*height="([\d.]+)"', svg)}
    assert set(heights) == {"base", "cand"}
    assert "3 of 4 chats at 90–100%" in svg and "2 of 3 chats at 0–10%" in svg
    assert figures.histogram_svg(None, []) == ""
    assert figures.bins_for([1.0, 7.0, 10.0], (1, 10)) == [(v - 0.5, v + 0.5) for v in range(1, 11)]


def test_the_report_is_written_readable_by_all(tmp_path):
    out = write_report(_data("hi", "a", "b"), tmp_path / "r.html")
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


def test_the_banner_says_pass_when_the_gate_passes_and_lists_what_did_not_change():
    data = _data("hi", "a", "a")
    data["baseline"] = {"execution_id": "exA", "metrics": {"total_chats": 1}, "gate": [], "changes": {},
                        "deltas": [{"metric": "csat", "column": "avg_csat", "label": "CSAT", "a": 7.0, "b": 7.0,
                                    "delta": 0.0, "significant": False, "direction": "same", "n_units": 1}],
                        "chats": [_chat("b1")], "turns": [_turn("b1", "a")], "scores": []}
    banner = build_page(data).banner
    assert (banner.cls, banner.gate_cls) == ("pass", "pass")
    assert banner.gate == "CI gate: PASS — replay compare ex1 exA --fail-on-regression exits 0"
    assert [(g.kind, g.items) for g in banner.groups] == [("unchanged", ["CSAT"])]
    assert "no metric changed significantly; no conversation worse and no conversation better" in banner.headline
