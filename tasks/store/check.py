"""``replay check``: is every part of the lake still what was written?

Each part is opened as Parquet, its schema compared with its table's declaration
(models/tables.py: every column it has must be declared, with the declared type; a column it
lacks is an older part, which the views read as NULL), then read in full with its page checksums
verified (pyarrow ``page_checksum_verification``): a damaged page is an error instead of other
values. DuckDB, which the views read with, does not verify page checksums; this does. The
footer has no checksum: the min/max and null counts of each row group's flat columns are
compared with the values read (DuckDB skips row groups on them).

A part written before page checksums (``write_page_checksum``) cannot be verified: it is a
warning, and only what no longer decodes (a broken header, a compressed page that does not
inflate, a footer that does not parse) is found in it.

``--quarantine`` moves the broken parts to ``<data_dir>/_quarantine/<the same relative path>``
under the writer lock, and the views follow (a table left without parts reads empty). Spans of
a quarantined spans part come back with a re-ingest of their source files (deduplication is
against the lake, which no longer has them).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from models import tables
from models.check import CheckInfo, PartProblem
from tasks.common.text import one_line
from tasks.store import lake, pages, remote

QUARANTINE = "_quarantine"
NO_CHECKSUMS = "no page checksums (written before Replay added them): only a page that no longer decodes can be found"
SWITCH_LEFT = ("a compaction was killed while switching its parts: the next Replay command that reads or writes "
               "the lake (`replay sql`, `replay ingest`, ...) deletes the parts it replaced")
_READ_ERRORS = (OSError, ValueError, pa.ArrowException, pages.PageFormatError)


def schema_problems(schema: pa.Schema, table: str) -> list[str]:
    """How a part's schema differs from its table's declaration (a column it lacks is fine)."""
    declared = tables.ALL[table].schema()
    out = []
    for f in schema:
        if f.name not in declared.names:
            out.append(f"column {f.name} is not declared for {table}")
        elif f.type != declared.field(f.name).type:
            out.append(f"column {f.name} is {f.type}, declared {declared.field(f.name).type}")
    return out


def stats_problems(meta: pq.RowGroupMetaData, rows: pa.Table) -> list[str]:
    """The footer's statistics of a row group's flat columns that the values read contradict.
    The footer has no checksum, and DuckDB skips a row group on its min/max: a flipped bit there
    would silently drop rows from a filtered query."""
    out = []
    for i in range(meta.num_columns):
        col = meta.column(i)
        stats, name = col.statistics, col.path_in_schema
        if stats is None or "." in name or name not in rows.column_names:
            continue  # nested leaves (lists, structs) are left out
        values = rows.column(name)
        if stats.has_null_count and stats.null_count != values.null_count:
            out.append(f"column {name}: footer says {stats.null_count} nulls, the pages {values.null_count}")
        elif stats.has_min_max and values.null_count < len(values):
            mm = pc.min_max(values)
            low, high = mm["min"].as_py(), mm["max"].as_py()
            if (stats.min, stats.max) != (low, high):
                out.append(f"column {name}: footer min/max {stats.min!r}/{stats.max!r}, the pages {low!r}/{high!r}")
    return out


def _damaged_columns(pf: pq.ParquetFile, rg: int) -> str:
    """`` (column a, b)``: the columns of a row group that fail to read alone."""
    bad = []
    for name in pf.schema_arrow.names:
        try:
            pf.read_row_group(rg, columns=[name])
        except _READ_ERRORS:
            bad.append(name)
    return f" (column {', '.join(bad)})" if bad else ""


def verify_part(path: Path, table: str) -> list[PartProblem]:
    """The problems of one part: none, an error (unreadable, damaged, not its table's schema) or
    a warning (no page checksums to verify)."""

    def problem(severity: str, reason: str) -> list[PartProblem]:
        return [PartProblem(path=str(path), table=table, severity=severity, reason=one_line(reason, 300))]

    try:
        pf = pq.ParquetFile(path, page_checksum_verification=True)
    except _READ_ERRORS as exc:
        return problem("error", f"not a readable Parquet file: {exc}")
    with pf:
        wrong = schema_problems(pf.schema_arrow, table)
        if wrong:
            return problem("error", "; ".join(wrong))
        for rg in range(pf.num_row_groups):
            try:
                rows = pf.read_row_group(rg)
            except _READ_ERRORS as exc:
                return problem("error", f"row group {rg}{_damaged_columns(pf, rg)}: {exc}")
            wrong = stats_problems(pf.metadata.row_group(rg), rows)
            if wrong:
                return problem("error", f"row group {rg}: " + "; ".join(wrong))
        try:
            checksummed = pages.first_page_has_crc(path, pf.metadata)
        except _READ_ERRORS as exc:
            return problem("error", f"unreadable page header: {exc}")
    return problem("warning", NO_CHECKSUMS) if checksummed is False else []


def quarantine_path(data_dir: Path, part: Path) -> Path:
    """Where a broken part goes: ``<data_dir>/_quarantine/<its path under data_dir>`` (a name
    already there gets a number)."""
    try:
        if remote.is_remote(part):
            raise ValueError("a part on object storage")
        rel = part.resolve().relative_to(data_dir.resolve())
    except ValueError:  # a lake outside the data dir (or on object storage)
        rel = Path("lake") / part.parent.parent.name / part.parent.name / part.name
    dest = data_dir / QUARANTINE / rel
    n = 1
    while dest.exists():
        dest = dest.with_name(f"{part.stem}.{n}{part.suffix}")
        n += 1
    return dest


def _quarantine(settings, broken: list[PartProblem]) -> list[str]:
    from tasks.store import catalog

    moved = []
    with catalog.write_lock(settings):
        for b in broken:
            src = remote.as_path(b.path)
            if not src.exists():
                continue
            dest = quarantine_path(settings.home, src)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if remote.is_remote(src):
                remote.move_to_local(src, dest)
            else:
                os.replace(src, dest)
            moved.append(str(dest))
        with catalog.open_catalog(settings):  # the views follow the lake (a table may have no part left)
            pass
    return moved


def run_check(settings, quarantine: bool = False) -> CheckInfo:
    """Verify every part of every lake table; with ``quarantine``, move the broken ones aside."""
    t0 = time.perf_counter()
    info = CheckInfo()
    for decl in tables.LAKE:
        for part in lake.list_files(settings.lake_dir, decl.name):
            info.parts += 1
            with remote.local_copy(part) as local:  # a part on object storage: verified here, whole
                found = [p.model_copy(update={"path": str(part)}) for p in verify_part(local, decl.name)]
                info.broken += [p for p in found if p.severity == "error"]
                info.warnings += [p for p in found if p.severity == "warning"]
                if not any(p.severity == "error" for p in found):
                    info.rows += pq.ParquetFile(local).metadata.num_rows
    for journal in sorted(settings.work_dir.glob("_compact-*.journal")):
        twice = lake.read_twice(settings.lake_dir, journal)
        if twice:  # spans (no versions): a row is counted twice
            info.broken.append(PartProblem(path=str(journal), table="spans", severity="error",
                                           reason=f"{SWITCH_LEFT}: {len(twice)} part(s) of spans are read twice"))
        else:  # versions: the views read the same latest version
            info.warnings.append(PartProblem(path=str(journal), table="lake", severity="warning", reason=SWITCH_LEFT))
    if quarantine and info.broken:
        info.quarantined = _quarantine(settings, [b for b in info.broken if not b.path.endswith(".journal")])
    info.seconds = round(time.perf_counter() - t0, 3)
    return info


__all__ = ["QUARANTINE", "quarantine_path", "run_check", "schema_problems", "stats_problems", "verify_part"]
