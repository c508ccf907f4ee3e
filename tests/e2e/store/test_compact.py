"""`replay compact` through the CLI: the merge-on-read versions of turns and sessions folded into
one part a day partition; every answer the same, a second run changes nothing, a reader during
it sees the old or the new lake, a killed run leaves a readable lake that the next one finishes,
and an ingest compacts by itself past REPLAY_COMPACT_MIN_FILES."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import ROOT, finish, replay, replay_env, start
from otlp_days import write_day

# the README's analytics queries, and every column of the merge-on-read views
QUERIES = [
    "select tool_name, count(*) calls, avg((status = 'error')::int) failure_rate from spans where kind = 'TOOL' "
    "group by tool_name order by failure_rate desc, tool_name",
    "select started_at::date as day, model, sum(input_tokens) as input, sum(output_tokens) as output "
    "from turns group by all order by all",
    "select session_id, user_id, turn_count, error_count, first_user_message from sessions "
    "where error_count > 0 and started_at > TIMESTAMP '2025-01-04' - interval 1 day order by all",
    "select turn_index, user_message, unnest(tool_calls).name tool, assistant_message from turns "
    "where session_id = 'sess_001_00003' order by turn_index, tool",
    "select reason, count(*) from rejects group by reason order by 2 desc, 1",
    "select * exclude (sessionized_at) from turns order by trace_id",  # (when: differs between two data dirs)
    "select * exclude (sessionized_at) from sessions order by session_id",
]


def ingest_days(d: Path, tmp: Path, days: int, sessions: int, first: int = 0, **env: str) -> None:
    """One `replay ingest` a day from day ``first`` (day 0: 2025-01-01), no compaction after it
    unless ``env`` says so."""
    env = replay_env(**({"REPLAY_COMPACT_MIN_FILES": "0"} | env))
    for day in range(first, first + days):
        f = tmp / f"otlp-{d.name}" / f"day-{day:03d}.jsonl"
        f.parent.mkdir(parents=True, exist_ok=True)
        write_day(f, day, sessions, seed=3)
        r = replay(d, "ingest", f, env=env, timeout=120)
        assert r.returncode == 0, r.stderr


def answers(d: Path) -> list[str]:
    out = []
    for q in QUERIES:
        r = replay(d, "sql", q, "--format", "csv")
        assert r.returncode == 0, r.stderr
        out.append(r.stdout)
    return out


def parts(d: Path, table: str) -> dict[str, list[str]]:
    """{partition: its part files}, the partitions that have any (a killed fold may leave its
    month folder empty)."""
    out = {p.name: sorted(f.name for f in p.glob("*.parquet")) for p in sorted((d / "lake" / table).glob("*=*"))}
    return {k: v for k, v in out.items() if v}


def no_leftovers(d: Path) -> None:
    assert not list((d / "lake").rglob("*.tmp"))
    assert not list((d / "lake" / "_staging").glob("*"))


@pytest.fixture(scope="module")
def year(tmp_path_factory) -> Path:
    """Four daily ingests: each partition of turns/sessions has a few versions' parts."""
    tmp = tmp_path_factory.mktemp("compact")
    d = tmp / "d"
    ingest_days(d, tmp, days=4, sessions=120)
    return d


def copy(src: Path, dest: Path) -> Path:
    subprocess.run(["cp", "-r", str(src), str(dest)], check=True)
    return dest


