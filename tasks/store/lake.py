"""The Parquet lake: table schemas (from models/tables.py), atomic part files, Hive day partitions.

Layout: ``$REPLAY_DATA_DIR/lake/<table>/day=YYYY-MM-DD/part-*.parquet``, and after compaction
``<table>/month=YYYY-MM/<run>.parquet`` for a closed month (readers take the day from the rows).
A part file is written under a hidden temporary name, fsync'ed, then renamed: a reader
(or a crash) never sees half a file. Readers glob ``*.parquet`` only.

Every page of a part carries a CRC-32 (``write_page_checksum``); :func:`read_part` verifies them
(pyarrow's ``page_checksum_verification``), so a flipped bit is an error, never other values.
DuckDB's reader (the views) does not verify page checksums: ``replay check`` does
(:mod:`tasks.store.check`).

Temporary parts and staging dirs (``lake/_staging/<pid>@<host>-<run>``) carry their writer's pid and host, so that
the next writer removes those of dead processes (:func:`sweep`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import socket
import time
import uuid
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from models import tables
from tasks.common.processes import pid_alive
from tasks.store import remote

# the schemas derive from the declarations (models/tables.py); these names stay for their users
TS, TOOL_CALL, CHAT_TOOL_CALL = tables.TS, tables.TOOL_CALL, tables.CHAT_TOOL_CALL
TABLES: dict[str, pa.Schema] = {t.name: t.schema() for t in tables.LAKE}
SPANS, TURNS, SESSIONS = TABLES["spans"], TABLES["turns"], TABLES["sessions"]
CHATS, CHAT_TURNS, EVAL_SCORES = TABLES["chats"], TABLES["chat_turns"], TABLES["eval_scores"]


def blank(t: pa.DataType, at: datetime) -> Any:
    """A column's value in a row that holds nothing: zero for a number, ``at`` for a time (the
    row must land in a day partition), false for a flag, NULL otherwise."""
    if pa.types.is_floating(t):
        return 0.0
    if pa.types.is_integer(t):
        return 0
    if pa.types.is_timestamp(t):
        return at
    if pa.types.is_boolean(t):
        return False
    return None


def tombstone(table: tables.Table, key: dict[str, Any], at: datetime, **values: Any) -> dict[str, Any]:
    """The row that deletes ``key`` from ``table``'s view (merge-on-read: the latest version
    wins, ``deleted`` hides it): blank columns, the key, ``deleted = true``, then ``values``."""
    if set(key) != set(table.key) or "deleted" not in table.names:
        raise ValueError(f"no tombstone in {table.name} for {tuple(key)} (its key: {table.key})")
    row = {c.name: blank(c.type, at) for c in table.columns}
    row.update(key, deleted=True)
    row.update(values)
    return row


def conform(rows: pa.Table, schema: pa.Schema, **constants: Any) -> pa.Table:
    """``rows`` in ``schema``'s order and types; a column it lacks is one of ``constants``."""
    n = rows.num_rows
    cols = []
    for f in schema:
        if f.name in rows.column_names:
            cols.append(rows.column(f.name).cast(f.type))
        elif f.name in constants:
            cols.append(pa.array([constants[f.name]] * n, f.type))
        else:
            raise ValueError(f"no column {f.name} for {schema.names}")
    return pa.Table.from_arrays(cols, schema=schema)


def table_dir(lake: Path, table: str) -> Path:
    return lake / table


def table_glob(lake: Path, table: str) -> str:
    return str(table_dir(lake, table) / "*" / "*.parquet")


def has_files(lake: Path, table: str) -> bool:
    d = table_dir(lake, table)
    return d.is_dir() and any(d.glob("*/*.parquet"))


def tables_with_files(lake: Path) -> set[str]:
    """The lake tables that have a part: one listing of the whole lake on object storage (where
    each listing is a request), a glob a table on disk."""
    if remote.is_remote(lake):
        found = lake.fs.glob(f"{lake.path}/*/*/*.parquet")
        return {f.rsplit("/", 3)[-3] for f in found} & set(TABLES)
    return {t for t in TABLES if has_files(lake, t)}


def list_files(lake: Path, table: str) -> list[Path]:
    return sorted(table_dir(lake, table).glob("*/*.parquet"))


def files_beside(lake: Path, table: str, staged: list[str]) -> list[Path]:
    """The parts of ``table`` in the partitions of the staged parts (``.../day=D/part``): the
    same day partitions, and the month partitions of those days."""
    days = {Path(p).parent.name for p in staged}
    folders = days | {f"month={d[4:11]}" for d in days if d.startswith("day=")}
    base = table_dir(lake, table)
    return sorted(f for d in sorted(folders) for f in (base / d).glob("*.parquet"))


