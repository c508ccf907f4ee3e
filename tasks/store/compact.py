"""Compaction: the lake's small parts folded into few — one part a day partition of the
merge-on-read tables, and one part a closed month of every folded table.

Sessionize writes every rebuilt trace and session as a new version (``turns``, ``sessions``;
the views keep the latest, tombstones hidden), a few parts per run and partition; extract writes
the spans of each ingest as parts of their day partitions. A year of nightly ingests leaves
hundreds of small parts, and every query opens them all. Compaction rewrites:

- a day partition of ``turns``/``sessions`` that has ``min_files`` parts or more as ONE part
  holding the latest version of each key in it (a tombstone stays: it may hide a version in
  another partition), so the views read the same rows before and after;
- the parts of a CLOSED month (a month before the newest month the table has data for) of
  ``spans``, ``turns`` and ``sessions``, its day partitions and an earlier month part alike, once
  they are ``min_files`` or more, as ONE part in ``month=YYYY-MM/`` (spans: every row, in day
  order; turns/sessions: the latest version of each key, as above); and for spans, which have
  no versions, the newest month's parts but its newest day's too. The views read every
  ``*/*.parquet`` and take the day from the rows, never from the folder, so a year is about 12
  month parts and the current month's days. A late version for a folded month (a session that
  goes on) lands in its day partition again and is folded in by a later run.

- **Bounded memory**: one partition or month at a time, DuckDB (under ``duckdb_memory_limit``,
  spilling to the run's staging dir) folds it and hands the rows over in batches, which pyarrow
  writes with page checksums as every part of the lake (``replay check`` verifies them).
- **Atomic for readers**: the new parts are written under hidden temporary names while readers
  go on reading the old ones; then, with the catalog open for writing (so that no reader is in
  the middle of a query: DuckDB lets none open it meanwhile), each is renamed into place and
  the parts it replaces are deleted, in one short step. A reader sees the old set or the new
  one. A process that reads the lake's files directly keeps the files it opened (a deleted file
  stays readable to whoever has it open).
- **Crash-safe**: killed while writing, the lake is untouched and the next writer removes the
  temporary parts (:func:`tasks.store.lake.sweep`). The switch is written to a journal
  (``lake/_compact-<run>.journal``) first; killed while switching, the next reader or writer
  finishes it from the journal before it reads: it deletes the old parts of every new part that
  was renamed in (:func:`tasks.store.lake.finish_switches`). Only a process that reads the lake's
  files itself, in between, can see a day partition of turns/sessions with its old and new parts
  (the same latest versions) or a month of spans twice (``replay check`` says so).
- **Idempotent**: a partition or month of one part is left as it is, so a second run changes
  nothing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from models import tables
from models.compact import CompactInfo, CompactTable
from tasks.common.processes import critical
from tasks.store import catalog, lake, locks, remote

# the tables whose rows are versions of a key (the latest wins): folded a day partition at a time
MERGE_ON_READ: tuple[tables.Table, ...] = tuple(t for t in tables.LAKE if {"version", "deleted"} <= set(t.names))
# the tables whose closed months are folded into one part (the ingested ones, by day of their rows)
MONTHLY: tuple[tables.Table, ...] = (tables.SPANS, *MERGE_ON_READ)
FETCH_ROWS = 8_192  # rows DuckDB hands over at a time (a batch of 50 MB answers stays small)
# a compacted part's row groups: up to this many rows, each column as large as a reader may hold
# at once (lake.ROW_GROUP_BYTES): a year in 13 parts of 8,192-row groups read 3x slower than one
# file of DuckDB's 122,880-row groups
FOLD_GROUP_ROWS = 131_072


def partitions(lake_dir: Path, table: str) -> dict[Path, list[Path]]:
    """{day partition dir: its part files}, the partitions in order."""
    out: dict[Path, list[Path]] = {}
    for f in lake.list_files(lake_dir, table):
        out.setdefault(f.parent, []).append(f)
    return out


def month_of(partition: str) -> str | None:
    """``day=2025-06-03`` and ``month=2025-06`` -> ``2025-06``; None for another folder."""
    for prefix, size in (("day=", 10), ("month=", 7)):
        if partition.startswith(prefix) and len(partition) == len(prefix) + size:
            return partition[len(prefix):len(prefix) + 7]
    return None


def fold_groups(lake_dir: Path, decl: tables.Table, min_files: int) -> list[tuple[Path, list[Path]]]:
    """What to fold in ``decl``: (the folder its one new part goes to, the parts it replaces), for
    every group of ``min_files`` parts or more. A closed month's parts (every folder of a month
    before the newest month there is) -> ``month=YYYY-MM``. In the newest month, a merge-on-read
    table folds each day partition into one part; spans (no versions to keep apart) fold the
    month's parts but those of its newest day into ``month=YYYY-MM``, so that a month of nightly
    ingests is two parts, not thirty."""
    min_files = max(2, min_files)
    parts = partitions(lake_dir, decl.name)
    months = {d: month_of(d.name) for d in parts}
    newest = max((m for m in months.values() if m), default=None)
    newest_day = max((d.name for d in parts if d.name.startswith("day=")), default=None)
    closed: dict[str, list[Path]] = {}
    current: list[Path] = []
    out: list[tuple[Path, list[Path]]] = []
    for d, files in parts.items():
        m = months[d]
        if m is None:
            continue  # not a day or month partition: not compaction's
        if m < newest:  # type: ignore[operator]
            closed.setdefault(m, []).extend(files)
        elif decl in MERGE_ON_READ:
            if len(files) >= min_files:
                out.append((d, files))
        elif d.name != newest_day:
            current.extend(files)
    if len(current) >= min_files:
        closed[newest] = current  # type: ignore[index]
    out += [(lake.table_dir(lake_dir, decl.name) / f"month={m}", files)
            for m, files in sorted(closed.items()) if len(files) >= min_files]
    return out


def due(lake_dir: Path, min_files: int) -> bool:
    """Whether there is anything to fold with ``min_files`` (a listing of the partitions: ~1 ms
    a hundred)."""
    if min_files <= 0:
        return False
    return any(fold_groups(lake_dir, decl, min_files) for decl in MONTHLY)


def fold_query(decl: tables.Table) -> str:
    """``sql/compact_partition.sql`` for a merge-on-read ``decl`` (its empty relation, key and
    order filled in); ``sql/compact_spans.sql`` for the spans."""
    if decl not in MERGE_ON_READ:
        return catalog.sql("compact_spans").replace("{empty}", catalog.empty_relation(decl))
    order = ["started_at", *decl.key] if "started_at" in decl.names else list(decl.key)
    return (catalog.sql("compact_partition").replace("{empty}", catalog.empty_relation(decl))
            .replace("{key}", ", ".join(map(catalog.ident, decl.key)))
            .replace("{order}", ", ".join(map(catalog.ident, order))))


def _write_groups(w: pq.ParquetWriter, reader: pa.RecordBatchReader, schema: pa.Schema) -> int:
    """The reader's batches written as row groups of up to FOLD_GROUP_ROWS rows and, each column,
    ``lake.ROW_GROUP_BYTES``; returns the rows written. Batches are gathered until a group is full;
    the last, unfilled group of a gathering waits for the next batches (rather than being
    written as a small group of its own), so every group but the file's last is full."""
    rows = 0
    pending: list[pa.RecordBatch] = []
    sizes: list[int] = []  # each column's bytes pending, the carried rows included
    pending_rows = 0
    carry: pa.Table | None = None  # the unfilled last group of the previous gathering (conformed)

    def write(final: bool) -> pa.Table | None:
        part = lake.conform(pa.Table.from_batches(pending, schema=pending[0].schema), schema) if pending else None
        part = part if carry is None else carry if part is None else pa.concat_tables([carry, part])
        bounds = lake.row_group_bounds(part, max_bytes=lake.ROW_GROUP_BYTES, max_rows=FOLD_GROUP_ROWS)
        cut = part.num_rows if final or len(bounds) == 1 else bounds[-1]
        for start, end in zip(bounds, bounds[1:] + [part.num_rows], strict=True):
            if start >= cut:
                break
            w.write_table(part.slice(start, end - start), row_group_size=FOLD_GROUP_ROWS)
        nonlocal rows
        rows += cut
        return part.slice(cut) if cut < part.num_rows else None

    for batch in reader:
        pending.append(batch)
        sizes = [s + c.nbytes for s, c in zip(sizes or [0] * batch.num_columns, batch.columns, strict=True)]
        pending_rows += batch.num_rows
        if pending_rows >= FOLD_GROUP_ROWS or max(sizes) >= lake.ROW_GROUP_BYTES:
            carry = write(final=False)
            pending = []
            sizes = [int(b.sum()) for b in lake.column_bytes(carry)] if carry is not None else []
            pending_rows = carry.num_rows if carry is not None else 0
    if pending or carry is not None:
        write(final=True)
    return rows


