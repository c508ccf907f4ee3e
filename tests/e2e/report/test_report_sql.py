"""The report of a real execution (the demo's run), opened in headless Chromium: it renders,
no console errors, and the numbers on the page equal the SQL tables."""

import json

import pytest
from cli_helpers import replay
from test_report_browser import CHROMIUM, LAUNCH_ARGS

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's Chromium (/usr/bin/chromium) is not installed")]


def test_report_numbers_equal_sql(tmp_path, record_property):
    from playwright.sync_api import sync_playwright

    from tasks.report.render import format_metric

    d = tmp_path / "d"
    demo = json.loads(replay(d, "--json", "demo", timeout=180).stdout)
    ex = demo["run"]["execution_id"]
    # a second run of the same scenario as the baseline
    base = json.loads(replay(d, "--json", "run", "--scenario", demo["scenario"]["scenario_id"],
                             "--agent", "examples.support_agent:oracle", timeout=180).stdout)["execution_id"]
    out = tmp_path / "report.html"
    r = replay(d, "--json", "report", ex, "--baseline", base, "--out", out, timeout=180)
    assert r.returncode == 0, r.stderr
    metrics = json.loads(replay(d, "sql", f"select * from execution_metrics where execution_id = '{ex}'",
                                "--format", "json").stdout)[0]
    n_chats = json.loads(replay(d, "sql", f"select count(*) n from chats where execution_id = '{ex}'",
                                "--format", "json").stdout)[0]["n"]
    errors, requests = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda req: requests.append(req.url))
        page.goto(out.as_uri())
        page.wait_for_selector(".main-svg")
        cards = page.eval_on_selector_all(".kpi", "els => els.map(e => [e.dataset.metric, e.dataset.value])")
        rows = page.locator("#sessions tbody tr[data-chat-id]").count()
        shot = tmp_path / "report-sql.png"
        page.screenshot(path=str(shot))
        browser.close()
    print(f"screenshot: {shot}")
    record_property("screenshot", str(shot))
    assert errors == [] and all(u.startswith("file://") for u in requests)
    assert len(cards) >= 8
    for key, shown in cards:
        assert shown == format_metric(key, metrics.get(key)), key
    assert rows == n_chats == 12 * 5  # one row a session of the sample, each replayed 5 times
