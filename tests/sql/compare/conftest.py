"""The sets whose truth is known (tests/support/truth_data.py, the bundled sample), ingested
once for this folder, and the truth agents' runs of them (each (set, agent, repeat) run once)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
import truth_agents
from truth_data import KEY_OVERRIDES, write_shop_traces

from models.settings import SAMPLES_DIR, load_settings
from models.simulate import RunOptions

EXPECTED = json.loads((SAMPLES_DIR / "expected.json").read_text())


@dataclass
class Replayable:
    """A scenario to replay: where its catalog is, and production's turn count per conversation."""

    settings: Any
    scenario_id: str
    turns: dict[str, int]  # origin id (session, or trace for a trace replay) -> production turns


def scenario_of(settings, project: str, replay_type: str, **selection: Any) -> str:
    """A scenario with one row per selected conversation (run_scenario, as `replay scenarios generate`)."""
    from tasks.scenario import replays, run_scenario
    from tasks.store import catalog

    with catalog.writer(settings) as con:
        rs = replays.create(con, project, replay_type, **selection)
    return run_scenario(settings, rs["replay_id"], f"{project}_truth", f"truth_{replay_type}",
                        rows=len(rs["ids"])).scenario_id


# --------------------------------------------------------------------------- the sets
@pytest.fixture(scope="package")
def shop(tmp_path_factory):
    """The generated set, ingested; its manifest and the scenario of all its sessions."""
    from tasks.ingest import run_ingest

    root = tmp_path_factory.mktemp("shop")
    manifest = write_shop_traces(root / "traces")
    settings = load_settings(data_dir=root / "data")
    run_ingest(settings, paths=[str(root / "traces" / f) for f in manifest["files"]])
    turns = {x["session_id"]: len(x["turns"]) for x in manifest["sessions"]}
    return manifest, Replayable(settings, scenario_of(settings, "shop", "session", select_all=True), turns)


@pytest.fixture(scope="package")
def sample(tmp_path_factory):
    """The bundled sample, ingested: the scenario of all its sessions, and that of its lone traces."""
    from tasks.ingest import run_ingest

    settings = load_settings(data_dir=tmp_path_factory.mktemp("sample") / "data")
    run_ingest(settings, paths=[str(SAMPLES_DIR / "otlp")])
    project = EXPECTED["project"]
    sessions = {sid: len(x["turns"]) for sid, x in EXPECTED["sessions"].items()}
    lone = {t["trace_id"]: 1 for t in EXPECTED["lone_traces"]}
    return (Replayable(settings, scenario_of(settings, project, "session", select_all=True), sessions),
            Replayable(settings, scenario_of(settings, project, "trace", where="session_id is null"), lone))


@pytest.fixture(scope="package")
def replayed(shop, sample):
    """replayed(set, agent, repeat=1, run=0, **options) -> (set, info, chats, turns, missing
    rewordings): each run once (``run``: another run of the same agent, for an A/A test;
    ``options``: RunOptions beside the default ``max_failure_rate=1.0``). The generated set is
    run with its tool-match overrides (truth_data.KEY_OVERRIDES), as a user would pass them."""
    from stages import run_local

    from models.simulate import ToolMatchConfig, ToolRule
    from tasks.store import catalog

    sets = {"shop": shop[1], "sample": sample[0], "sample_lone": sample[1]}
    overrides = ToolMatchConfig(tools={t: ToolRule(fields=f) for t, f in KEY_OVERRIDES.items()})
    done: dict[tuple, Any] = {}

    def get(which: str, agent: str, repeat: int = 1, run: int = 0, **options: Any):
        key = (which, agent, repeat, run, tuple(sorted(options.items())))
        if key not in done:
            r = sets[which]
            truth_agents.reset_missing()
            opts = {"max_failure_rate": 1.0, "repeat": repeat, **options}
            if which == "shop":
                opts["tool_match"] = overrides
            info = run_local(r.settings, r.scenario_id, f"truth_agents:{agent}", RunOptions(**opts))
            with catalog.reader(r.settings) as con:
                chats = catalog.rows(con, "execution_chats", {"execution_id": info.execution_id})
                turns = [dict(zip(("chat_id", "turn_index", "tool_calls"), row, strict=True)) for row in con.execute(
                    "select chat_id, turn_index, to_json(tool_calls)::varchar from chat_turns "
                    "where execution_id = ? order by chat_id, turn_index", [info.execution_id]).fetchall()]
            for t in turns:
                t["tool_calls"] = json.loads(t["tool_calls"]) if t["tool_calls"] else []
            done[key] = (r, info, chats, turns, truth_agents.missing())
        return done[key]

    return get
