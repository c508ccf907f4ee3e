"""Two writers at once (an ingest and a run) and readers in between: DuckDB allows one writing
process, so Replay takes a lock on the data dir for its short catalog writes; nothing is lost
and nothing is corrupted."""

import json
import subprocess
import sys

from cli_helpers import ROOT, finish, replay, replay_env, sample_scenario, start


def test_ingest_and_run_at_once(tmp_path):
    d = tmp_path / "d"
    sc = sample_scenario(d)
    big = tmp_path / "big"
    subprocess.run([sys.executable, str(ROOT / "tests" / "bench" / "gen_otlp.py"), "--out", str(big), "--mb", "30",
                    "--files", "4", "--seed", "2"], check=True, capture_output=True)
    env = replay_env(PYTHONPATH=str(ROOT / "tests" / "support"), SLOW_AGENT_S="0.05")
    ing = start(d, ["--json", "ingest", big])
    run = start(d, ["--json", "run", "--scenario", sc["scenario_id"], "--agent", "agents_lib:slow",
                    "--repeat", "5", "--batch-size", "10"], env=env)
    readers = [start(d, ["sql", "select count(*) from spans", "--format", "csv"]) for _ in range(3)]
    r_ing, r_run = finish(ing, 300), finish(run, 300)
    assert r_ing.returncode == 0, r_ing.stderr
    assert r_run.returncode == 0, r_run.stderr
    assert all(finish(r, 120).returncode == 0 for r in readers)
    info_ing, info_run = json.loads(r_ing.stdout), json.loads(r_run.stdout)
    assert info_ing["read"] == info_ing["ingested"] + info_ing["rejected"] + info_ing["duplicates"]
    assert info_run["completed_chats"] == info_run["total_chats"] == 60
    counts = json.loads(replay(d, "sql", "select (select count(*) from spans) spans, "
                                         "(select count(distinct (trace_id, span_id)) from spans) keys, "
                                         "(select count(*) from chats) chats, "
                                         "(select count(*) from execution_metrics) metrics", "--format", "json").stdout)[0]
    assert counts["spans"] == counts["keys"] == 139 + info_ing["ingested"]
    assert counts["chats"] == 60 and counts["metrics"] == 1
