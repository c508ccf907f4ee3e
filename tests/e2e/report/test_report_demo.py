"""The demo's report (v2 against v1, each row replayed 5 times) as a user sees it: headless
Chromium at 1280 px opens the file the CLI wrote. The verdict banner says what compare and the
CI gate say, the filter leaves the rows compare found regressed, a row opens production |
baseline | candidate with the words that changed marked, the page fits the screen, the file is
small and readable by all; without a baseline the same page compares with production.
Screenshots are saved in the test's output dir (their paths are printed)."""

from __future__ import annotations

import json
import stat

import pytest
from cli_helpers import replay
from test_report_browser import CHROMIUM, LAUNCH_ARGS

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's Chromium (/usr/bin/chromium) is not installed")]

WIDTH = 1280
MAX_BYTES = 2_000_000


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo's data dir, its result (--json), and its report without a baseline."""
    d = tmp_path_factory.mktemp("report-demo") / "data"
    r = replay(d, "--json", "demo", timeout=240)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    alone = d.parent / "alone.html"
    r = replay(d, "report", result["run_v2"]["execution_id"], "--out", alone, timeout=120)
    assert r.returncode == 0, r.stderr
    return d, result, alone


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield b
        b.close()


def _open(browser, path):
    page = browser.new_page(viewport={"width": WIDTH, "height": 900})
    errors, requests = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda req: requests.append(req.url))
    page.goto(path.as_uri(), wait_until="load")
    return page, errors, requests


def _visible_rows(page) -> list[str]:
    return page.eval_on_selector_all("tbody.unit", "els => els.filter(e => !e.hidden).map(e => e.dataset.rows)")


def _no_horizontal_scroll(page) -> None:
    widths = page.evaluate("""() => ({page: document.documentElement.scrollWidth,
        tables: Array.from(document.querySelectorAll('table')).filter(t => t.offsetParent)
                     .map(t => [t.scrollWidth, t.clientWidth, t.getBoundingClientRect().right])})""")
    assert widths["page"] <= WIDTH, widths
    for scroll, client, right in widths["tables"]:
        assert scroll <= client + 1 and right <= WIDTH, widths  # no last column cut


