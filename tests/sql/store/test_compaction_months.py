"""Compaction's month tier on a real lake and catalog in a tmp dir: a closed month's parts (every
month before the newest one there is) of spans, turns and sessions become one part in
``month=YYYY-MM``; in the newest month turns/sessions keep their day partitions and spans fold all
but the newest day; the views read the same rows; a late version for a folded month is folded in
by the next run; a switch a kill cut short is finished by the next reader or writer from its
journal."""

from __future__ import annotations

from datetime import datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq

from models import tables
from models.settings import Settings
from tasks.store import catalog, check, compact, lake

FEB, MAR = datetime(2026, 2, 10, 9), datetime(2026, 3, 2, 9)


def span(trace: int, span_id: int, at: datetime) -> dict:
    row = {c.name: lake.blank(c.type, at) for c in tables.SPANS.columns}
    return row | {"trace_id": f"{trace:032x}", "span_id": f"{span_id:016x}", "name": f"s{span_id}",
                  "kind": "TOOL", "status": "ok", "project": "p", "start_time": at, "end_time": at}


def session(sid: str, version: int, at: datetime, turns: int) -> dict:
    row = {c.name: lake.blank(c.type, at) for c in tables.SESSIONS.columns}
    return row | {"session_id": sid, "version": version, "turn_count": turns, "started_at": at, "ended_at": at,
                  "project": "p", "deleted": False, "sessionized_at": at}


def write(settings: Settings, decl: tables.Table, rows: list[dict], day: datetime, name: str) -> None:
    table = pa.Table.from_pylist(rows, schema=decl.schema())
    lake.write_atomic(table, lake.table_dir(settings.lake_dir, decl.name) / f"day={day.date()}" / name)


def view(settings: Settings) -> tuple[list[tuple], list[tuple]]:
    with catalog.writer(settings) as con:
        catalog.refresh_views(con, settings.lake_dir)
    with catalog.reader(settings) as con:
        spans = con.execute("select trace_id, span_id, day from spans order by all").fetchall()
        sessions = con.execute("select session_id, turn_count from sessions order by all").fetchall()
    return spans, sessions


def folders(settings: Settings, table: str) -> dict[str, int]:
    return {d.name: len(files) for d, files in compact.partitions(settings.lake_dir, table).items()}


def lake_of_two_months(settings: Settings) -> None:
    for day in range(3):  # three February days and two March days, two ingests each
        for at, base in ((FEB + timedelta(days=day), 0), (MAR + timedelta(days=day % 2), 100)):  # March: 2 days
            write(settings, tables.SPANS, [span(base + day, 1, at), span(base + day, 2, at)], at, f"a{day}.parquet")
            write(settings, tables.SPANS, [span(base + day, 3, at)], at, f"b{day}.parquet")
            write(settings, tables.SESSIONS, [session(f"s{base + day}", 1, at, 1)], at, f"a{day}.parquet")
            write(settings, tables.SESSIONS, [session(f"s{base + day}", 2, at, 2)], at, f"b{day}.parquet")


def test_month_of_names_the_month_of_a_day_or_month_partition():
    assert compact.month_of("day=2026-02-10") == compact.month_of("month=2026-02") == "2026-02"
    assert compact.month_of("exec=abc") is None and compact.month_of("day=2026-02") is None


def test_a_closed_month_becomes_one_part_and_the_newest_month_keeps_its_days(tmp_path):
    settings = Settings(data_dir=tmp_path / "d")
    lake_of_two_months(settings)
    before = view(settings)
    assert len(before[0]) == 18 and len(before[1]) == 6
    assert not compact.due(settings.lake_dir, 7) and compact.due(settings.lake_dir, 6)  # February: 6 parts

    info = compact.run_compact(settings)
    by = {t.table: t for t in info.tables}
    assert set(by) == {"spans", "turns", "sessions"}
    # spans: February, and March but its newest day (2026-03-03)
    assert (by["spans"].months, by["spans"].compacted, by["spans"].rows_read, by["spans"].rows_written) == (2, 2, 15, 15)
    # sessions: February folded as a month, the two March days each as a day partition
    assert (by["sessions"].months, by["sessions"].compacted) == (1, 3)
    assert by["sessions"].rows_written == 3 + 3  # the latest version of each key
    assert folders(settings, "spans") == {"day=2026-03-03": 2, "month=2026-02": 1, "month=2026-03": 1}
    assert folders(settings, "sessions") == {"day=2026-03-02": 1, "day=2026-03-03": 1, "month=2026-02": 1}
    assert not list((settings.lake_dir / "spans").glob("day=2026-02-*"))  # emptied folders removed
    (part,) = (settings.lake_dir / "spans" / "month=2026-02").glob("*.parquet")
    days = [t.date() for t in pq.read_table(part, columns=["start_time"]).column(0).to_pylist()]
    assert days == sorted(days)  # the month's spans in day order
    assert lake.read_part(part).num_rows == 9  # page checksums, verified
    assert view(settings) == before
    assert check.run_check(settings).broken == []
    # idempotent: nothing left to fold
    again = compact.run_compact(settings)
    assert all(t.compacted == 0 for t in again.tables) and not compact.due(settings.lake_dir, 2)