def test_compact_keeps_every_answer_and_a_second_run_changes_nothing(year, tmp_path):
    d = copy(year, tmp_path / "d")
    before = answers(d)
    assert max(len(v) for v in parts(d, "turns").values()) >= 2
    r = replay(d, "--json", "compact")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    by = {t["table"]: t for t in info["tables"]}
    assert set(by) == {"spans", "turns", "sessions"}
    # spans: the month but its newest day, into one part
    assert {k: len(v) for k, v in parts(d, "spans").items()} == {"day=2025-01-04": 1, "month=2025-01": 1}
    assert by["spans"]["compacted"] == by["spans"]["months"] == 1
    assert by["spans"]["rows_read"] == by["spans"]["rows_written"] > 0
    for name, t in by.items():
        if name == "spans":
            continue
        assert t["files_before"] > t["files_after"] == t["partitions"] == len(parts(d, name)), t
        assert t["max_files_after"] == 1 and t["compacted"] >= 1
        assert t["rows_read"] > t["rows_written"] > 0  # the superseded versions are gone
        assert all(len(v) == 1 for v in parts(d, name).values())
    assert answers(d) == before
    assert replay(d, "check").returncode == 0
    no_leftovers(d)
    # idempotent: nothing to fold, not a file touched
    lake = {t: parts(d, t) for t in ("spans", "turns", "sessions")}
    stamps = {f: f.stat().st_mtime_ns for f in (d / "lake").rglob("*.parquet")}
    again = json.loads(replay(d, "--json", "compact").stdout)
    assert all(t["compacted"] == 0 and t["files_before"] == t["files_after"] for t in again["tables"])
    assert {t: parts(d, t) for t in ("spans", "turns", "sessions")} == lake
    assert {f: f.stat().st_mtime_ns for f in (d / "lake").rglob("*.parquet")} == stamps
    assert answers(d) == before
    # the text output: files before and after per table
    text = replay(d, "compact").stdout
    assert "turns: 0 of" in text and "sessions: 0 of" in text


READER = """
import sys, time
from pathlib import Path
from models.settings import Settings
from tasks.store import catalog
settings, stop = Settings(data_dir=sys.argv[1]), Path(sys.argv[2])
while not stop.exists():
    with catalog.sql_reader(settings) as con:
        print(catalog.run_read_only(con, sys.argv[3])[1], flush=True)
    time.sleep(0.02)
"""


def test_a_reader_during_compaction_sees_the_old_or_the_new_lake(two_months, tmp_path):
    d = copy(two_months, tmp_path / "d")  # its days folded, and January folded into one part a table
    query = ("select count(*), sum(turn_count), (select count(*) from turns), (select sum(llm_calls) from turns), "
             "(select count(*) from spans), (select count(distinct span_id) from spans) from sessions")
    expected = json.loads(replay(d, "sql", query, "--format", "json").stdout)
    stop = tmp_path / "stop"
    loop = subprocess.Popen([sys.executable, "-c", READER, str(d), str(stop), query], cwd=ROOT, env=replay_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)  # the reader is reading
    comp = start(d, ["--json", "compact"])
    readers = [start(d, ["sql", query, "--format", "json"]) for _ in range(3)]
    r = finish(comp, 120)
    assert r.returncode == 0, r.stderr
    assert all(t["compacted"] >= 1 for t in json.loads(r.stdout)["tables"])
    time.sleep(0.5)
    stop.touch()
    out, err = loop.communicate(timeout=60)
    assert loop.returncode == 0, err
    seen = out.splitlines()
    assert len(seen) >= 3 and set(seen) == {seen[0]}, set(seen)
    for rd in readers:
        res = finish(rd, 120)
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout) == expected


@pytest.mark.parametrize("crash", ["compact-write:2", "compact:1", "compact:3"])
def test_a_killed_compaction_leaves_a_readable_lake_and_the_next_one_finishes(year, tmp_path, crash):
    d = copy(year, tmp_path / "d")
    before = answers(d)
    old = {t: parts(d, t) for t in ("spans", "turns")}
    r = replay(d, "compact", env=replay_env(REPLAY_TEST_CRASH_AFTER=crash))
    assert r.returncode == -9, (r.returncode, r.stderr)
    if crash.startswith("compact:"):
        # the crash came between a new part's rename and its old parts' removal (the spans' month
        # part is the first): the journal says what to finish
        assert list((d / "lake").glob("_compact-*.journal"))
        assert any(len(files) > len(old["spans"].get(k, [])) for k, files in parts(d, "spans").items())
    else:
        assert {t: parts(d, t) for t in ("spans", "turns")} == old  # nothing switched yet
    # readable, and the same answers: the first reader finishes what was switched (the journal
    # stays while a part it names is not in place: a writer removes it)
    assert answers(d) == before
    assert replay(d, "check").returncode == 0
    r = replay(d, "--json", "compact")
    assert r.returncode == 0, r.stderr
    assert all(len(v) == 1 for t in ("turns", "sessions") for v in parts(d, t).values())
    assert answers(d) == before
    no_leftovers(d)
    assert not list((d / "lake").glob("_compact-*.journal"))


