"""The HTML report in a real browser: headless Chromium (Debian's) opens the file offline and
the page must show the metrics exactly as documented, draw its charts, open each conversation
side by side (production | baseline | candidate), make no request beyond file:// and run none
of the untrusted text. (The demo's report, end to end: test_report_demo.py.)"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from statistics import mean

import pytest

from models.evals import MetricSpec
from tasks.report.render import render_report, write_report

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]
XSS = "<script>alert(1)</script>"
IMG_XSS = '<img src=x onerror="alert(2)">'

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's Chromium (/usr/bin/chromium) is not installed"),
]


def _tool(name, arguments, result, source, status="ok", matched_turn=None):
    return {"name": name, "arguments": arguments, "result": result, "status": status, "source": source,
            "matched_turn": matched_turn}


def _orig(name, arguments, result, status="ok"):
    return {"name": name, "arguments": arguments, "result": result, "status": status}


def _turn(chat_id, i, user, answer, original, tools=(), orig_tools=(), latency=900.0, similarity=1.0,
          user_source="original", error=None):
    return {"chat_id": chat_id, "turn_index": i, "user_message": user, "assistant_message": answer,
            "original_assistant_message": original, "tool_calls": list(tools), "original_tool_calls": list(orig_tools),
            "latency_ms": latency, "similarity": similarity, "user_source": user_source, "error": error}


def report_data() -> dict:
    """4 chats of a support agent: one clean, one diverged at turn 1, one failed off script,
    one whose texts carry markup; a baseline with one significant regression."""
    order = '{"order_id": "A-1042"}'
    order_res = '{"order_id": "A-1042", "status": "shipped", "eta": "2025-11-27", "carrier": "DHL"}'
    turns = [
        _turn("cht_a1", 0, "Hi, I want a refund for the green hoodie, order A-1042.",
              "Sure! Refund RF-48213 for $54.00 is approved; it will be back on your card in 5-7 business days.",
              "Sure! Refund RF-48213 for $54.00 is approved; it will be back on your card in 5-7 business days.",
              [_tool("lookup_order", order, order_res, "recorded", matched_turn=0),
               _tool("create_refund", {"order_id": "A-1042", "amount": 54.0}, '{"refund_id": "RF-48213"}', "recorded", matched_turn=0)],
              [_orig("lookup_order", order, order_res), _orig("create_refund", {"amount": 54.0, "order_id": "A-1042"},
                                                              '{"refund_id": "RF-48213"}')],
              latency=1620.0),
        _turn("cht_a1", 1, "Thanks, do I need to send it back?", "No need to send the hoodie back.",
              "No need to send the hoodie back. Anything else?", latency=540.0, similarity=0.83),
        _turn("cht_b2", 0, "Where is my order A-1042?", "Your order A-1042 has shipped with DHL and should arrive on Nov 27.",
              "Your order A-1042 has shipped with DHL and should arrive on Nov 27.",
              [_tool("lookup_order", order, order_res, "recorded", matched_turn=0)], [_orig("lookup_order", order, order_res)],
              latency=1210.0),
        _turn("cht_b2", 1, "Can you change the delivery address to 5 Rue Oberkampf, Paris?",
              "I have updated the address, the parcel will now go to 5 Rue Oberkampf.",
              "I'm sorry, the parcel has already left the warehouse so I can't change the address. "
              "You can redirect it on the DHL website with tracking number JD0143.",
              [_tool("update_address", {"order_id": "A-1042", "address": "5 Rue Oberkampf, Paris"},
                     '{"error": "order already shipped"}', "nearest", matched_turn=1)],
              [_orig("get_tracking", order, '{"tracking": "JD0143"}')],
              latency=2480.0, similarity=0.31),
        _turn("cht_c3", 0, "Cancel my subscription please.", "I can help with that. Which plan are you on?",
              "I can help with that. Which plan are you on?", latency=700.0),
        _turn("cht_c3", 1, "The yearly one.", None, "Done, your yearly plan is cancelled as of today.",
              [_tool("cancel_subscription", {"plan": "yearly", "effective": "now"},
                     "no recorded call of cancel_subscription with these arguments", "off_script", status="error")],
              [_orig("cancel_subscription", {"plan": "yearly"}, '{"cancelled": true}')],
              latency=3900.0, similarity=0.0, error="OffScriptError: cancel_subscription called off script"),
        _turn("cht_d4", 0, f"My name is {XSS} and my coupon {IMG_XSS} does not work",
              f"Sorry {XSS}, the coupon WINTER10 expired yesterday.",
              "Sorry, the coupon WINTER10 expired on Nov 24.",
              [_tool("check_coupon", {"code": "WINTER10", "note": XSS}, f'{{"valid": false, "msg": "{IMG_XSS}"}}', "live")],
              [_orig("check_coupon", {"code": "WINTER10"}, '{"valid": false}')],
              latency=1330.0, similarity=0.64, user_source="simulated"),
    ]
    chats = [
        {"chat_id": "cht_a1", "row_index": 0, "repetition": 0, "origin_id": "sess_91d9f9b439fc", "status": "completed",
         "ended_reason": "script_done", "divergence_turn": None, "turn_count": 2, "avg_latency_ms": 1080.0,
         "input_tokens": 3120, "output_tokens": 187, "error": None, "branch_category": "refund",
         "persona_name": "Maya, impatient shopper"},
        {"chat_id": "cht_b2", "row_index": 1, "repetition": 0, "origin_id": "sess_0c4e88d1a7b2", "status": "completed",
         "ended_reason": "script_done", "divergence_turn": 1, "turn_count": 2, "avg_latency_ms": 1845.0,
         "input_tokens": 2875, "output_tokens": 164, "error": None, "branch_category": "order_status",
         "persona_name": "Tom, polite"},
        {"chat_id": "cht_c3", "row_index": 2, "repetition": 0, "origin_id": "sess_5f2a9e0c3d11", "status": "failed",
         "ended_reason": "off_script", "divergence_turn": 1, "turn_count": 2, "avg_latency_ms": 2300.0,
         "input_tokens": 1990, "output_tokens": 41, "error": "OffScriptError: cancel_subscription called with "
         "arguments production never recorded; rerun with --off-script nearest", "branch_category": "cancellation",
         "persona_name": "Lena"},
        {"chat_id": "cht_d4", "row_index": 3, "repetition": 0, "origin_id": "sess_e71b20f4c9aa", "status": "completed",
         "ended_reason": "user_ended", "divergence_turn": None, "turn_count": 1, "avg_latency_ms": 1330.0,
         "input_tokens": 1402, "output_tokens": 33, "error": None, "branch_category": XSS, "persona_name": IMG_XSS},
    ]
    scores = []
    for t in turns:
        sim = t["similarity"]
        scores.append({"chat_id": t["chat_id"], "turn_index": t["turn_index"], "evaluator": "answer_similarity",
                       "value": sim, "passed": sim >= 0.6, "label": None,
                       "reason": None if sim >= 0.6 else f"similarity {sim:.2f} < 0.60 {XSS}", "source": "heuristic"})
    for cid, csat, done in (("cht_a1", 9.0, 1.0), ("cht_b2", 4.0, 0.0), ("cht_c3", 2.0, 0.0), ("cht_d4", 7.5, 1.0)):
        scores.append({"chat_id": cid, "turn_index": None, "evaluator": "csat", "value": csat, "passed": csat >= 6,
                       "label": None, "reason": f"the user would rate this {csat}/10", "source": "llm:gpt-4o-mini"})
        scores.append({"chat_id": cid, "turn_index": None, "evaluator": "task_completion", "value": done,
                       "passed": done == 1.0, "label": "resolved" if done else "unresolved",
                       "reason": "the outcome matches production" if done else "the expected outcome was not reached",
                       "source": "heuristic"})
    by = {}
    for s in scores:
        by.setdefault(s["evaluator"], []).append(s["value"])
    metrics = {
        "execution_id": "exe_7f3a9c21",
        "total_chats": 4, "completed_chats": 3, "completion_pct": 75.0,
        "avg_output_tokens": mean(c["output_tokens"] for c in chats),  # 106.25
        "avg_chat_latency_ms": mean(c["avg_latency_ms"] for c in chats),  # 1638.75
        "avg_turn_count": mean(c["turn_count"] for c in chats),  # 1.75
        "avg_csat": mean(by["csat"]),  # 5.625
        "avg_answer_similarity": mean(by["answer_similarity"]),
        "avg_task_completion": mean(by["task_completion"]),
        "evaluated_at": datetime(2025, 11, 25, 3, 2, 11),
    }
    base_metrics = {"total_chats": 4, "completed_chats": 4, "completion_pct": 100.0, "avg_output_tokens": 98.5,
                    "avg_chat_latency_ms": 1910.2, "avg_turn_count": 2.0, "avg_csat": 7.9,
                    "avg_answer_similarity": 0.91, "avg_task_completion": 1.0}
    deltas = [
        {"metric": "task_completion", "a": 1.0, "b": 0.5, "delta": -0.5, "lo": -0.875, "hi": -0.125,
         "significant": True, "direction": "regression"},
        {"metric": "csat", "a": 7.9, "b": 5.625, "delta": -2.275, "lo": -5.1, "hi": 0.35, "significant": False,
         "direction": "regression"},
        {"metric": "answer_similarity", "a": 0.91, "b": 0.683, "delta": -0.227, "lo": -0.52, "hi": 0.04,
         "significant": False, "direction": "regression"},
        {"metric": "latency", "a": 1910.2, "b": 1638.75, "delta": -271.45, "lo": -820.0, "hi": 260.0,
         "significant": False, "direction": "improvement"},
        {"metric": "failed", "a": 0.0, "b": 0.25, "delta": 0.25, "lo": 0.0, "hi": 0.75, "significant": False,
         "direction": "regression"},
    ]
    baseline = {"execution_id": "exe_5d2b1e08", "name": "support-agent nightly", "agent_ref": "examples.prod_agent:respond",
                "metrics": base_metrics, "deltas": deltas, "gate": ["task_completion"],
                "verdicts": ["over 4 production conversations: Task completion regression (-50.0%)",
                             "Task completion: worse on rows 1, 2 (not significant: too few replays, use --repeat 5)"],
                **_baseline_side(chats, turns, scores)}
    units = _units(chats, scores, baseline)
    baseline["changes"] = {"task_completion": [
        {"origin_id": "sess_0c4e88d1a7b2", "rows": [1], "a": 100.0, "b": 0.0, "delta": -100.0, "change": "regression",
         "p_value": 1.0, "significant": False, "replays": [1, 1]},
        {"origin_id": "sess_5f2a9e0c3d11", "rows": [2], "a": 100.0, "b": 0.0, "delta": -100.0, "change": "regression",
         "p_value": 1.0, "significant": True, "replays": [1, 1]}]}
    production = {c["row_index"]: {"origin_id": c["origin_id"], "persona_name": c["persona_name"],
                                   "branch_category": c["branch_category"],
                                   "turns": [{"turn_index": t["turn_index"], "user_message": t["user_message"],
                                              "assistant_message": t["original_assistant_message"],
                                              "tool_calls": t["original_tool_calls"]}
                                             for t in turns if t["chat_id"] == c["chat_id"]]} for c in chats}
    return {
        "execution": {"execution_id": "exe_7f3a9c21", "run_test_id": "rt_2b8e61", "name": "support-agent nightly",
                      "scenario_id": "scn_4b1e0d", "scenario_name": "support-agent_replay_24_11_25_v3",
                      "agent_ref": "examples.dev_agent:respond", "mode": "replay", "tool_mode": "recorded",
                      "status": "completed", "started_at": datetime(2025, 11, 25, 3, 0, 5),
                      "ended_at": "2025-11-25T03:01:47.500000"},
        "metrics": metrics, "baseline": baseline, "units": units, "production": production,
        "scores": scores, "chats": chats, "turns": turns,
    }


def _baseline_side(chats, turns, scores) -> dict:
    """The baseline: the same conversations, answered as production did (ids ``b_...``)."""
    b_chats = [dict(c, chat_id="b_" + c["chat_id"], status="completed", error=None, divergence_turn=None)
               for c in chats]
    b_turns = [dict(t, chat_id="b_" + t["chat_id"], assistant_message=t["original_assistant_message"],
                    tool_calls=[dict(c, source="recorded") for c in t["original_tool_calls"]], error=None)
               for t in turns]
    b_scores = [dict(s, chat_id="b_" + s["chat_id"], value=1.0 if s["evaluator"] == "task_completion" else s["value"],
                     passed=True) for s in scores]
    return {"chats": b_chats, "turns": b_turns, "scores": b_scores}


def _units(chats, scores, baseline) -> list:
    """Per metric, per conversation, both sides' values: the aggregation compare uses."""
    from models.evals import EvalScore
    from tasks.evaluate.metrics import metrics
    from tasks.report.data import _units as units_of

    specs = [MetricSpec(name="task_completion", label="Task completion", aggregation="pass_rate", unit="%",
                        scale=(0.0, 100.0), rank=30),
             MetricSpec(name="csat", label="CSAT", unit="/10", scale=(1.0, 10.0), digits=2, rank=40)]

    def of(cs, ss):
        return metrics(cs, [EvalScore(execution_id="", evaluator_version="1", **{k: s[k] for k in ("chat_id", "turn_index", "evaluator",
                                                                             "value", "passed", "label", "reason",
                                                                             "source")}) for s in ss], specs)

    return units_of(of(chats, scores), of(baseline["chats"], baseline["scores"]))


