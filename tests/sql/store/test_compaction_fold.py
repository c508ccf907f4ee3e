"""Compaction on a real lake and catalog in a tmp dir: what a folded partition keeps — the latest
version of each key in it, a tombstone (it may hide a version in another partition), a column an
older part lacks (NULL) — and that the views read the same rows before and after."""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa
import pyarrow.parquet as pq

from models import tables
from models.settings import Settings
from tasks.store import catalog, compact, lake

DAY1, DAY2 = datetime(2026, 3, 1, 9), datetime(2026, 3, 2, 9)


def session(sid: str, version: int, at: datetime, turns: int) -> dict:
    row = {c.name: lake.blank(c.type, at) for c in tables.SESSIONS.columns}
    return row | {"session_id": sid, "version": version, "turn_count": turns, "started_at": at, "ended_at": at,
                  "project": "p", "deleted": False, "sessionized_at": at}


def write(settings: Settings, rows: list[dict], day: datetime, name: str, drop: str | None = None) -> None:
    table = pa.Table.from_pylist(rows, schema=lake.SESSIONS)
    if drop:  # a part an older Replay wrote, before the column existed
        table = table.drop_columns([drop])
    lake.write_atomic(table, lake.table_dir(settings.lake_dir, "sessions") / f"day={day.date()}" / name)


def view(settings: Settings) -> list[tuple]:
    with catalog.writer(settings) as con:  # views refreshed: the lake may have new tables
        catalog.refresh_views(con, settings.lake_dir)
    with catalog.reader(settings) as con:
        return con.execute("select session_id, turn_count, last_assistant_message from sessions "
                           "order by session_id").fetchall()


def test_a_fold_keeps_the_latest_version_and_the_tombstones(tmp_path):
    settings = Settings(data_dir=tmp_path / "d")
    write(settings, [session("a", 1, DAY1, 1), session("b", 1, DAY1, 1), session("c", 1, DAY1, 1)], DAY1, "v1.parquet",
          drop="last_assistant_message")
    write(settings, [session("a", 2, DAY1, 2)], DAY1, "v2.parquet")
    # b moved to day 2 (a later version elsewhere), c was deleted: a tombstone on day 1
    write(settings, [session("b", 3, DAY2, 5)], DAY2, "v3.parquet")
    write(settings, [lake.tombstone(tables.SESSIONS, {"session_id": "c"}, DAY1, version=3)], DAY1, "v3.parquet")
    before = view(settings)
    assert before == [("a", 2, None), ("b", 5, None)]

    info = compact.run_compact(settings)
    t = {x.table: x for x in info.tables}["sessions"]
    assert (t.compacted, t.files_before, t.files_after, t.rows_read, t.rows_written) == (1, 4, 2, 5, 3)
    (part,) = (settings.lake_dir / "sessions" / "day=2026-03-01").glob("*.parquet")
    kept = pq.read_table(part).select(["session_id", "version", "deleted", "last_assistant_message"]).to_pylist()
    assert sorted(kept, key=lambda r: r["session_id"]) == [
        {"session_id": "a", "version": 2, "deleted": False, "last_assistant_message": None},
        {"session_id": "b", "version": 1, "deleted": False, "last_assistant_message": None},  # day 2 wins
        {"session_id": "c", "version": 3, "deleted": True, "last_assistant_message": None}]
    assert [(f.name, f.type) for f in pq.read_schema(part)] == [(f.name, f.type) for f in lake.SESSIONS]
    assert lake.read_part(part).num_rows == 3  # page checksums, verified
    assert view(settings) == before
    assert compact.run_compact(settings).tables[1].compacted == 0  # idempotent
    assert not compact.due(settings.lake_dir, 2)


def test_due_counts_the_parts_of_a_partition(tmp_path):
    settings = Settings(data_dir=tmp_path / "d")
    assert not compact.due(settings.lake_dir, 2)
    for v in range(3):
        write(settings, [session("a", v, DAY1, 1)], DAY1, f"v{v}.parquet")
    assert compact.due(settings.lake_dir, 3) and not compact.due(settings.lake_dir, 4)
    assert not compact.due(settings.lake_dir, 0)  # 0: never after an ingest
    assert [d.name for d in compact.MERGE_ON_READ] == ["turns", "sessions"]
