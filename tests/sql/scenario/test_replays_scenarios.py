"""Replay sessions and scenario generation on the bundled sample (real DuckDB catalog)."""

import json

import orjson
import pytest
from otlp_helpers import make_line, make_span

from models.settings import SAMPLES_DIR

EXPECTED = json.loads((SAMPLES_DIR / "expected.json").read_text())
PROJECT = "support-agent"
SESSIONS = list(EXPECTED["sessions"])
LONE = [t["trace_id"] for t in EXPECTED["lone_traces"]]


@pytest.fixture
def cat(settings, ingest, tmp_path):
    """The sample plus a one-trace project 'other', ingested; yields a writer connection."""
    from tasks.store import catalog

    other = tmp_path / "other.jsonl"
    other.write_text(make_line({"service.name": "other"}, [make_span(
        0xABC, 0xDEF, None, "agent", 1_763_600_000_000_000_000, 1_763_600_001_000_000_000,
        {"openinference.span.kind": "AGENT", "session.id": "other-session", "input.value": "hi",
         "output.value": "hello"})]) + "\n")
    ingest([SAMPLES_DIR / "otlp", other])
    with catalog.writer(settings) as con:
        yield con


def test_session_replay_with_ids_all_and_where(cat):
    from tasks.scenario import replays

    a = replays.create(cat, PROJECT, "session", ids=SESSIONS[:2])
    assert a["state"] == "INIT" and a["ids"] == SESSIONS[:2] and a["replay_type"] == "session"
    assert len(replays.create(cat, PROJECT, "session", select_all=True)["ids"]) == 12
    errs = replays.create(cat, PROJECT, "session", where="error_count > 0")
    assert set(errs["ids"]) == {sid for sid, s in EXPECTED["sessions"].items()
                                if s["tool_error_count"] or s["turn_error_count"]}
    assert errs["where_sql"] == "error_count > 0"


def test_trace_replay(cat):
    from tasks.scenario import replays
    from tasks.scenario import scenarios as scenario

    rs = replays.create(cat, PROJECT, "trace", ids=LONE[:2])
    ts = scenario.load_transcripts(cat, rs)
    assert [t.origin_id for t in ts] == sorted(LONE[:2]) and all(len(t.turns) == 1 for t in ts)
    allt = replays.create(cat, PROJECT, "trace", where="session_id is null")
    assert sorted(allt["ids"]) == sorted(LONE)


@pytest.mark.parametrize("kwargs,msg", [
    ({}, "choose what to replay"),
    ({"ids": ["x"], "select_all": True}, "only one of"),
    ({"ids": ["nope-1", "nope-2"]}, "unknown session ids: nope-1, nope-2"),
    ({"ids": ["other-session"]}, "another project"),
    ({"where": "turn_count > 100"}, "no sessions matching"),
    ({"where": "true); drop table scenarios; select (1"}, "one predicate"),
    ({"where": "no_such_column = 1"}, "--where failed"),
])
def test_refusals_write_nothing(cat, kwargs, msg):
    from tasks.scenario import replays

    with pytest.raises(replays.ReplaySessionError, match=msg):
        replays.create(cat, PROJECT, "session", **kwargs)
    assert replays.list_all(cat) == []


def test_suggestions_and_existing_agent(cat, settings):
    from tasks import scenario
    from tasks.scenario import replays

    rs = replays.create(cat, PROJECT, "session", select_all=True)
    tag = rs["created_at"].strftime("%d_%m_%y")
    assert rs["suggestions"]["agent_name"] == f"{PROJECT}_replay_agent_{tag}"
    assert rs["suggestions"]["scenario_name"] == f"{PROJECT}_replay_{tag}_v1"
    assert rs["suggestions"]["existing_agent"] is None and "agent_description" in rs["suggestions"]
    scenario.generate(cat, settings, rs["replay_id"], "bot", "s1", rows=3)
    rs2 = replays.create(cat, PROJECT, "session", select_all=True)
    assert rs2["suggestions"]["scenario_name"].endswith("_v2")
    assert rs2["suggestions"]["existing_agent"] == {"agent_name": "bot", "version": 1}


def test_state_transitions_are_checked_and_timed(cat, settings):
    from tasks import scenario
    from tasks.scenario import replays

    rs = replays.create(cat, PROJECT, "session", ids=SESSIONS[:1])
    with pytest.raises(replays.ReplaySessionError, match="INIT cannot move to COMPLETED"):
        replays.transition(cat, rs["replay_id"], "COMPLETED")
    scenario.generate(cat, settings, rs["replay_id"], "bot", "s1", rows=2)
    assert replays.get(cat, rs["replay_id"])["state"] == "GENERATING"
    done = replays.transition(cat, rs["replay_id"], "COMPLETED", run_test_id="rt_1")
    assert [t["state"] for t in done["transitions"]] == ["INIT", "GENERATING", "COMPLETED"]
    assert all(t["at"] for t in done["transitions"]) and done["run_test_id"] == "rt_1"
    for state in ("GENERATING", "FAILED", "INIT"):
        with pytest.raises(replays.ReplaySessionError, match="COMPLETED cannot move"):
            replays.transition(cat, rs["replay_id"], state)


