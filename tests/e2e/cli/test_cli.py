"""The ``replay`` command line end to end, as a user runs it: a fresh interpreter, a clean
environment, the data dir from ``REPLAY_DATA_DIR`` or ``--data-dir``."""

from __future__ import annotations

import json

from cli_helpers import finish, replay, replay_all, replay_env, start

from models.settings import SAMPLES_DIR

EXPECTED = json.loads((SAMPLES_DIR / "expected.json").read_text())
SUMMARY = EXPECTED["summary"]


def replay_all_env(calls):
    """Like cli_helpers.replay_all, with the data dir given by REPLAY_DATA_DIR instead of --data-dir."""
    procs = [start(None, args, env=replay_env(REPLAY_DATA_DIR=str(d))) for args, d in calls]
    return [finish(p) for p in procs]


def test_demo_on_an_empty_data_dir_prints_the_sessions(tmp_path):
    data = tmp_path / "from-env"
    plain, as_json = replay_all_env([(["demo"], data / "a"), (["--json", "demo"], data / "b")])

    assert plain.returncode == 0, plain.stderr
    assert plain.stderr == ""
    assert str(data / "a") in plain.stdout  # REPLAY_DATA_DIR picked the data dir
    for sid in EXPECTED["sessions"]:
        assert sid in plain.stdout, sid
    assert f"{SUMMARY['sessions']} sessions, {SUMMARY['traces']} turns" in plain.stdout
    assert (data / "a" / "replay.duckdb").exists() and (data / "a" / "lake").is_dir()

    assert as_json.returncode == 0, as_json.stderr
    assert len(as_json.stdout.splitlines()) == 1
    out = json.loads(as_json.stdout)
    assert isinstance(out, dict)
    assert out["data_dir"] == str(data / "b")
    assert (out["ingest"]["ingested"], out["ingest"]["rejected"]) == (SUMMARY["spans"], 0)
    assert (out["ingest"]["sessions"], out["ingest"]["turns"]) == (SUMMARY["sessions"], SUMMARY["traces"])
    assert {s["session_id"] for s in out["sessions"]} == set(EXPECTED["sessions"])
    by_id = {s["session_id"]: s for s in out["sessions"]}
    for sid, exp in EXPECTED["sessions"].items():
        assert (by_id[sid]["user_id"], by_id[sid]["turns"]) == (exp["user_id"], exp["turn_count"])


def test_ingest_the_sample_then_count_its_sessions(tmp_path):
    data = tmp_path / "data"
    r = replay(data, "ingest", SAMPLES_DIR / "otlp")
    assert r.returncode == 0, r.stderr
    assert f"ingested {SUMMARY['spans']}" in r.stdout

    csv_, js = replay_all([(data, ["sql", "select count(*) from sessions", "--format", "csv"]),
                           (data, ["sql", "select count(*) as n from turns", "--format", "json"])])
    assert csv_.returncode == 0, csv_.stderr
    assert csv_.stdout.splitlines()[1:] == [str(SUMMARY["sessions"])]
    assert json.loads(js.stdout) == [{"n": SUMMARY["traces"]}]

    # again: nothing new, the same catalog
    r = replay(data, "--json", "ingest", SAMPLES_DIR / "otlp")
    info = json.loads(r.stdout)
    assert (info["ingested"], info["duplicates"], info["sessions"]) == (0, SUMMARY["spans"], SUMMARY["sessions"])