def write_atomic(table: pa.Table, path: Path, compression: str = "zstd") -> Path:
    """Write ``table`` to ``path`` so that no reader ever sees a partial file (object storage:
    one PUT, visible once complete)."""
    if remote.is_remote(path):
        remote.write_parquet(lambda f: _write_parquet(table, f, compression), path)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path(path)
    try:
        _write_parquet(table, tmp, compression)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def read_part(path: str | Path, columns: list[str] | None = None, schema: pa.Schema | None = None) -> pa.Table:
    """A part (or staged part) read whole, its page checksums verified: a damaged page raises
    ``OSError`` instead of decoding into other values (a page without a checksum, in a part
    written before checksums, is read as it is)."""
    if remote.is_remote(path):
        p = remote.as_path(path)
        with p.fs.open(p.path, "rb") as f:
            return pq.read_table(f, columns=columns, schema=schema, page_checksum_verification=True)
    return pq.read_table(path, columns=columns, schema=schema, page_checksum_verification=True)


ROW_GROUP_ROWS = 32_768
ROW_GROUP_BYTES = 32 * 1024 * 1024  # a reader holds a row group's column at once: keep it small


def column_bytes(table: pa.Table | pa.RecordBatch) -> list:
    """Per column, each row's bytes: a text's exact length, a fixed-width value its width (an
    average a row for the other types)."""
    n = table.num_rows
    out = []
    for col, f in zip(table.columns, table.schema, strict=True):
        if pa.types.is_string(f.type) or pa.types.is_large_string(f.type) or pa.types.is_binary(f.type):
            out.append(pc.fill_null(pc.binary_length(col), 0).to_numpy().astype("int64"))
        else:
            out.append(np.full(n, col.nbytes / max(n, 1)))
    return out


def row_group_bounds(table: pa.Table, max_bytes: int = ROW_GROUP_BYTES, max_rows: int = ROW_GROUP_ROWS) -> list[int]:
    """Where ``table``'s row groups start: at most ``max_rows`` rows and, as far as one row
    allows, ``max_bytes`` of each COLUMN (a reader holds one column of a row group at once, not
    the whole group). A part whose answers are 50 MB each must not put them all in one row
    group: DuckDB would read that column of the group in one allocation, beyond its memory
    limit; a part of small spans keeps large groups (a scan pays for each group)."""
    n = table.num_rows
    if n == 0:
        return [0]
    big = [np.concatenate(([0.0], np.cumsum(b, dtype="float64"))) for b in column_bytes(table)
           if b.sum() > max_bytes]
    bounds, start = [0], 0
    while True:
        end = min(n, start + max_rows)
        for cum in big:  # the first row that would take this column past max_bytes
            end = min(end, int(np.searchsorted(cum, cum[start] + max_bytes, side="right")) - 1)
        end = max(end, start + 1)  # a row larger than the bound is a group of its own
        if end >= n:
            return bounds
        bounds.append(end)
        start = end


def _write_parquet(table: pa.Table, path: Path, compression: str) -> None:
    bounds = row_group_bounds(table)
    if len(bounds) == 1:
        pq.write_table(table, path, compression=compression, row_group_size=ROW_GROUP_ROWS,
                       write_page_checksum=True)
        return
    with pq.ParquetWriter(path, table.schema, compression=compression, write_page_checksum=True) as w:
        for start, end in zip(bounds, bounds[1:] + [table.num_rows], strict=True):
            w.write_table(table.slice(start, end - start), row_group_size=ROW_GROUP_ROWS)


# --------------------------------------------------------------------------- leftovers of dead writers
LEGACY_TMP_AGE_S = 3600  # a temporary part without an owner in its name (older Replay) older than this is left over
_TMP_OWNER = re.compile(r"\.(\d+)@([0-9a-f]{6})\.[0-9a-f]{8}\.tmp$")
_STAGING_OWNER = re.compile(r"^(\d+)@([0-9a-f]{6})-")


@cache
def _host() -> str:
    return hashlib.blake2b(socket.gethostname().encode(), digest_size=3).hexdigest()


def owner_tag(pid: int | None = None) -> str:
    """``<pid>@<host>`` of a temporary file or staging dir (this process's by default)."""
    return f"{os.getpid() if pid is None else pid}@{_host()}"


def tmp_path(path: Path, pid: int | None = None) -> Path:
    """The hidden name ``path`` is written under before its rename: ``.<name>.<pid>@<host>.<random>.tmp``."""
    return path.with_name(f".{path.name}.{owner_tag(pid)}.{uuid.uuid4().hex[:8]}.tmp")


def staging_dir(lake: Path, run: str, pid: int | None = None) -> Path:
    """Where a run stages its parts before they are published: ``lake/_staging/<pid>@<host>-<run>``."""
    return lake / "_staging" / f"{owner_tag(pid)}-{run}"


def _owner_gone(match: re.Match | None) -> bool | None:
    """Whether the owner named in a leftover's name is gone (None: the name names none; a
    process on another host is never judged gone)."""
    if match is None:
        return None
    return match.group(2) == _host() and not pid_alive(int(match.group(1)))


