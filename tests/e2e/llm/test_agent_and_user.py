"""The HTTP agent and the simulated user against the real local model (llama.cpp + SmolLM2-135M,
n_ctx 2048), through the CLI: production's system prompt and tools, tool calls answered from
recordings; a slow reply ends its chat with its reason, never the run."""

from __future__ import annotations

import json
import time

import pytest
from cli_helpers import replay, replay_env

from tasks.common.local_llm import LOCAL_MODEL

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _cli(data_dir, env, *args, timeout=400, ok=True):
    r = replay(data_dir, "--json", *args, env=env, timeout=timeout)
    assert "Traceback" not in r.stderr
    if ok:
        assert r.returncode == 0, (args, r.stderr[-2000:])
    return json.loads(r.stdout), r.stderr


def _chats(d, env, ex):
    r = replay(d, "sql", f"select status, ended_reason, turn_count from chats where execution_id = '{ex}'",
               "--format", "json", env=env)
    return json.loads(r.stdout)


def test_http_agent_and_simulated_user(local_llm_url, tmp_path):
    env = replay_env(REPLAY_LLM_BASE_URL=local_llm_url, REPLAY_LLM_MODEL=LOCAL_MODEL, REPLAY_LLM_MAX_RETRIES="1",
                     PREFECT_HOME=str(tmp_path / "prefect"))
    d = tmp_path / "data"
    _cli(d, env, "ingest", "data/samples/otlp")
    rpl, _ = _cli(d, env, "replays", "create", "--project", "support-agent", "--type", "session", "--all")
    scn, _ = _cli(d, env, "scenarios", "generate", rpl["replay_id"], "--agent-name", "a", "--scenario-name", "s",
                  "--rows", "2", "--no-generate-graph")
    sid = scn["scenario_id"]
    # the HTTP agent: the real model with production's system prompt and tools, replay mode
    t0 = time.monotonic()
    ex, err = _cli(d, env, "run", "--scenario", sid, "--agent", local_llm_url, "--model", LOCAL_MODEL,
                   "--max-turns", "3", "--max-failure-rate", "1")
    http_s = time.monotonic() - t0
    chats = _chats(d, env, ex["execution_id"])
    assert len(chats) == 2 and all(c["ended_reason"] for c in chats)
    assert ex["warnings"] == [] or "never called a tool" in ex["warnings"][0]
    # simulate mode: the model as the user, ends the chat or hits --max-turns
    t0 = time.monotonic()
    sim, _ = _cli(d, env, "run", "--scenario", sid, "--agent", "examples.support_agent:agent", "--mode", "simulate",
                  "--max-turns", "3", "--max-failure-rate", "1")
    sim_s = time.monotonic() - t0
    chats = _chats(d, env, sim["execution_id"])
    assert len(chats) == 2
    assert all(c["ended_reason"] in ("user_ended", "max_turns", "error") for c in chats), chats
    # a reply slower than --turn-timeout ends that chat (timeout), never the run
    slow, _ = _cli(d, env, "run", "--scenario", sid, "--agent", local_llm_url, "--model", LOCAL_MODEL,
                   "--max-turns", "3", "--turn-timeout", "0.001", "--retries", "0", "--max-failure-rate", "1")
    assert {c["ended_reason"] for c in _chats(d, env, slow["execution_id"])} == {"timeout"}
    print(f"per-chat: http agent {http_s / 2:.1f} s, simulate {sim_s / 2:.1f} s")
