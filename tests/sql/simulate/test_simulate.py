"""Simulation on the sample scenario: agents (Python sync/async, OpenAI-compatible HTTP on a
real loopback server), modes, recorded tools and their off-script policies, faults, repeats."""

import json
import random

import pytest
from llm_stub import llm_stub

from models.settings import SAMPLES_DIR
from models.simulate import RunOptions


@pytest.fixture
def scen(settings, ingest):
    """The sample ingested; a session replay and its scenario (one row per session)."""
    from tasks import scenario
    from tasks.scenario import replays
    from tasks.store import catalog

    ingest([SAMPLES_DIR / "otlp"])
    with catalog.writer(settings) as con:
        rs = replays.create(con, "support-agent", "session", select_all=True)
        res = scenario.generate(con, settings, rs["replay_id"], "bot", "s", rows=12)
        _, rows, _ = scenario.get_scenario(con, res["scenario_id"])
    return {"scenario_id": res["scenario_id"], "replay_id": rs["replay_id"], "rows": rows}


def run(settings, scen, agent, **opts):
    from stages import run_local

    replay_id = opts.pop("replay_id", None)
    return run_local(settings, scen["scenario_id"], agent, RunOptions(**opts), replay_id, progress=False)


def rows_of(query, execution_id, table):
    return query(f"select * from {table} where execution_id = '{execution_id}' order by all")


def args(v):
    return json.loads(v) if isinstance(v, str) else v


def test_oracle_reproduces_every_answer_and_tool_call(settings, scen, query):
    info = run(settings, scen, "examples.support_agent:oracle", replay_id=scen["replay_id"])
    assert (info.status, info.completed_chats, info.failed_chats) == ("completed", 12, 0)
    turns = query(f"select * from chat_turns where execution_id = '{info.execution_id}'")
    assert len(turns) == sum(len(r.user_turns) for r in scen["rows"]) == 38
    for t in turns:
        assert t["assistant_message"] == t["original_assistant_message"]
        got = [(c["name"], args(c["arguments"])) for c in t["tool_calls"]]
        want = [(c["name"], args(c["arguments"])) for c in t["original_tool_calls"]]
        assert got == want
        assert all(c["source"] == "recorded" for c in t["tool_calls"])
        for c, o in zip(t["tool_calls"], t["original_tool_calls"], strict=False):
            if o["status"] == "error":
                assert c["status"] == "error"  # production's failure is served as a failure
            else:
                assert args(c["result"]) == args(o["result"])
        assert t["similarity"] == 1.0
    chats = query(f"select * from chats where execution_id = '{info.execution_id}'")
    assert all(c["divergence_turn"] is None and c["ended_reason"] == "script_done" for c in chats)
    from tasks.scenario import replays
    from tasks.store import catalog
    with catalog.reader(settings) as con:
        rs = replays.get(con, scen["replay_id"])
    assert rs["state"] == "COMPLETED" and rs["run_test_id"] == info.run_test_id


@pytest.mark.parametrize("agent", ["agents_lib:sync_echo", "agents_lib:async_echo"])
def test_python_agents_sync_and_async(settings, scen, query, agent):
    info = run(settings, scen, agent, repeat=2)
    assert (info.total_chats, info.completed_chats) == (24, 24)
    chats = query(f"select row_index, repetition, chat_id from chats where execution_id = '{info.execution_id}'")
    assert sorted((c["row_index"], c["repetition"]) for c in chats) == [(r, k) for r in range(12) for k in range(2)]
    assert len({c["chat_id"] for c in chats}) == 24
    t = query(f"select * from chat_turns where execution_id = '{info.execution_id}' limit 1")[0]
    assert t["assistant_message"] == f"echo: {t['user_message']}"
    # the answers differ from production: each chat diverges at its first turn
    assert query(f"select min(divergence_turn) d from chats where execution_id = '{info.execution_id}'")[0]["d"] == 0


@pytest.mark.parametrize("policy,status,source", [("error", "completed", "off_script"),
                                                  ("nearest", "completed", "nearest"),
                                                  ("fail", "failed", "off_script")])
def test_off_script_policies(settings, scen, query, policy, status, source):
    info = run(settings, scen, "agents_lib:off_script", off_script=policy, max_failure_rate=1.0)
    chats = query(f"select * from chats where execution_id = '{info.execution_id}'")
    assert {c["status"] for c in chats} == {status}
    if policy == "fail":
        assert {c["ended_reason"] for c in chats} == {"off_script"} and all(c["turn_count"] == 1 for c in chats)
    t = query(f"select tool_calls from chat_turns where execution_id = '{info.execution_id}' limit 1")[0]
    assert t["tool_calls"][0]["source"] == source and t["tool_calls"][0]["name"] == "lookup_order"
    if policy == "nearest":
        assert "order_id" in str(t["tool_calls"][0]["result"])


