"""Every LLM path of Replay against a real model server, through the CLI: llama.cpp's
OpenAI-compatible server with SmolLM2-135M (n_ctx 2048, started once for this module, see
conftest.py), on the bundled sample's production conversations.

- the HTTP agent with production's system prompt and tools (tool calls answered from the
  recordings; SmolLM2 keeps calling tools: its chats end ``tool_loop``); a conversation
  past the context window ends ``context_overflow``; a reply slower than ``--turn-timeout`` ends
  ``timeout``; none of them ends the run, and the server still answers afterwards;
- simulate mode (the model plays the user from the row's persona and situation) and hybrid mode
  (production's words until the agent diverges, then the model);
- the LLM judges: schema-valid verdicts or recorded failures, never a crash;
- the LLM scenario writer: rows written, or recorded generation failures with their reasons.

Each test prints what it measured (``pytest -s``): per-chat times, judge replies valid first time.
"""

from __future__ import annotations

import json
import time

import pytest
from cli_helpers import replay, replay_env, sample_scenario
from local_llm import ensure_llm_venv

from tasks.common.local_llm import LOCAL_MODEL

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

# as production's requests would: a bounded reply, greedy decoding
HTTP_PARAMS = ("--agent-param", "max_tokens=200", "--agent-param", "temperature=0")
AGENT_ENDINGS = {"script_done", "max_turns", "tool_loop", "bad_tool_call", "context_overflow", "off_script",
                 "timeout"}


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    """The sample ingested, a scenario of 2 rows (offline writer): (data dir, scenario id)."""
    d = tmp_path_factory.mktemp("llm") / "data"
    return d, sample_scenario(d, rows=2)["scenario_id"]


def _env(url, **extra):
    return replay_env(**{"REPLAY_LLM_BASE_URL": url, "REPLAY_LLM_MODEL": LOCAL_MODEL, "REPLAY_LLM_MAX_RETRIES": "1",
                         "REPLAY_JUDGE": "heuristic", **extra})


def _run(d, env, *args):
    t0 = time.monotonic()
    # one chat at a time: llama.cpp then reuses the prompt it has just read (a chat's requests share it)
    r = replay(d, "--json", "run", *args, "--max-failure-rate", "1", "--concurrency", "1", env=env, timeout=500)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    ex = json.loads(r.stdout)
    assert ex["status"] == "completed"
    return ex, time.monotonic() - t0


