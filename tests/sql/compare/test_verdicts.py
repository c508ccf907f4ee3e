"""Verdicts on agents whose truth is known: each truth agent (tests/support/truth_agents.py) is
replayed on the bundled sample (12 conversations) and on the generated shop set (120
conversations with state-changing tools and free-text arguments), every row 5 times, scored,
and compared with the oracle's run by ``replay compare B A --json`` as a user would. What each
verdict must say is what the agent is known to have done:

- the oracle against itself (A/A): nothing significant, no row flagged;
- answers reworded: >= 90 % of turns pass ground truth, no significant regression;
- free-text arguments reworded, key arguments kept: >= 95 % of turns pass tool_call_match, no
  task_completion regression;
- an echo bot: <= 5 % pass ground truth, significant regressions in ground truth, tool calls
  and task completion;
- state-changing actions skipped: significant regressions in task completion and tool calls,
  and the rows flagged in task completion are the rows whose production acted (precision 100 %,
  recall >= 90 %);
- a crash from turn 2: the run fails, no metric claims an improvement.

And the demo: v2's lost hand-over is a significant task_completion regression on exactly the
rows that handed over in production, and each metric is one number in execution_metrics,
compare and the report.
"""

from __future__ import annotations

import html
import json
import re

import pytest
from cli_helpers import replay_all
from truth_data import WRITE_TOOLS

REPEAT = 5
SETS = ("sample", "shop")
AGENTS = ("oracle", "reworded", "reworded_args", "echo", "skip_writes", "crash_from_turn_2")


def run_of(replayed, which: str, agent: str):
    """The run of ``agent`` on ``which`` (the crashing agent with the default failure limit, so
    that its run can fail; the oracle's A/A partner is a second run)."""
    if agent == "crash_from_turn_2":
        return replayed(which, agent, REPEAT, max_failure_rate=0.2)
    return replayed(which, agent, REPEAT, run=1 if agent == "oracle" else 0)


@pytest.fixture(scope="module")
def verdicts(replayed):
    """{(set, agent): the JSON of `replay compare <agent's run> <oracle's run> --json`}."""
    calls, keys = [], []
    for which in SETS:
        base = replayed(which, "oracle", REPEAT)
        for agent in AGENTS:
            b = run_of(replayed, which, agent)
            calls.append((base[0].settings.data_dir, ["--json", "compare", b[1].execution_id, base[1].execution_id]))
            keys.append((which, agent))
    out = {}
    for key, r in zip(keys, replay_all(calls, timeout=300), strict=True):
        assert r.returncode == 0, r.stderr
        out[key] = json.loads(r.stdout)
    return out


def metric(cmp: dict, name: str) -> dict:
    return next(m for m in cmp["metrics"] if m["metric"] == name)


def flagged(cmp: dict, name: str, change: str = "regression") -> set[str]:
    """The conversations a metric's rows say changed significantly (``change``)."""
    return {u["origin_id"] for u in metric(cmp, name)["rows"] if u["change"] == change and u["significant"]}


@pytest.mark.parametrize("which", SETS)
def test_a_a_nothing_is_significant(verdicts, which):
    cmp = verdicts[which, "oracle"]
    assert cmp["significant_regressions"] == [] and cmp["significant_improvements"] == []
    assert cmp["regressed_units"] == {} and cmp["flaky_rows"] == []
    assert all(not u["significant"] for m in cmp["metrics"] for u in m["rows"])
    gt = metric(cmp, "ground_truth_match")
    assert gt["a"] == gt["b"] == 100.0 and gt["noise_floor"] == 0.0
    assert gt["n_units"] == (12 if which == "sample" else 120) and gt["n_rows"] == gt["n_units"]
    lat = metric(cmp, "latency")  # sub-millisecond differences are below the minimum effect (10 ms)
    assert not lat["significant"] and lat["min_effect"] >= 10


@pytest.mark.parametrize("which", SETS)
def test_answers_reworded_pass_ground_truth(verdicts, which):
    cmp = verdicts[which, "reworded"]
    assert metric(cmp, "ground_truth_match")["b"] >= 90.0
    assert cmp["significant_regressions"] == [] and cmp["regressed_units"] == {}


@pytest.mark.parametrize("which", SETS)
def test_free_text_arguments_reworded_pass_tool_calls(verdicts, which):
    cmp = verdicts[which, "reworded_args"]
    assert metric(cmp, "tool_call_match")["b"] >= 95.0
    tc = metric(cmp, "task_completion")
    assert tc["direction"] != "regression" and not flagged(cmp, "task_completion")
    assert tc["b"] == tc["a"]


@pytest.mark.parametrize("which", SETS)
def test_an_echo_bot_fails(verdicts, which):
    cmp = verdicts[which, "echo"]
    assert metric(cmp, "ground_truth_match")["b"] <= 5.0
    assert {"ground_truth_match", "tool_call_match", "task_completion"} <= set(cmp["significant_regressions"])


def acted(replayable) -> set[str]:
    """The conversations in which production made a state-changing call that succeeded."""
    from tasks.store import catalog

    with catalog.reader(replayable.settings) as con:
        rows = con.execute(
            "select distinct session_id from (select session_id, unnest(tool_calls) c from turns) "
            "where c.name in (select unnest(?)) and coalesce(c.status, 'ok') not in ('error', 'failed')",
            [list(WRITE_TOOLS)]).fetchall()
    return {r[0] for r in rows}