def test_http_agent_with_the_tool_loop_served_by_recorded_tools(settings, scen, query):
    def model(req):
        msgs = req["messages"]
        assert msgs[0]["role"] == "system" and req["tools"]
        if msgs[-1]["role"] == "user":  # first round: ask for the refund policy
            return {"tool_calls": [{"name": "get_refund_policy", "arguments": {}}]}
        return {"content": f"policy says: {msgs[-1]['content'][:40]}"}

    with llm_stub(model) as stub:
        info = run(settings, scen, stub.base_url, model="dev-model", concurrency=4)
    assert info.completed_chats == 12
    t = query(f"select * from chat_turns where execution_id = '{info.execution_id}' order by chat_id, turn_index limit 1")[0]
    assert t["assistant_message"].startswith("policy says:")
    assert t["tool_calls"][0]["name"] == "get_refund_policy" and t["tool_calls"][0]["source"] in ("recorded", "nearest",
                                                                                                   "off_script")
    assert all(r.json["model"] == "dev-model" for r in stub.chat_requests)


def test_faults_at_20_percent_every_chat_accounted(settings, scen, query):
    rng = random.Random(3)

    def flaky(req):
        r = rng.random()
        if r < 0.05:
            return 500
        if r < 0.10:
            return (429, {"Retry-After": "0"})
        if r < 0.13:
            return ("sleep", 2.0)  # past the turn timeout: retried
        if r < 0.17:
            return "{not json"  # malformed: the chat fails
        if r < 0.20:
            return {"choices": []}  # malformed too
        return {"content": "fine"}

    with llm_stub(flaky) as stub:
        info = run(settings, scen, stub.base_url, model="m", repeat=4, concurrency=16, turn_timeout_s=0.5,
                   retries=3, max_failure_rate=1.0, batch_size=10)
    chats = query(f"select * from chats where execution_id = '{info.execution_id}'")
    assert len(chats) == info.total_chats == 48 == info.completed_chats + info.failed_chats
    failed = [c for c in chats if c["status"] == "failed"]
    assert failed and all(c["error"] and c["ended_reason"] in ("error", "timeout") for c in failed)
    turns = query(f"select chat_id, attempts, error from chat_turns where execution_id = '{info.execution_id}'")
    assert any(t["attempts"] > 1 for t in turns)  # transient faults were retried
    for c in failed:  # a failed chat keeps its turns, the failing one with its error
        mine = [t for t in turns if t["chat_id"] == c["chat_id"]]
        assert len(mine) == c["turn_count"] and mine and any(t["error"] for t in mine)


def test_python_agent_faults_and_the_failure_rate(settings, scen, query):
    info = run(settings, scen, "agents_lib:faulty", repeat=3, turn_timeout_s=0.3, retries=2,
               max_failure_rate=0.0)
    assert info.completed_chats + info.failed_chats == info.total_chats == 36
    assert info.failed_chats > 0 and info.status == "failed"  # past --max-failure-rate 0


def test_simulate_and_hybrid_modes_with_a_simulated_user(settings, scen, query):
    def user_model(req):
        history = req["messages"][-1]["content"]
        n = history.count("AGENT:")
        return {"content": json.dumps({"message": f"simulated {n}", "end": n >= 2})}

    settings.llm_base_url, settings.llm_model = None, None
    from tasks.simulate.executor import RunError
    with pytest.raises(RunError, match="REPLAY_LLM_BASE_URL"):
        run(settings, scen, "agents_lib:sync_echo", mode="simulate")
    with llm_stub(user_model) as stub:
        settings.llm_base_url, settings.llm_model = stub.base_url, "user-model"
        sim = run(settings, scen, "agents_lib:sync_echo", mode="simulate", max_turns=5)
        hyb = run(settings, scen, "agents_lib:sync_echo", mode="hybrid", max_turns=6)
    chats = query(f"select * from chats where execution_id = '{sim.execution_id}'")
    assert {c["ended_reason"] for c in chats} == {"user_ended"} and {c["turn_count"] for c in chats} == {2}
    t = query(f"select user_message, user_source from chat_turns where execution_id = '{sim.execution_id}' limit 1")[0]
    assert t["user_message"].startswith("simulated") and t["user_source"] == "simulated"
    # hybrid: verbatim until the echo agent diverges (turn 0), then the simulated user
    hturns = query(f"select chat_id, turn_index, user_source from chat_turns where execution_id = '{hyb.execution_id}' "
                   "order by chat_id, turn_index")
    first = [t for t in hturns if t["chat_id"] == hturns[0]["chat_id"]]
    assert first[0]["user_source"] == "original" and all(t["user_source"] == "simulated" for t in first[1:])
    assert {c["divergence_turn"] for c in query(f"select divergence_turn from chats where execution_id = '{hyb.execution_id}'")} == {0}


def test_hybrid_stays_verbatim_while_the_agent_stays_on_the_production_path(settings, scen, query):
    with llm_stub(lambda req: {"content": json.dumps({"message": "x", "end": True})}) as stub:
        settings.llm_base_url, settings.llm_model = stub.base_url, "user-model"
        info = run(settings, scen, "examples.support_agent:oracle", mode="hybrid")
    user_requests = [r for r in stub.chat_requests
                     if "user" in r.json.get("response_format", {}).get("json_schema", {}).get("name", "").lower()]
    assert info.completed_chats == 12 and user_requests == []  # (the model only judged: csat, completion)
    assert {t["user_source"] for t in query(f"select user_source from chat_turns where execution_id = '{info.execution_id}'")} == {"original"}


def test_bad_agent_ref_is_one_line(settings, scen):
    from tasks.simulate.agents import AgentLoadError

    with pytest.raises(AgentLoadError, match="no_such_module"):
        run(settings, scen, "no_such_module:agent")