def _sql(d, env, query):
    r = replay(d, "sql", query, "--format", "json", env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _chats(d, env, ex):
    return _sql(d, env, "select chat_id, status, ended_reason, turn_count, error from chats "
                        f"where execution_id = '{ex['execution_id']}' order by chat_id")


def _alive(url):
    import httpx

    return httpx.get(f"{url}/models", timeout=10).status_code == 200


def test_http_agent_with_production_prompt_and_tools(local_llm_url, lake):
    d, sid = lake
    env = _env(local_llm_url)
    ex, s = _run(d, env, "--scenario", sid, "--agent", local_llm_url, "--model", LOCAL_MODEL, "--max-turns", "2",
                 *HTTP_PARAMS)
    chats = _chats(d, env, ex)
    assert len(chats) == 2 and {c["ended_reason"] for c in chats} <= AGENT_ENDINGS, chats
    assert all(c["error"] is None or "\n" not in c["error"] for c in chats)
    turns = _sql(d, env, "select t.user_source, t.assistant_message, t.tool_calls from chat_turns t join chats c "
                         f"using (chat_id) where c.execution_id = '{ex['execution_id']}'")
    calls = [c for t in turns for c in (t["tool_calls"] or [])]
    assert all(t["user_source"] == "original" for t in turns)
    # a tool call is answered from production's recordings (or is off script), never live
    assert all(c["source"] in ("recorded", "nearest", "off_script", None) for c in calls), calls
    print(f"\nhttp agent: {len(chats)} chats in {s:.1f} s ({s / len(chats):.1f} s a chat), {len(turns)} turns, "
          f"{len(calls)} tool calls, ended {[c['ended_reason'] for c in chats]}, warnings {ex.get('warnings')}")


def test_past_the_context_window_and_slower_than_the_timeout_end_their_chats(local_llm_url, lake, tmp_path):
    d, sid = lake
    env = _env(local_llm_url)
    big = tmp_path / "prompt.txt"
    big.write_text("You are a support agent. " + "Always be polite and precise about orders. " * 600)
    ex, _ = _run(d, env, "--scenario", sid, "--agent", local_llm_url, "--model", LOCAL_MODEL, "--max-turns", "1",
                 "--system-prompt", str(big))
    chats = _chats(d, env, ex)
    assert {c["ended_reason"] for c in chats} == {"context_overflow"}, chats
    assert all("maximum context length is 2048" in c["error"] for c in chats)
    # bounded replies, as production's: the server goes on generating a reply its client gave up
    # on, and an unbounded one runs to the end of the context window (minutes of a core)
    ex, _ = _run(d, env, "--scenario", sid, "--agent", local_llm_url, "--model", LOCAL_MODEL, "--max-turns", "1",
                 "--turn-timeout", "0.2", "--retries", "0", *HTTP_PARAMS)
    assert {c["ended_reason"] for c in _chats(d, env, ex)} == {"timeout"}
    time.sleep(1)
    assert _alive(local_llm_url)  # the requests the client gave up on did not take the server down


def test_simulate_mode_the_model_plays_the_user(local_llm_url, lake):
    d, sid = lake
    env = _env(local_llm_url)
    ex, s = _run(d, env, "--scenario", sid, "--agent", "examples.support_agent:agent", "--mode", "simulate",
                 "--max-turns", "3")
    chats = _chats(d, env, ex)
    assert len(chats) == 2 and {c["ended_reason"] for c in chats} <= {"user_ended", "max_turns"}, chats
    turns = _sql(d, env, "select t.chat_id, t.turn_index, t.user_source, t.user_message from chat_turns t join "
                         f"chats c using (chat_id) where c.execution_id = '{ex['execution_id']}' "
                         "order by t.chat_id, t.turn_index")
    assert turns and all(t["user_source"] == "simulated" and (t["user_message"] or "").strip() for t in turns)
    print(f"\nsimulate: {len(chats)} chats in {s:.1f} s ({s / len(chats):.1f} s a chat), {len(turns)} user turns; "
          f"e.g. {turns[0]['user_message'][:120]!r}")


def test_hybrid_mode_production_words_then_the_model(local_llm_url, lake, tmp_path):
    d, sid = lake
    env = _env(local_llm_url)
    agent = tmp_path / "off_topic.py"  # diverges from production on its first answer
    agent.write_text("def agent(inp):\n    return 'Sorry, I can only talk about the weather today.'\n")
    ex, s = _run(d, env, "--scenario", sid, "--agent", f"{agent}:agent", "--mode", "hybrid", "--max-turns", "3")
    chats = _chats(d, env, ex)
    assert {c["ended_reason"] for c in chats} <= {"user_ended", "max_turns"}, chats
    turns = _sql(d, env, "select t.chat_id, t.turn_index, t.user_source, t.user_message "
                         f"from chat_turns t join chats c using (chat_id) where c.execution_id = "
                         f"'{ex['execution_id']}' order by t.chat_id, t.turn_index")
    firsts = [t for t in turns if t["turn_index"] == 0]
    later = [t for t in turns if t["turn_index"] > 0]
    assert firsts and all(t["user_source"] == "original" for t in firsts)  # verbatim until the divergence
    # then the model: its messages, or its end of the conversation (production's script has more turns:
    # without the model a chat would go on verbatim and end script_done)
    assert all(t["user_source"] == "simulated" for t in later), later
    print(f"\nhybrid: {len(chats)} chats in {s:.1f} s ({s / len(chats):.1f} s a chat), {len(later)} simulated turns")


def test_llm_judges_give_verdicts_or_recorded_failures(local_llm_url, lake):
    d, sid = lake
    env = _env(local_llm_url, REPLAY_JUDGE="auto")
    ex, s = _run(d, env, "--scenario", sid, "--agent", "examples.support_agent:agent_v2", "--max-turns", "2")
    rows = _sql(d, env, "select evaluator, value, error, detail->>'judge_replies' as replies from eval_scores "
                        f"where execution_id = '{ex['execution_id']}' and source like '%llm:%'")
    assert {r["evaluator"] for r in rows} >= {"csat", "task_completion"}, rows
    for r in rows:  # a verdict, or a recorded failure with its one-line reason
        assert (r["value"] is not None) != bool(r["error"]), r
        assert r["error"] is None or "\n" not in r["error"]
    verdicts = [r for r in rows if r["value"] is not None]
    first = sum(1 for r in verdicts if r["replies"] == "1")
    assert verdicts, rows
    print(f"\njudges: {ex['total_chats']} chats scored in {s:.1f} s; {len(rows)} judged scores: {len(verdicts)} "
          f"verdicts ({first} schema-valid on the first reply), {len(rows) - len(verdicts)} recorded failures "
          f"{sorted({r['error'][:100] for r in rows if r['error']})}")


def test_llm_scenario_writer_writes_rows_or_records_why_not(local_llm_url, lake):
    d, _ = lake
    env = _env(local_llm_url)
    # one short conversation: SmolLM2 writes a transcript's row in ~45 s on 2 cores
    (short,) = _sql(d, env, "select session_id from sessions order by turn_count, session_id limit 1")
    rs = json.loads(replay(d, "--json", "replays", "create", "--project", "support-agent", "--type", "session",
                           "--ids", short["session_id"], env=env).stdout)
    t0 = time.monotonic()
    r = replay(d, "--json", "scenarios", "generate", rs["replay_id"], "--agent-name", "a", "--scenario-name", "llm",
               "--rows", "1", env=env, timeout=500)
    s = time.monotonic() - t0
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    sc = json.loads(r.stdout)
    assert sc["rows"] == 1
    (scn,) = _sql(d, env, f"select writer, failures from scenarios where scenario_id = '{sc['scenario_id']}'")
    fails = scn["failures"] or []
    fails = json.loads(fails) if isinstance(fails, str) else fails
    assert len(fails) == sc["failures"] <= sc["transcripts"]
    assert all(f["reason"] and "\n" not in f["reason"] for f in fails)
    print(f"\nwriter: {sc['transcripts']} transcripts in {s:.1f} s, writer {scn['writer']}, "
          f"{sc['failures']} recorded failures {[f['reason'][:160] for f in fails]}")


def test_demo_simulate_adds_a_run_with_the_model_as_the_users(tmp_path):
    # the demo starts its own server from the local-llm Python (the one the session's server runs from)
    env = replay_env(REPLAY_LOCAL_LLM_PYTHON=str(ensure_llm_venv()))
    t0 = time.monotonic()
    r = replay(tmp_path / "data", "--json", "demo", "--simulate", env=env, timeout=500)
    s = time.monotonic() - t0
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    sim = json.loads(r.stdout)["simulate"]
    assert sim["run"]["status"] == "completed" and sim["chat_id"], sim
    assert sim["ended_reason"] in {"user_ended", "max_turns"} | AGENT_ENDINGS, sim
    assert sim["conversation"] and all(t["user"] for t in sim["conversation"]), sim
    print(f"\ndemo --simulate: {s:.1f} s; the first chat ended {sim['ended_reason']} after "
          f"{len(sim['conversation'])} turns; its first message {sim['conversation'][0]['user'][:80]!r}")