def fold_partition(con: duckdb.DuckDBPyConnection, decl: tables.Table, files: list[Path],
                   dest: Path, scratch: Path | None = None) -> tuple[Path, int]:
    """The latest version of each key of ``files`` written (streamed, page checksums) to a hidden
    temporary name beside ``dest``, fsync'ed; returns that name and its rows. The caller renames it."""
    schema = decl.schema()
    if remote.is_remote(dest):  # written on this machine (``scratch``), uploaded at the switch
        if scratch is None:
            raise ValueError("a part of a remote lake is folded into a local scratch folder: none given")
        scratch.mkdir(parents=True, exist_ok=True)
        tmp = lake.tmp_path(scratch / f"{dest.parent.name}-{dest.name}")
    else:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = lake.tmp_path(dest)
    rows = 0
    try:
        # spans keep their day order (their parts are given in it); versions are sorted by the query
        con.execute(f"SET preserve_insertion_order = {str(decl not in MERGE_ON_READ).lower()}")
        reader = con.sql(fold_query(decl), params={"files": [str(f) for f in files]}).to_arrow_reader(FETCH_ROWS)
        with pq.ParquetWriter(tmp, schema, compression="zstd", write_page_checksum=True) as w:
            rows = _write_groups(w, reader, schema)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp, rows


