"""An exported scenario, edited and imported again (the issue: it was refused, and only a hand
edit of its id got around it): refused in one line that says what differs and suggests
``--as-new``, which imports it as a new scenario derived from the original; ``scenarios show``
prints a scenario's metadata and rows."""

from __future__ import annotations

import json

import pytest
from cli_helpers import assert_one_line_error, replay

from models.settings import SAMPLES_DIR


def j(r):
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("edit")
    d = tmp / "data"
    assert replay(d, "ingest", SAMPLES_DIR / "otlp").returncode == 0
    rs = j(replay(d, "--json", "replays", "create", "--project", "support-agent", "--type", "session", "--all"))
    sc = j(replay(d, "--json", "scenarios", "generate", rs["replay_id"], "--agent-name", "bot", "--scenario-name",
                  "s", "--rows", "3"))
    out = tmp / "s.jsonl"
    j(replay(d, "--json", "scenarios", "export", sc["scenario_id"], "--out", out))
    return d, sc["scenario_id"], out


def edited(src, dst, row=None, situation=None, system_prompt=None, drop=None):
    lines = [json.loads(x) for x in src.read_text().splitlines()]
    if row is not None:
        lines[1 + row]["situation"] = situation
    if system_prompt is not None:
        lines[0]["agent_definition"]["system_prompt"] = system_prompt
    if drop is not None:
        lines[0]["scenario"].pop(drop)
    dst.write_text("\n".join(json.dumps(x, sort_keys=True) for x in lines) + "\n")
    return dst


def test_an_edited_export_is_refused_with_what_differs_then_imported_as_new(exported, tmp_path):
    d, original, out = exported
    situation = "A customer who wants a refund for a cracked screen, edited by a reviewer for this test."
    b = edited(out, tmp_path / "b.jsonl", row=1, situation=situation)
    line = assert_one_line_error(replay(d, "scenarios", "import", b))
    assert f"scenario {original} with other content" in line and "(it differs in row 1)" in line
    assert f"replay scenarios import {b} --as-new" in line
    new = j(replay(d, "--json", "scenarios", "import", b, "--as-new"))
    assert new["scenario_id"] != original and new["derived_from"] == original and new["imported"] is True
    assert (new["agent_name"], new["agent_version"]) == ("bot", 1)  # the same agent definition: reused
    listed = {s["scenario_id"]: s for s in j(replay(d, "--json", "scenarios", "list"))["scenarios"]}
    assert listed[new["scenario_id"]]["derived_from"] == original and listed[original]["derived_from"] is None
    shown = j(replay(d, "--json", "scenarios", "show", new["scenario_id"]))
    assert shown["scenario"]["derived_from"] == original and shown["scenario"]["source"] == "import"
    assert [r["situation"] for r in shown["rows"]][1] == situation
    text = replay(d, "scenarios", "show", new["scenario_id"])
    assert text.returncode == 0, text.stderr
    assert f"derived from: {original}" in text.stdout and "agent: bot v1" in text.stdout
    assert situation[:40] in text.stdout and situation not in text.stdout  # cut to the cell
    assert "(3 rows; long cells cut" in text.stdout
    assert f"next: replay run --scenario {new['scenario_id']}" in text.stdout
    # the new scenario runs
    run = j(replay(d, "--json", "run", "--scenario", new["scenario_id"], "--agent", "examples.support_agent:agent",
                   timeout=120))
    assert run["status"] == "completed" and run["total_chats"] == 3
    # the original is untouched
    assert j(replay(d, "--json", "scenarios", "show", original))["rows"][1]["situation"] != situation


def test_an_edited_agent_definition_becomes_a_new_version_with_as_new(exported, tmp_path):
    d, original, out = exported
    c = edited(out, tmp_path / "c.jsonl", system_prompt="You are a terse support agent.")
    line = assert_one_line_error(replay(d, "scenarios", "import", c))
    assert "agent definition" in line and "--as-new" in line
    new = j(replay(d, "--json", "scenarios", "import", c, "--as-new"))
    assert new["derived_from"] == original and new["agent_version"] == 2


def test_an_export_from_before_derived_from_still_imports(exported, tmp_path):
    _d, original, out = exported
    old = edited(out, tmp_path / "old.jsonl", drop="derived_from")
    other = tmp_path / "other"
    assert j(replay(other, "--json", "scenarios", "import", old)) == {"scenario_id": original, "rows": 3,
                                                                     "imported": True}
    assert j(replay(other, "--json", "scenarios", "import", old))["imported"] is False  # the same file: no-op
    assert "no scenario scn_nope" in assert_one_line_error(replay(other, "scenarios", "show", "scn_nope"))
