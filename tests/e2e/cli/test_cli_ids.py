"""Ids as users have them (issue 11, finding 13), through the real CLI:

- a session id with a comma can be chosen: quoted in ``--ids`` (CSV quoting) or one id a line in
  ``--ids-file``; the plain comma-separated form keeps working;
- an empty or whitespace-only session id is no session: its spans stay, as lone traces;
- a scenario file whose ``agent_name`` is not its agent definition's is refused at import in one
  line, and ``replay run`` on such a scenario (a catalog imported before the check) fails in
  one line, never with a TypeError.
"""

from __future__ import annotations

import json

from cli_helpers import assert_one_line_error, replay
from otlp_helpers import make_line, make_span

from models.settings import SAMPLES_DIR

T0 = 1_795_000_000_000_000_000
SESSIONS = {1: "acme,inc-7", 2: "plain-1", 3: "   ", 4: "", 5: "\t", 6: "plain-2"}


def j(r):
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _trace(t: int, sid: str) -> str:
    start = T0 + t * 10_000_000_000
    return make_line({"service.name": "ids"}, [make_span(
        t, t * 100 + 1, None, "agent", start, start + 1_000_000,
        {"openinference.span.kind": "AGENT", "session.id": sid, "input.value": f"q{t}", "output.value": f"a{t}"})])


def test_comma_and_blank_session_ids(tmp_path):
    d = tmp_path / "d"
    f = tmp_path / "ids.jsonl"
    f.write_text("".join(_trace(t, sid) + "\n" for t, sid in SESSIONS.items()))
    info = j(replay(d, "--json", "ingest", f))
    assert info["ingested"] == 6
    # blank ids are no sessions: 3 sessions, 6 turns, the blank ones lone traces (NULL session, turn 0)
    sessions = j(replay(d, "sql", "select session_id from sessions order by 1", "--format", "json"))
    assert [s["session_id"] for s in sessions] == ["acme,inc-7", "plain-1", "plain-2"]
    lone = j(replay(d, "sql", "select count(*) n from turns where session_id is null", "--format", "json"))
    assert lone == [{"n": 3}]
    spans = j(replay(d, "sql", "select count(*) n from spans where session_id is null", "--format", "json"))
    assert spans == [{"n": 3}]

    def create(*sel):
        return replay(d, "--json", "replays", "create", "--project", "ids", "--type", "session", *sel)

    # the plain comma-separated form
    assert j(create("--ids", "plain-1,plain-2"))["ids"] == ["plain-1", "plain-2"]
    assert j(create("--ids", "plain-1", "--ids", "plain-2"))["ids"] == ["plain-1", "plain-2"]
    # a comma inside an id: quoted, or from a file
    assert j(create("--ids", '"acme,inc-7",plain-1'))["ids"] == ["acme,inc-7", "plain-1"]
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("acme,inc-7\n\nplain-2\n")
    assert j(create("--ids-file", ids_file))["ids"] == ["acme,inc-7", "plain-2"]
    # unquoted, the comma still splits (and names the unknown halves)
    assert "unknown session ids: acme, inc-7" in assert_one_line_error(create("--ids", "acme,inc-7"))
    assert_one_line_error(create("--ids-file", tmp_path / "missing.txt"))
    assert_one_line_error(create("--ids", "plain-1", "--ids-file", ids_file))
    # a blank id is no session id
    assert_one_line_error(create("--ids", "   "))


def test_scenario_whose_agent_name_is_not_its_definition(tmp_path):
    d = tmp_path / "d"
    assert replay(d, "ingest", SAMPLES_DIR / "otlp").returncode == 0
    rs = j(replay(d, "--json", "replays", "create", "--project", "support-agent", "--type", "session", "--all"))
    gen = j(replay(d, "--json", "scenarios", "generate", rs["replay_id"], "--agent-name", "bot",
                   "--scenario-name", "s1", "--rows", "2"))
    out = tmp_path / "s.jsonl"
    j(replay(d, "--json", "scenarios", "export", gen["scenario_id"], "--out", out))
    lines = out.read_text().splitlines()
    head = json.loads(lines[0])
    head["scenario"]["agent_name"] = "someone-else"
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([json.dumps(head, sort_keys=True), *lines[1:]]) + "\n")
    d2 = tmp_path / "d2"
    msg = assert_one_line_error(replay(d2, "scenarios", "import", bad))
    assert "someone-else" in msg and "bot" in msg
    assert j(replay(d2, "--json", "scenarios", "list"))["scenarios"] == []
    # a catalog that took such a file before the check: replay run fails in one line
    from models.scenario import ScenarioRow
    from models.settings import load_settings
    from tasks.scenario.scenarios import parse_export, store_scenario
    from tasks.store import catalog

    scenario, _agent, rows = parse_export(lines, str(out))
    scenario = {**scenario, "agent_name": "someone-else"}
    from datetime import datetime

    with catalog.writer(load_settings(data_dir=d2)) as con:
        store_scenario(con, {**scenario, "created_at": datetime.fromisoformat(scenario["created_at"])},
                       [ScenarioRow.model_validate(r.model_dump()) for r in rows])
    r = replay(d2, "run", "--scenario", gen["scenario_id"], "--agent", "examples.support_agent:oracle")
    msg = assert_one_line_error(r)
    assert "someone-else" in msg and "TypeError" not in msg
    assert j(replay(d2, "sql", "select count(*) n from executions", "--format", "json")) == [{"n": 0}]