@contextlib.contextmanager
def _folder(settings, run: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB under the memory limit, spilling to this run's staging dir."""
    spill = lake.staging_dir(settings.work_dir, run)
    spill.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute(f"SET memory_limit = {catalog.quote(settings.duckdb_memory_limit)}")
        con.execute(f"SET temp_directory = {catalog.quote(str(spill))}")
        remote.register(con, settings.lake_dir)
        con.execute("SET preserve_insertion_order = false")
        yield con
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)


def _count(lake_dir: Path, decl: tables.Table) -> tuple[int, int, int]:
    """(partitions, part files, most files in one partition) of a table."""
    sizes = [len(f) for f in partitions(lake_dir, decl.name).values()]
    return len(sizes), sum(sizes), max(sizes, default=0)


def crash_point(settings, where: str, n: int) -> None:
    """TEST ONLY (``REPLAY_TEST_CRASH_AFTER=compact-write:N`` or ``compact:N``): kill -9 this
    process after the Nth partition's new part is written (not yet switched), or is renamed
    into its partition (its old parts not yet deleted)."""
    at, _, count = (settings.test_crash_after or "").partition(":")
    if at == where and n == int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)


def _switch(settings, run: str, staged: list[tuple[Path, Path, list[Path]]]) -> None:
    """Rename each new part into place and delete the parts it replaces, with the catalog open
    for writing (no reader in a query meanwhile) and a stop signal held back; the journal first,
    so that a killed switch is finished by the next writer (:func:`tasks.store.lake.sweep`)."""
    journal = settings.work_dir / f"_compact-{run}.journal"
    with catalog.open_catalog(settings), critical():
        lake.write_bytes_durably(journal, orjson.dumps(
            [{"new": str(dest), "old": [str(f) for f in old]} for _, dest, old in staged]))
        for n, (tmp, dest, old) in enumerate(staged, 1):
            if remote.is_remote(dest):
                remote.put_file(tmp, dest)
            else:
                os.replace(tmp, dest)
            crash_point(settings, "compact", n)
            lake.drop_replaced(old, keep=dest)
        journal.unlink(missing_ok=True)  # (a reader may have removed it once every part was in place)


def compact(settings, min_files: int = 2) -> CompactInfo:
    """Fold every partition of the merge-on-read tables and every closed month that has
    ``min_files`` parts or more (at least 2) into one part (:func:`fold_groups`); call it holding
    the writer lock (:func:`run_compact` does)."""
    t0 = time.perf_counter()
    min_files = max(2, min_files)
    run = f"compact-{time.time_ns() // 1000}"
    info = CompactInfo(min_files=min_files)
    todo: list[tuple[tables.Table, Path, list[Path]]] = []
    for decl in MONTHLY:
        n_parts, n_files, most = _count(settings.lake_dir, decl)
        info.tables.append(CompactTable(table=decl.name, partitions=n_parts, files_before=n_files,
                                        max_files_before=most))
        todo += [(decl, d, files) for d, files in fold_groups(settings.lake_dir, decl, min_files)]
    staged: list[tuple[Path, Path, list[Path]]] = []
    scratch = lake.staging_dir(settings.work_dir, f"{run}-parts")  # new parts of a remote lake, before upload
    by_name = {t.table: t for t in info.tables}
    try:
        if todo:
            with _folder(settings, run) as con:
                for decl, folder, files in todo:
                    tmp, rows = fold_partition(con, decl, files, folder / f"{run}.parquet", scratch)
                    staged.append((tmp, folder / f"{run}.parquet", files))
                    crash_point(settings, "compact-write", len(staged))
                    t = by_name[decl.name]
                    t.compacted += 1
                    t.months += folder.name.startswith("month=")
                    t.rows_written += rows
                    t.rows_read += sum(remote.parquet_file(f).metadata.num_rows for f in files)
            _switch(settings, run, staged)
    finally:
        for tmp, _, _ in staged:
            tmp.unlink(missing_ok=True)
        shutil.rmtree(scratch, ignore_errors=True)
    for decl in MONTHLY:
        t = by_name[decl.name]
        _, t.files_after, t.max_files_after = _count(settings.lake_dir, decl)
    info.seconds = round(time.perf_counter() - t0, 3)
    return info


def run_compact(settings, min_files: int = 2) -> CompactInfo:
    """``replay compact``: :func:`compact` under the writer lock (after removing what dead
    writers left, a killed compaction's temporary parts included); recorded in ``stage_runs``."""
    with locks.write_lock(settings, sweep_parts=True):
        info = compact(settings, min_files)
        if any(t.compacted for t in info.tables):
            with catalog.open_catalog(settings) as con:
                catalog.record_run(con, "compact", f"compact-{time.time_ns() // 1000}", info.model_dump_json())
    return info


__all__ = ["MERGE_ON_READ", "MONTHLY", "compact", "due", "fold_groups", "fold_partition",
           "month_of", "partitions", "run_compact"]