def test_failed_generation_moves_to_failed_with_the_reason(cat, settings):
    from tasks import scenario
    from tasks.scenario import replays

    rs = replays.create(cat, PROJECT, "session", ids=SESSIONS[:1])

    def broken(transcripts):
        raise RuntimeError("writer exploded")

    with pytest.raises(RuntimeError):
        scenario.generate(cat, settings, rs["replay_id"], "bot", "s1", describe=broken)
    got = replays.get(cat, rs["replay_id"])
    assert got["state"] == "FAILED" and got["state_reason"] == "writer exploded"


@pytest.mark.parametrize("kwargs,msg", [
    ({"agent_type": "voice"}, "chat"),
    ({"rows": 0}, "between 1 and 1000"),
    ({"rows": 1001}, "between 1 and 1000"),
    ({"custom_columns": ["team=a", "team=b"]}, "unique"),
    ({"persona_ids": ["p01", "nope"]}, "unknown persona id"),
    ({"agent_name": ""}, "required"),
])
def test_generate_refusals(cat, settings, kwargs, msg):
    from tasks import scenario
    from tasks.scenario import replays

    rs = replays.create(cat, PROJECT, "session", select_all=True)
    args = {"agent_name": "bot", "scenario_name": "s", **kwargs}
    with pytest.raises(scenario.ScenarioError, match=msg):
        scenario.generate(cat, settings, rs["replay_id"], **args)
    assert replays.get(cat, rs["replay_id"])["state"] == "INIT"


def test_agent_definition_from_transcripts_and_versioning(cat, settings):
    from tasks import scenario
    from tasks.scenario import replays

    rs = replays.create(cat, PROJECT, "session", select_all=True)
    r1 = scenario.generate(cat, settings, rs["replay_id"], "bot", "s1", rows=5)
    _, _, agent = scenario.get_scenario(cat, r1["scenario_id"])
    names = {t["function"]["name"] for t in agent.tools}
    assert {"lookup_order", "issue_refund", "get_refund_policy", "search_products", "transfer_to_human"} <= names
    assert agent.system_prompt and agent.model and agent.version == 1
    rs2 = replays.create(cat, PROJECT, "session", select_all=True)
    r2 = scenario.generate(cat, settings, rs2["replay_id"], "bot", "s2", rows=5)
    assert r2["agent_version"] == 1  # nothing changed: no new version
    rs3 = replays.create(cat, PROJECT, "session", select_all=True)
    r3 = scenario.generate(cat, settings, rs3["replay_id"], "bot", "s3", rows=5, agent_description="changed")
    assert r3["agent_version"] == 1  # a description is not the agent: no new version (issue 12)
    n = cat.execute("select count(*) from agent_definitions where agent_name = 'bot'").fetchone()[0]
    assert n == 1


def test_rows_branches_and_graph_are_consistent(cat, settings):
    from models.scenario import Graph
    from tasks import scenario
    from tasks.scenario import graph as graphs
    from tasks.scenario import replays

    rs = replays.create(cat, PROJECT, "session", select_all=True)
    res = scenario.generate(cat, settings, rs["replay_id"], "bot", "s", rows=30,
                            custom_columns=["team=support", "ticket"])
    sc, rows, _ = scenario.get_scenario(cat, res["scenario_id"])
    g = Graph.model_validate(sc["graph"])
    assert len(rows) == sc["row_count"] == 30
    for r in rows:
        assert graphs.validate_path(g, r.conversation_branch.split(" -> ")), r.conversation_branch
        assert 30 <= len(r.situation) <= 400 and r.outcome
        assert r.custom == {"team": "support", "ticket": None}
        exp = EXPECTED["sessions"][r.origin_id]
        assert r.user_turns == [t["user_message"] for t in exp["turns"]]
        assert [[c.name for c in t.tool_calls] for t in r.expected_turns] == [t["tool_calls"] for t in exp["turns"]]
    # more rows than transcripts: every transcript once, then again with other personas
    assert {r.origin_id for r in rows[:12]} == set(SESSIONS)
    first = {r.origin_id: r.persona.name for r in rows[:12]}
    assert all(r.persona.name != first[r.origin_id] for r in rows[12:])
    assert all(r.persona.name in r.situation for r in rows)


def test_fewer_rows_than_transcripts_cover_distinct_branches_first(cat, settings):
    from tasks import scenario
    from tasks.scenario import replays

    rs = replays.create(cat, PROJECT, "session", select_all=True)
    res = scenario.generate(cat, settings, rs["replay_id"], "bot", "s", rows=4)
    _, rows, _ = scenario.get_scenario(cat, res["scenario_id"])
    assert len({r.conversation_branch for r in rows}) == 4
    assert len({r.branch_category for r in rows}) >= 3  # resolved, escalated, failed first