def test_the_demo_report_answers_better_or_worse_and_where(demo, browser, tmp_path):
    d, result, _alone = demo
    report = d / "reports" / f"{result['run_v2']['execution_id']}.html"
    v1, v2 = result["run"]["execution_id"], result["run_v2"]["execution_id"]
    size = report.stat().st_size
    mode = stat.S_IMODE(report.stat().st_mode)
    gate = replay(d, "compare", v2, v1, "--fail-on-regression", timeout=120)
    shots = {name: tmp_path / f"report-{name}.png" for name in ("top", "filter", "side-by-side")}

    page, errors, requests = _open(browser, report)
    try:
        # the banner: compare's verdicts and the CI gate's result, which is what the CLI returns
        banner = page.locator("#verdict")
        text = banner.inner_text()
        assert gate.returncode == 1 and page.locator("#verdict").get_attribute("data-gate") == "fail"
        assert "CI gate: FAIL" in text and f"replay compare {v2} {v1} --fail-on-regression exits 1" in text
        reasons = gate.stderr.split("significant regression in ", 1)[1].split(" (")[0]
        assert reasons in text  # the same reasons, in the same words
        assert "no metric changed significantly" in text
        assert "Task completion worse on rows 1, 6" in banner.locator(".group.regression").inner_text()
        assert "Task completion better on rows 3, 9" in banner.locator(".group.improvement").inner_text()
        page.screenshot(path=str(shots["top"]))

        # KPI cards: units beside the numbers, the spec's digits
        card = page.locator('.kpi[data-metric="avg_task_completion"]')
        assert card.locator(".kpi-num").inner_text() == "75.0" and card.locator(".kpi-unit").inner_text() == "%"
        assert page.locator('.kpi[data-metric="avg_csat"] .kpi-unit').inner_text() == "/10"

        # one line a production conversation: 12 rows, their 5 replays a side grouped under them
        assert page.locator("tbody.unit").count() == 12
        assert page.locator('tbody.unit[data-rows="1"] td').nth(2).inner_text().startswith("5 · 5")

        # the filter: "regressed" leaves the rows compare found regressed
        page.click('button.filter[data-filter="regressed"]')
        assert _visible_rows(page) == ["1", "6"]
        page.select_option("#verdict-rule", "task_completion")
        assert _visible_rows(page) == ["1", "6"]
        page.select_option("#verdict-rule", "any")  # output tokens went up on row 3
        assert _visible_rows(page) == ["1", "3", "6"]
        page.select_option("#verdict-rule", "quality")
        page.click('button.filter[data-filter="improved"]')
        assert _visible_rows(page) == ["3", "4", "9"]
        page.click('button.filter[data-filter="regressed"]')
        assert page.locator('button.filter[data-filter="regressed"]').inner_text() == "regressed (2)"
        row1 = page.locator('tbody.unit[data-rows="1"]')
        cell = row1.locator("td.metric-cell").nth(3)  # task completion
        assert cell.locator(".val").inner_text() == "0.0%" and cell.locator(".delta.bad").inner_text() == "-100.0%"
        page.locator("#rows").scroll_into_view_if_needed()
        page.screenshot(path=str(shots["filter"]))

        # sorting: task completion's delta, worst first
        page.click("button.filter[data-filter='all']")
        page.click("#units th[data-metric='task_completion']")
        assert _visible_rows(page)[:2] in (["1", "6"], ["6", "1"])

        # a row opens production | baseline | candidate, turn by turn, the changed words marked
        row1.locator("tr.summary").click()
        pair = row1.locator(".pair:not([hidden])")
        assert pair.is_visible()
        heads = pair.locator(".side-head .side-title").all_inner_texts()
        assert [h.lower().split(" ·")[0] for h in heads] == ["production", "baseline", "candidate"]
        turn0 = pair.locator(".turn[data-turn-index='0'] .cell")
        assert turn0.count() == 3
        assert turn0.nth(2).locator("ins").count() > 0 and turn0.nth(1).locator("del").count() > 0
        assert turn0.nth(0).locator("ins, del").count() == 0  # production is shown as it was
        assert "issue_refund" in turn0.nth(2).locator(".tool-name").all_inner_texts()
        assert turn0.nth(2).locator(".src-off_script").count() == 1  # where the tool's answer came from
        assert "order_id=A1150" in turn0.nth(2).locator(".tool-args").first.inner_text()
        assert "all 5 replays of each side gave the same conversation" in row1.inner_text()
        _no_horizontal_scroll(page)
        pair.scroll_into_view_if_needed()
        page.evaluate("window.scrollBy(0, -60)")
        page.screenshot(path=str(shots["side-by-side"]))
    finally:
        page.close()
    for name, shot in shots.items():
        print(f"screenshot ({name}): {shot}")
    print(f"report: {report} ({size / 1e6:.2f} MB, mode {mode:o})")
    assert errors == [] and requests and all(u.startswith("file://") for u in requests), (errors, requests)
    assert size <= MAX_BYTES, size
    assert mode == 0o644


def test_without_a_baseline_the_same_page_compares_with_production(demo, browser, tmp_path):
    d, result, alone = demo
    assert stat.S_IMODE(alone.stat().st_mode) == 0o644
    page, errors, _ = _open(browser, alone)
    try:
        text = page.locator("#verdict").inner_text()
        assert "Against production (no baseline)" in text and "No CI gate without a baseline" in text
        assert page.locator("tbody.unit").count() == 12
        page.click('button.filter[data-filter="diverged"]')
        diverged = _visible_rows(page)
        assert diverged and "8" not in diverged  # row 8 follows production in every replay
        row = page.locator('tbody.unit[data-rows="1"]')
        row.locator("tr.summary").click()
        pair = row.locator(".pair:not([hidden])")
        assert pair.locator(".side-head").count() == 2  # production | candidate
        assert pair.locator(".cell").nth(1).locator("ins").count() > 0  # candidate against production
        _no_horizontal_scroll(page)
        shot = tmp_path / "report-no-baseline.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot (no baseline): {shot}")
    finally:
        page.close()
    assert errors == []


def test_report_numbers_equal_sql(demo, browser):
    """The cards show execution_metrics' values with the specs' digits; one line a row."""
    from tasks.report.render import format_metric

    d, result, _alone = demo
    ex = result["run_v2"]["execution_id"]
    report = d / "reports" / f"{ex}.html"
    metrics = json.loads(replay(d, "sql", f"select * from execution_metrics where execution_id = '{ex}'",
                                "--format", "json").stdout)[0]
    n_rows = json.loads(replay(d, "sql", f"select count(distinct row_index) n from chats where execution_id = '{ex}'",
                               "--format", "json").stdout)[0]["n"]
    page, errors, _ = _open(browser, report)
    try:
        cards = page.eval_on_selector_all(".kpi", "els => els.map(e => [e.dataset.metric, e.dataset.value])")
        rows = page.locator("tbody.unit").count()
    finally:
        page.close()
    assert errors == [] and len(cards) >= 8
    for key, shown in cards:
        assert shown == format_metric(key, metrics.get(key)), key
    assert rows == n_rows == 12