def test_a_late_version_for_a_folded_month_is_folded_in_by_the_next_run(tmp_path):
    settings = Settings(data_dir=tmp_path / "d")
    lake_of_two_months(settings)
    compact.run_compact(settings)
    write(settings, tables.SESSIONS, [session("s1", 3, FEB + timedelta(days=1), 7)], FEB + timedelta(days=1), "late.parquet")
    assert ("s1", 7) in view(settings)[1]
    assert not compact.due(settings.lake_dir, 8) and compact.due(settings.lake_dir, 2)  # 2 parts in February
    info = compact.run_compact(settings)
    assert {t.table: t.months for t in info.tables}["sessions"] == 1
    assert folders(settings, "sessions")["month=2026-02"] == 1 and "day=2026-02-11" not in folders(settings, "sessions")
    assert ("s1", 7) in view(settings)[1]


def test_a_switch_cut_short_is_finished_by_the_next_writer(tmp_path):
    settings = Settings(data_dir=tmp_path / "d")
    lake_of_two_months(settings)
    before = view(settings)
    old = sorted(str(f) for d, fs in compact.partitions(settings.lake_dir, "spans").items()
                 if d.name.startswith("day=2026-02") for f in fs)
    # what a kill right after the month part's rename leaves: the new part, the old ones, the journal
    new = lake.table_dir(settings.lake_dir, "spans") / "month=2026-02" / "compact-1.parquet"
    rows = pa.concat_tables([lake.read_part(f, schema=lake.SPANS) for f in old])
    lake.write_atomic(rows, new)
    journal = settings.lake_dir / "_compact-compact-1.journal"
    lake.write_bytes_durably(journal, f'[{{"new": "{new}", "old": {old!r}}}]'.replace("'", '"').encode())
    (problem,) = check.run_check(settings).broken  # February's spans are in the lake twice
    assert problem.path == str(journal) and "killed while switching" in problem.reason
    assert view(settings) == before  # a reader finishes the switch before it reads
    assert not journal.exists() and check.run_check(settings).broken == []
    assert folders(settings, "spans")["month=2026-02"] == 1


def test_a_reader_leaves_a_journal_whose_parts_are_not_all_in_place(tmp_path):
    settings = Settings(data_dir=tmp_path / "d")
    lake_of_two_months(settings)
    before = view(settings)
    missing = lake.table_dir(settings.lake_dir, "sessions") / "month=2026-02" / "compact-1.parquet"
    journal = settings.lake_dir / "_compact-compact-1.journal"
    lake.write_bytes_durably(journal, f'[{{"new": "{missing}", "old": []}}]'.encode())
    assert view(settings) == before and journal.exists()  # a live switch may rename it yet
    with catalog.write_lock(settings, sweep_parts=True):  # a writer: no switch is live
        pass
    assert not journal.exists()


def test_a_span_already_in_a_folded_month_is_a_duplicate(tmp_path, settings, ingest):
    from otlp_days import write_day

    files = [tmp_path / "jan30.jsonl", tmp_path / "jan31.jsonl", tmp_path / "feb01.jsonl"]
    for f, day in zip(files, (29, 30, 31), strict=True):  # day 0: 2025-01-01
        write_day(f, day, 20, seed=5)
    first = ingest(files)
    compact.run_compact(settings)
    assert "month=2025-01" in folders(settings, "spans")
    again = ingest(files[:2])  # January's spans: now in the month part only
    assert again.read == again.duplicates > 0 and again.ingested == 0
    with catalog.reader(settings) as con:
        assert con.execute("select count(*) from spans").fetchone()[0] == first.ingested