def test_persona_library_ids(cat, settings):
    from tasks import scenario
    from tasks.scenario import replays

    rs = replays.create(cat, PROJECT, "session", select_all=True)
    res = scenario.generate(cat, settings, rs["replay_id"], "bot", "s", rows=3, persona_ids=["p01", "p02"])
    _, rows, _ = scenario.get_scenario(cat, res["scenario_id"])
    assert [r.persona.persona_id for r in rows] == ["p01", "p02", "p01"]


def test_no_graph_and_supplied_graph(cat, settings, tmp_path):
    from models.scenario import Graph
    from tasks import scenario
    from tasks.scenario import graph as graphs
    from tasks.scenario import replays

    rs = replays.create(cat, PROJECT, "session", select_all=True)
    res = scenario.generate(cat, settings, rs["replay_id"], "bot", "s", rows=3, generate_graph=False)
    assert scenario.get_scenario(cat, res["scenario_id"])[0]["graph"] is None
    gfile = tmp_path / "g.json"
    gfile.write_text(json.dumps({"nodes": [{"id": "start", "type": "start", "prompt": "greet"},
                                           {"id": "help", "type": "message", "prompt": "order status refund"},
                                           {"id": "end", "type": "end", "prompt": "done"}],
                                 "edges": [{"from": "start", "to": "help"}, {"from": "help", "to": "end"}]}))
    rs2 = replays.create(cat, PROJECT, "session", select_all=True)
    res2 = scenario.generate(cat, settings, rs2["replay_id"], "bot", "s2", rows=5, graph_file=str(gfile))
    sc, rows, _ = scenario.get_scenario(cat, res2["scenario_id"])
    g = Graph.model_validate(sc["graph"])
    assert [n.id for n in g.nodes] == ["start", "help", "end"]
    assert all(graphs.validate_path(g, r.conversation_branch.split(" -> ")) for r in rows)


def test_redaction_masks_and_counts(settings, ingest, tmp_path):
    from tasks import scenario
    from tasks.scenario import replays
    from tasks.store import catalog

    f = tmp_path / "pii.jsonl"
    user = "I am jane.doe@example.com, call +1 415 555 0100, card 4111 1111 1111 1111, order A1042"
    f.write_text(make_line({"service.name": "pii"}, [make_span(
        0x1, 0x2, None, "agent", 1_763_600_000_000_000_000, 1_763_600_001_000_000_000,
        {"openinference.span.kind": "AGENT", "session.id": "s-pii", "input.value": user,
         "output.value": "Thanks jane.doe@example.com, we will call +1 415 555 0100."})]) + "\n")
    ingest([f])
    settings.redact_patterns = {"order": r"A\d{4}"}
    with catalog.writer(settings) as con:
        rs = replays.create(con, "pii", "session", select_all=True)
        res = scenario.generate(con, settings, rs["replay_id"], "bot", "s", rows=1, redact=True)
        _, rows, agent = scenario.get_scenario(con, res["scenario_id"])
    text = json.dumps([r.model_dump(mode="json") for r in rows])
    for secret in ("jane.doe@example.com", "415 555 0100", "4111 1111 1111 1111", "A1042"):
        assert secret not in text
    assert "[EMAIL]" in text and "[CARD]" in text and "[PHONE]" in text and "[ORDER]" in text
    assert res["redactions"]["email"] >= 2 and res["redactions"]["card"] >= 1 and res["redactions"]["order"] >= 1


def test_export_import_round_trip_is_exact(cat, settings, tmp_path):
    from models.settings import load_settings
    from tasks import scenario
    from tasks.scenario import replays
    from tasks.store import catalog

    rs = replays.create(cat, PROJECT, "session", select_all=True)
    res = scenario.generate(cat, settings, rs["replay_id"], "bot", "s", rows=14, custom_columns=["k=v"])
    a = tmp_path / "a.jsonl"
    scenario.export_scenario(cat, res["scenario_id"], a)
    other = load_settings(data_dir=tmp_path / "other")
    with catalog.writer(other) as con2:
        assert scenario.import_scenario(con2, a) == {"scenario_id": res["scenario_id"], "rows": 14, "imported": True}
        assert scenario.import_scenario(con2, a)["imported"] is False  # the same file again: no-op
        b = tmp_path / "b.jsonl"
        scenario.export_scenario(con2, res["scenario_id"], b)
    assert a.read_bytes() == b.read_bytes()
    lines = a.read_text().splitlines()
    assert len(lines) == 15 and orjson.loads(lines[0])["kind"] == "scenario"
    tampered = tmp_path / "t.jsonl"
    tampered.write_text("\n".join(lines[:-1]) + "\n")
    with catalog.writer(other) as con2, pytest.raises(scenario.ScenarioError, match="header says 14 rows"):
        scenario.import_scenario(con2, tampered)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind": "row"}\n')
    with catalog.writer(other) as con2, pytest.raises(scenario.ScenarioError, match="not a Replay scenario header"):
        scenario.import_scenario(con2, bad)