@pytest.mark.parametrize("which", SETS)
def test_skipped_actions_are_flagged_on_the_rows_that_acted(verdicts, replayed, which):
    cmp = verdicts[which, "skip_writes"]
    assert {"task_completion", "tool_call_match"} <= set(cmp["significant_regressions"])
    truth = acted(replayed(which, "oracle", REPEAT)[0]) & set(replayed(which, "oracle", REPEAT)[0].turns)
    found = flagged(cmp, "task_completion")
    assert truth and found <= truth  # precision 100 %
    assert len(found & truth) / len(truth) >= 0.9  # recall
    assert cmp["regressed_units"]["task_completion"] == sorted(found) or set(
        cmp["regressed_units"]["task_completion"]) == found


@pytest.mark.parametrize("which", SETS)
def test_a_crash_fails_the_run_and_claims_no_improvement(verdicts, replayed, which):
    _, info, chats, _, _ = run_of(replayed, which, "crash_from_turn_2")
    assert info.status == "failed" and info.failed_chats == sum(c["status"] == "failed" for c in chats) > 0
    cmp = verdicts[which, "crash_from_turn_2"]
    assert cmp["significant_improvements"] == []
    assert all(m["direction"] != "improvement" for m in cmp["metrics"])
    better = [(m["metric"], u) for m in cmp["metrics"] for u in m["rows"] if u["change"] == "improvement"]
    assert better == []
    assert {"completion", "failed"} <= set(cmp["significant_regressions"])
    # cost is compared only where both sides completed: the one-turn conversations
    for name in ("input_tokens", "output_tokens", "turn_count", "latency"):
        m = metric(cmp, name)
        assert m["n_units"] < metric(cmp, "completion")["n_units"] and "both sides completed" in m["note"]


# --------------------------------------------------------------------------- the demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from models.settings import load_settings
    from replay.demo import run_demo

    settings = load_settings(data_dir=tmp_path_factory.mktemp("demo") / "data")
    return settings, run_demo(settings)


def test_the_demo_v2_regression_is_the_hand_over_rows(demo):
    from tasks.store import catalog

    settings, result = demo
    with catalog.reader(settings) as con:
        handed = {r[0] for r in con.execute(
            "select distinct session_id from (select session_id, unnest(tool_calls) c from turns) "
            "where c.name = 'transfer_to_human'").fetchall()}
        rows = {o: i for i, o in con.execute("select row_index, origin_id from scenario_rows where scenario_id = ?",
                                             [result["scenario"]["scenario_id"]]).fetchall()}
    cmp = result["compare"]
    tc = metric(cmp, "task_completion")
    worse = [u for u in tc["rows"] if u["change"] == "regression"]
    assert handed and {u["origin_id"] for u in worse} == handed
    assert all(u["significant"] and u["replays"] == [REPEAT, REPEAT] for u in worse)
    assert sorted(r for u in worse for r in u["rows"]) == sorted(rows[o] for o in handed)
    assert cmp["regressed_units"]["task_completion"] == sorted(handed)


def report_cards(path) -> dict[str, str]:
    text = path.read_text()
    return {m[1]: html.unescape(m[2]) for m in re.finditer(r'class="kpi[^"]*" data-metric="([^"]+)" data-value="([^"]*)"',
                                                             text)} or {
        m[1]: html.unescape(m[2]) for m in re.finditer(r'data-metric="([^"]+)" data-value="([^"]*)"', text)}


def delta_rows(path) -> dict[str, list[str]]:
    text = path.read_text()
    out = {}
    for m in re.finditer(r'<tr data-metric="([^"]+)" data-verdict[^>]*>(.*?)</tr>', text, re.S):
        out[m[1]] = [html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", m[2], re.S)]
    return out


def test_one_number_per_metric_in_execution_metrics_compare_and_the_report(demo):
    from pathlib import Path

    from models.evals import MetricSpec
    from tasks.evaluate.metrics import format_value
    from tasks.report.formats import format_metric
    from tasks.store import catalog

    settings, result = demo
    a_id, b_id = result["run"]["execution_id"], result["run_v2"]["execution_id"]
    with catalog.reader(settings) as con:
        cur = con.execute("select * from execution_metrics")
        cols = [d[0] for d in cur.description]
        em = {r["execution_id"]: r for r in (dict(zip(cols, row, strict=True)) for row in cur.fetchall())}
    cmp = result["compare"]
    cards, table = report_cards(Path(result["report"])), delta_rows(Path(result["report"]))
    assert cards and table
    for m in cmp["metrics"]:
        s = MetricSpec.model_validate(cmp["specs"][m["metric"]])
        col = s.metric_column
        # every conversation completed on both sides: compare's values are the executions'
        assert m["a"] == pytest.approx(em[a_id][col], abs=1e-9), m["metric"]
        assert m["b"] == pytest.approx(em[b_id][col], abs=1e-9), m["metric"]
        # the run's own figures (replay run prints them) are the same row
        assert result["run_v2"]["metrics"][col] == pytest.approx(em[b_id][col], abs=1e-9)
        # the report's card shows that number with the spec's digits, its delta table the same
        assert cards[col] == format_metric(col, em[b_id][col], {col: s}) == format_value(s, m["b"], unit=False)
        assert table[m["metric"]][1:4] == [format_value(s, m["a"]), format_value(s, m["b"]),
                                           format_value(s, m["delta"], sign=True)]