def test_an_ingest_compacts_by_itself_past_the_threshold(tmp_path):
    auto, manual = tmp_path / "auto", tmp_path / "manual"
    ingest_days(auto, tmp_path, days=3, sessions=60, REPLAY_COMPACT_MIN_FILES="2")
    ingest_days(manual, tmp_path, days=3, sessions=60)  # never after an ingest
    # each day's sessions going on the next day add a part to the day before: past 2, folded
    assert max(len(v) for v in parts(manual, "turns").values()) == 2
    assert all(len(v) == 1 for t in ("turns", "sessions") for v in parts(auto, t).values())
    runs = json.loads(replay(auto, "sql", "select count(*) n from stage_runs where stage = 'compact'",
                             "--format", "json").stdout)
    assert runs == [{"n": 2}]  # after the 2nd and the 3rd ingest
    assert answers(auto) == answers(manual)
    # the default threshold (8) leaves these two-part partitions alone
    default = copy(manual, tmp_path / "default")
    write_day(tmp_path / "day3.jsonl", 3, 60, seed=3)
    assert replay(default, "ingest", tmp_path / "day3.jsonl").returncode == 0
    assert max(len(v) for v in parts(default, "turns").values()) == 2


@pytest.fixture(scope="module")
def two_months(tmp_path_factory) -> Path:
    """Four daily ingests from 2025-01-30 to 2025-02-02: January is a closed month."""
    tmp = tmp_path_factory.mktemp("months")
    d = tmp / "d"
    ingest_days(d, tmp, days=4, sessions=60, first=29)
    return d


@pytest.mark.parametrize("crash", [None, "compact:1"])
def test_a_closed_month_is_folded_into_one_part_a_table(two_months, tmp_path, crash):
    d = copy(two_months, tmp_path / "d")
    before = answers(d)
    assert {t: sorted(parts(d, t)) for t in ("spans", "turns")} == {
        t: ["day=2025-01-30", "day=2025-01-31", "day=2025-02-01", "day=2025-02-02"] for t in ("spans", "turns")}
    if crash:  # killed right after the spans' month part was renamed in: January's spans are there twice
        r = replay(d, "compact", env=replay_env(REPLAY_TEST_CRASH_AFTER=crash))
        assert r.returncode == -9, (r.returncode, r.stderr)
        checked = replay(d, "check")  # (check reads the files, and finishes nothing)
        assert checked.returncode == 1 and "killed while switching" in checked.stdout + checked.stderr
        assert answers(d) == before  # the first reader finished the switch
    r = replay(d, "--json", "compact")
    assert r.returncode == 0, r.stderr
    months = {t["table"]: t["months"] for t in json.loads(r.stdout)["tables"]}
    assert months == ({"spans": 0, "turns": 1, "sessions": 1} if crash else {"spans": 1, "turns": 1, "sessions": 1})
    for t in ("spans", "turns", "sessions"):
        assert {k: len(v) for k, v in parts(d, t).items()} == {"month=2025-01": 1, "day=2025-02-01": 1,
                                                               "day=2025-02-02": 1}, t
    assert answers(d) == before
    assert replay(d, "check").returncode == 0
    no_leftovers(d)
    assert not list((d / "lake").glob("_compact-*.journal"))