def sweep(lake: Path, parts: bool = True) -> list[Path]:
    """Remove what dead writers left behind: staging dirs and (``parts``) temporary parts whose
    owner process is gone. Call it holding the writer lock: then a staging dir that names no
    owner (an older Replay's) is left over too, as only a lock holder stages. The staging dirs
    are one listing; the temporary parts one listing per day partition (~10 ms a thousand)."""
    removed: list[Path] = []
    staging = lake / "_staging"
    if staging.is_dir():
        for d in staging.iterdir():
            if _owner_gone(_STAGING_OWNER.match(d.name)) is not False:
                shutil.rmtree(d, ignore_errors=True)
                removed.append(d)
    if parts:
        removed += finish_switches(lake)  # before the temporary parts: a new part may be one
        old = time.time() - LEGACY_TMP_AGE_S
        for f in _temporary_parts(lake):
            gone = _owner_gone(_TMP_OWNER.search(f.name))
            with contextlib.suppress(FileNotFoundError):
                if gone or (gone is None and f.stat().st_mtime < old):
                    f.unlink()
                    removed.append(f)
    return removed


def write_bytes_durably(path: Path, data: bytes) -> None:
    """A small file (a journal) written under a temporary name, fsync'ed and renamed: on disk
    before what follows it, and never seen half written."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def drop_replaced(old: list[Path], keep: Path) -> None:
    """Delete the parts a compacted part replaced (never ``keep``), and the partition folders
    that leaves empty."""
    for f in old:
        if f != keep:
            f.unlink(missing_ok=True)
    if remote.is_remote(keep):
        return  # object storage has no folders: a prefix with no object left is gone
    for d in {f.parent for f in old} - {keep.parent}:
        with contextlib.suppress(OSError):
            d.rmdir()  # only when empty


def _journal(path: Path) -> list[dict[str, Any]]:
    try:
        return orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError:
        return []  # cut short while written: nothing was renamed yet


def read_twice(lake: Path, journal: Path) -> list[Path]:
    """The spans parts a killed switch left beside the new part that holds their rows."""
    spans = str(table_dir(lake, "spans"))
    return [p for e in _journal(journal) if remote.as_path(e["new"]).exists()
            for p in map(remote.as_path, e["old"]) if str(p.parent.parent) == spans and p.exists()
            and str(p) != e["new"]]


def finish_switches(lake: Path, reader: bool = False) -> list[Path]:
    """Finish what a killed compaction's switch left (its ``_compact-<run>.journal``): the parts
    each renamed-in new part replaces are deleted. Returns the journals finished and removed.

    A writer (holding the writer lock: no compaction is live) removes every journal. A ``reader``
    (no lock: a compaction may be switching right now) deletes only what that compaction deletes
    next anyway, and removes a journal only once every new part of it is in place, so that a
    switch killed later is still finished by the next writer. A data dir it cannot write is left
    as it is."""
    done = []
    try:
        journals = sorted(lake.glob("_compact-*.journal"))
    except OSError:
        return done
    for journal in journals:
        entries = _journal(journal)
        complete = True
        for e in entries:
            if remote.as_path(e["new"]).exists():
                with contextlib.suppress(OSError):
                    drop_replaced([remote.as_path(f) for f in e["old"]], keep=remote.as_path(e["new"]))
            else:
                complete = False
        if complete or not reader:
            with contextlib.suppress(OSError):
                journal.unlink(missing_ok=True)
                done.append(journal)
    return done


def _temporary_parts(lake: Path) -> list[Path]:
    """The hidden ``*.tmp`` files of the tables' day and month partitions."""
    out: list[Path] = []
    for table in _subdirs(lake, lambda name: not name.startswith(("_", "."))):
        for day in _subdirs(table, lambda name: name.startswith(("day=", "month="))):
            with os.scandir(day) as files:
                out += [Path(f.path) for f in files if f.name.startswith(".") and f.name.endswith(".tmp")]
    return out


def _subdirs(path: Path | str, keep) -> list[str]:
    try:
        with os.scandir(path) as entries:
            return [e.path for e in entries if keep(e.name) and e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []


def publish(staged: Path, lake: Path, table: str, day: str, name: str) -> Path:
    """Move a staged (already complete) part into the lake with one atomic rename (object
    storage: one upload, visible once complete)."""
    dest = table_dir(lake, table) / f"day={day}" / name
    if remote.is_remote(dest):
        remote.put_file(staged, dest)
        staged.unlink()
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, dest)
    return dest


def write_partitioned(rows: pa.Table, lake: Path, table: str, day_column: str, name: str) -> list[Path]:
    """Write ``rows`` into the day partitions of ``table``, one atomic part per day."""
    if rows.num_rows == 0:
        return []
    days = rows.column(day_column).cast(pa.date32())
    out = []
    for day in sorted({d for d in days.to_pylist() if d is not None}):
        mask = pc.equal(days, pa.scalar(day, pa.date32()))
        part = rows.filter(mask)
        out.append(write_atomic(part, table_dir(lake, table) / f"day={day.isoformat()}" / name))
    return out
