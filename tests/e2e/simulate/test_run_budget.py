"""`replay run --dry-run` (expected calls, tokens, cost; nothing written) and a budget
(`--budget-tokens` / `--budget-usd`: no new chat once spent, the rest resumable), through the CLI."""

import json

from cli_helpers import ROOT, replay, replay_env, sample_scenario

AGENT = "examples.support_agent:agent"
ENV = replay_env(PYTHONPATH=str(ROOT / "tests" / "support"))


def sql(d, query: str) -> list[dict]:
    r = replay(d, "sql", query, "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_dry_run_expects_what_a_run_spends(tmp_path):
    d = tmp_path / "d"
    sid = sample_scenario(d)["scenario_id"]
    r = replay(d, "--json", "run", "--scenario", sid, "--agent", AGENT, "--repeat", "2", "--dry-run")
    assert r.returncode == 0, r.stderr
    est = json.loads(r.stdout)
    agent = est["lines"][0]
    assert est["chats"] == 24 and agent["what"] == "agent" and agent["calls"] == 38 * 2
    assert agent["model"] == "gpt-4o-mini-2024-07-18" and agent["price"] == "gpt-4o-mini"
    # priced at the bundled table's gpt-4o-mini (USD 0.15 / 0.60 per 1M)
    assert abs(est["usd"] - (agent["input_tokens"] * 0.15 + agent["output_tokens"] * 0.6) / 1e6) < 1e-6
    assert sql(d, "select count(*) n from executions")[0]["n"] == 0  # nothing written
    assert not (d / "lake" / "chats").exists()
    text = replay(d, "run", "--scenario", sid, "--agent", AGENT, "--dry-run")
    assert text.returncode == 0 and "expected: 38 calls" in text.stdout and "$0.0" in text.stdout, text.stdout
    # a real run of an agent that spends production's recorded usage: exactly the estimate
    r = replay(d, "--json", "run", "--scenario", sid, "--agent", "agents_lib:oracle_with_usage", "--repeat", "2",
               env=ENV, timeout=120)
    assert r.returncode == 0, r.stderr
    ran = sql(d, "select count(*) turns, sum(input_tokens) i, sum(output_tokens) o from chat_turns")[0]
    assert (ran["turns"], ran["i"], ran["o"]) == (agent["calls"], agent["input_tokens"], agent["output_tokens"])
    # the example agent makes as many calls as expected (its own token counts differ from production's)
    r = replay(d, "--json", "run", "--scenario", sid, "--agent", AGENT)
    ex = json.loads(r.stdout)["execution_id"]
    assert sql(d, f"select count(*) n from chat_turns where execution_id = '{ex}'")[0]["n"] == 38


def test_budget_stops_new_chats_and_resume_finishes(tmp_path):
    d = tmp_path / "d"
    sid = sample_scenario(d)["scenario_id"]
    run = ["run", "--scenario", sid, "--agent", AGENT, "--concurrency", "1", "--batch-size", "1"]
    r = replay(d, *run, "--budget-tokens", "300")
    assert r.returncode == 0, r.stderr
    line = [x for x in r.stdout.splitlines() if x.startswith("budget reached")]
    assert len(line) == 1 and "of 300 tokens spent" in line[0] and "runs resume ex_" in line[0], r.stdout
    ex = line[0].rsplit(" ", 1)[1]
    row = sql(d, f"select status, completed_chats, error from executions where execution_id = '{ex}'")[0]
    assert row["status"] == "interrupted" and 1 <= row["completed_chats"] < 12
    assert row["error"].startswith("budget reached")
    spent = sql(d, f"select sum(input_tokens + output_tokens) t, count(*) n from chats where execution_id = '{ex}'")[0]
    assert spent["t"] >= 300 and spent["n"] == row["completed_chats"]  # stopped once spent, not before
    r = replay(d, "--json", "runs", "resume", ex)
    info = json.loads(r.stdout)
    assert r.returncode == 0 and info["status"] == "completed" and info["not_run"] == 0, r.stderr
    assert info["ran_now"] == 12 - row["completed_chats"] and info["budget_stop"] is None
    assert sql(d, f"select count(distinct chat_id) n from chats where execution_id = '{ex}'")[0]["n"] == 12


def test_budget_usd_with_a_price_table(tmp_path):
    d = tmp_path / "d"
    sid = sample_scenario(d)["scenario_id"]
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"gpt-4o-mini": {"input": 1000.0, "output": 1000.0}}))
    r = replay(d, "--json", "run", "--scenario", sid, "--agent", AGENT, "--concurrency", "1", "--batch-size", "1",
               "--prices", prices, "--budget-usd", "0.2")
    info = json.loads(r.stdout)
    assert r.returncode == 0 and info["status"] == "interrupted", r.stderr
    assert info["spent_usd"] >= 0.2 and info["not_run"] == 12 - info["completed_chats"] > 0
    assert info["budget_stop"].startswith("budget reached ($") and info["spent_tokens"] > 0
    bad = tmp_path / "bad.json"
    bad.write_text('{"gpt-4o-mini": 3}')
    r = replay(d, "run", "--scenario", sid, "--agent", AGENT, "--dry-run", "--prices", bad)
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1 and "price table" in r.stderr
    r = replay(d, "run", "--scenario", sid, "--agent", AGENT, "--budget-tokens", "0")
    assert r.returncode != 0 and "--budget-tokens" in r.stderr