def documented_value(key: str, value) -> str:
    """The data-value rule of tasks/report/render.py's docstring, written out independently:
    counts whole, a metric with its spec's digits (the built-in specs here), else 2 digits."""
    from tasks.evaluate.evaluators import BUILTINS
    from tasks.evaluate.metrics import CHAT_METRICS

    if value is None or value != value:
        return "n/a"
    digits = {s.metric_column: s.digits for s in (*CHAT_METRICS, *(c.spec for c in BUILTINS.values()))}
    if key in ("total_chats", "completed_chats", "failed_chats"):
        return format(float(value), ".0f")
    return format(float(value), f".{digits.get(key, 2)}f")


def test_report_renders_offline_in_chromium(tmp_path, record_property):
    from playwright.sync_api import sync_playwright

    started = time.monotonic()
    data = report_data()
    out = write_report(data, tmp_path / "report" / "report.html")
    assert out.exists() and not list(out.parent.glob("*.tmp"))
    html_text = out.read_text(encoding="utf-8")
    assert html_text == render_report(data)  # pure: the same data gives the same page
    assert XSS not in html_text and IMG_XSS not in html_text  # escaped everywhere, charts included
    assert html_text.count("<script") == 1  # the page's own script; no chart library
    assert "https://" not in html_text.replace("http://www.w3.org/2000/svg", "") and "<link" not in html_text

    console_errors, page_errors, requests, dialogs = [], [], [], []
    shot = tmp_path / "report.png"  # the top of the page: the banner, KPI cards, the metric table
    shot_chat = tmp_path / "report-side-by-side.png"  # a conversation opened
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: page_errors.append(str(exc)))
            page.on("request", lambda r: requests.append(r.url))
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(out.as_uri(), wait_until="load")
            page.screenshot(path=str(shot), full_page=False)

            assert page.title().startswith("Replay report · support-agent nightly")
            assert "exe_7f3a9c21" in page.title()

            # the banner: the gate's reasons as compare gave them
            assert page.locator("#verdict").get_attribute("data-gate") == "fail"
            assert "significant regression in task_completion" in page.locator("#verdict .gate").inner_text()

            # charts: inline SVG, one per quality metric, both sides
            assert page.locator("#distributions svg.hist").count() == 2
            assert page.locator("#distributions svg.hist rect.base").count() >= 1
            assert page.locator("#metrics svg.ci").count() == len(data["baseline"]["deltas"])

            # KPI cards: the number shown is the documented formatting of the input metric
            metrics = data["metrics"]
            # the chat count, the share of completed chats, then the metrics in their specs' rank
            # (quality first, then costs), then a column no spec describes
            expected_keys = ["total_chats", "completion_pct", "avg_task_completion", "avg_csat",
                             "avg_chat_latency_ms", "avg_output_tokens", "avg_turn_count", "avg_answer_similarity"]
            cards = page.locator(".kpi")
            assert [cards.nth(i).get_attribute("data-metric") for i in range(cards.count())] == expected_keys
            for key in expected_keys:
                card = page.locator(f'.kpi[data-metric="{key}"]')
                want = documented_value(key, metrics[key])
                assert card.get_attribute("data-value") == want, key
                assert card.locator(".kpi-num").inner_text() == want, key
            literal = {k: page.locator(f'.kpi[data-metric="{k}"]').get_attribute("data-value")
                       for k in ("total_chats", "completion_pct", "avg_chat_latency_ms", "avg_output_tokens",
                                 "avg_turn_count", "avg_csat", "avg_task_completion")}
            assert literal == {"total_chats": "4", "completion_pct": "75.0", "avg_chat_latency_ms": "1639",
                               "avg_output_tokens": "106.2", "avg_turn_count": "1.75", "avg_csat": "5.62",
                               "avg_task_completion": "0.5"}
            assert page.locator('.kpi[data-metric="avg_chat_latency_ms"] .kpi-unit').inner_text() == "ms"

            # the metric table: one significant regression
            assert page.locator('#metrics tr[data-verdict="regression"][data-significant="true"]').count() == 1

            # one line a conversation; the significant one is "regressed", the other moved only
            assert page.locator("tbody.unit").count() == len(data["chats"])
            assert page.locator('tbody.unit[data-rows="2"]').get_attribute("data-v-quality") == "regressed"
            assert page.locator('tbody.unit[data-rows="1"]').get_attribute("data-v-quality") == "unchanged"
            page.click('button.filter[data-filter="regressed"]')
            assert page.eval_on_selector_all("tbody.unit", "els => els.filter(e => !e.hidden).length") == 1
            page.click('button.filter[data-filter="all"]')

            # a line opens production | baseline | candidate; the words that changed are marked
            row = page.locator('tbody.unit[data-rows="1"]')
            assert row.locator("tr.detail").is_hidden()
            row.locator("tr.summary").click()
            turn1 = row.locator(".pair .turn[data-turn-index='1']")
            assert turn1.is_visible() and "diverged" in turn1.get_attribute("class")
            cells = turn1.locator(".cell")
            assert cells.count() == 3
            assert cells.nth(2).locator("ins").count() > 0 and cells.nth(1).locator("del").count() > 0
            assert cells.nth(2).locator(".src-nearest").count() == 1
            assert "order_id=A-1042" in cells.nth(2).locator(".tool-args").inner_text()
            page.screenshot(path=str(shot_chat), full_page=False)

            # where each tool answer came from
            for r in range(4):
                page.locator(f'tbody.unit[data-rows="{r}"] tr.summary').click() if r != 1 else None
            for src in ("recorded", "nearest", "off_script", "live"):
                assert page.locator(f".pair .tool .src-{src}").count() >= 1, src
            # every conversation open, long texts and JSON included: nothing wider than the screen
            assert page.evaluate("document.documentElement.scrollWidth") <= 1280

            # the untrusted text is shown as text and never ran
            d4 = page.locator('tbody.unit[data-rows="3"]')
            assert XSS in d4.locator(".user-msg").first.inner_text()
            assert IMG_XSS in d4.inner_text()
            assert page.locator("tbody.unit script, tbody.unit img, #distributions script").count() == 0
            page.wait_for_timeout(200)
        finally:
            browser.close()

    elapsed = time.monotonic() - started
    print(f"\nreport screenshot: {shot}\nside-by-side screenshot: {shot_chat}\n"
          f"report file: {out} ({out.stat().st_size / 1e6:.2f} MB), {elapsed:.1f} s")
    record_property("screenshot", str(shot))
    record_property("screenshot_transcript", str(shot_chat))
    record_property("report", str(out))
    assert shot.stat().st_size > 10_000 and shot_chat.stat().st_size > 10_000
    assert dialogs == [], dialogs
    assert page_errors == [], page_errors
    assert console_errors == [], console_errors
    assert requests and all(u.startswith("file://") for u in requests), requests
    assert elapsed < 30, f"took {elapsed:.1f} s"
