"""The replays/scenarios commands through the real CLI: --json prints one object with the
ids made; refusals are one line on stderr and write nothing."""

import json

from cli_helpers import assert_one_line_error, replay

from models.settings import SAMPLES_DIR


def j(r):
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_replay_scenario_export_import_with_json(tmp_path):
    d = tmp_path / "d"
    assert replay(d, "ingest", SAMPLES_DIR / "otlp").returncode == 0
    rs = j(replay(d, "--json", "replays", "create", "--project", "support-agent", "--type", "session",
                  "--where", "error_count > 0"))
    assert rs["replay_id"].startswith("rpl_") and rs["state"] == "INIT" and rs["suggestions"]["scenario_name"]
    assert j(replay(d, "replays", "show", rs["replay_id"], "--json"))["ids"] == rs["ids"]
    assert [x["replay_id"] for x in j(replay(d, "replays", "list", "--json"))["replay_sessions"]] == [rs["replay_id"]]
    gen = j(replay(d, "scenarios", "generate", rs["replay_id"], "--agent-name", "bot", "--scenario-name", "s1",
                   "--rows", "3", "--custom-column", "team=a", "--json"))
    assert gen["scenario_id"].startswith("scn_") and gen["rows"] == 3 and gen["agent_version"] == 1
    assert j(replay(d, "replays", "show", rs["replay_id"], "--json"))["state"] == "GENERATING"
    out = tmp_path / "s.jsonl"
    ex = j(replay(d, "scenarios", "export", gen["scenario_id"], "--out", out, "--json"))
    assert ex == {"scenario_id": gen["scenario_id"], "rows": 3, "out": str(out)}
    im = j(replay(tmp_path / "d2", "scenarios", "import", out, "--json"))
    assert im == {"scenario_id": gen["scenario_id"], "rows": 3, "imported": True}
    assert [s["scenario_id"] for s in j(replay(tmp_path / "d2", "scenarios", "list", "--json"))["scenarios"]] == [
        gen["scenario_id"]]


def test_refusals_are_one_line(tmp_path):
    d = tmp_path / "d"
    assert replay(d, "ingest", SAMPLES_DIR / "otlp").returncode == 0
    r = replay(d, "replays", "create", "--project", "support-agent", "--type", "session", "--ids", "nope,sess_91d9f9b439fc")
    assert "unknown session id: nope" in assert_one_line_error(r)
    assert_one_line_error(replay(d, "replays", "create", "--project", "support-agent", "--type", "session"))
    assert_one_line_error(replay(d, "replays", "create", "--project", "support-agent", "--type", "nope", "--all"))
    assert j(replay(d, "replays", "list", "--json"))["replay_sessions"] == []
    rs = j(replay(d, "--json", "replays", "create", "--project", "support-agent", "--type", "trace", "--all"))
    r = replay(d, "scenarios", "generate", rs["replay_id"], "--agent-name", "a", "--scenario-name", "s",
               "--agent-type", "voice")
    assert "chat" in assert_one_line_error(r)
    assert_one_line_error(replay(d, "scenarios", "generate", rs["replay_id"], "--agent-name", "a",
                                 "--scenario-name", "s", "--rows", "0"))
    assert_one_line_error(replay(d, "scenarios", "generate", "rpl_missing", "--agent-name", "a", "--scenario-name", "s"))
    assert_one_line_error(replay(d, "scenarios", "import", tmp_path / "missing.jsonl"))
    assert_one_line_error(replay(d, "scenarios", "export", "scn_missing", "--out", tmp_path / "x.jsonl"))
