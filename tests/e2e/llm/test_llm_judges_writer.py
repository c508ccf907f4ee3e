"""The LLM judges and the LLM scenario writer against the real local model (llama.cpp +
SmolLM2-135M, n_ctx 2048), through the CLI: every verdict is schema-valid or a recorded
failure (an error row), every row is written or a recorded generation failure; never a crash."""

from __future__ import annotations

import json
import time

import pytest
from cli_helpers import replay, replay_env

from tasks.common.local_llm import LOCAL_MODEL

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _cli(data_dir, env, *args, timeout=400):
    r = replay(data_dir, "--json", *args, env=env, timeout=timeout)
    assert r.returncode == 0, (args, r.stderr[-2000:])
    assert "Traceback" not in r.stderr
    return json.loads(r.stdout)


def test_judges_and_writer_against_the_real_model(local_llm_url, tmp_path):
    env = replay_env(REPLAY_LLM_BASE_URL=local_llm_url, REPLAY_LLM_MODEL=LOCAL_MODEL,
                     REPLAY_LLM_MAX_RETRIES="1", PREFECT_HOME=str(tmp_path / "prefect"))
    d = tmp_path / "data"
    _cli(d, env, "ingest", "data/samples/otlp")
    rpl = _cli(d, env, "replays", "create", "--project", "support-agent", "--type", "session", "--all")
    t0 = time.monotonic()
    scn = _cli(d, env, "scenarios", "generate", rpl["replay_id"], "--agent-name", "a", "--scenario-name", "s",
               "--rows", "2")
    writer_s = time.monotonic() - t0
    assert scn["rows"] == 2  # rows written; what the model could not write is a recorded failure
    assert scn["failures"] + 0 <= scn["transcripts"]
    t0 = time.monotonic()
    ex = _cli(d, env, "run", "--scenario", scn["scenario_id"], "--agent", "examples.support_agent:agent_v2",
              "--max-turns", "3")
    run_s = time.monotonic() - t0
    assert ex["status"] == "completed" and ex["total_chats"] == 2
    rows = json.loads(replay(d, "sql", "--json", "select evaluator, error, value from eval_scores "
                             "where source like 'llm:%'", env=env).stdout)
    judged = {r["evaluator"] for r in rows}
    assert judged & {"csat", "ground_truth_match", "task_completion"}, rows
    for r in rows:  # a verdict, or a recorded failure with its one-line reason
        assert (r["value"] is not None) != bool(r["error"]), r
        assert r["error"] is None or "\n" not in r["error"]
    ok = sum(r["value"] is not None for r in rows)
    print(f"\nwriter: {scn['transcripts']} transcripts in {writer_s:.1f} s, {scn['failures']} recorded failures; "
          f"run of 2 chats with judges {run_s:.1f} s; judge rows {len(rows)}: {ok} verdicts, "
          f"{len(rows) - ok} recorded failures")
