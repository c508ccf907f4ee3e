"""The DuckDB catalog: bookkeeping tables, the SQL views over the lake, read-only queries.

Every statement lives in ``tasks/store/sql/*.sql``; values are bound (``$name``). DDL is the
exception: DuckDB cannot bind a file path in a view, nor a name, so the lake path is quoted into
the views and the names of models/tables.py into the views, ``CREATE TABLE`` and ``ALTER TABLE``.
The tables, their columns and the views' column lists derive from models/tables.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from functools import cache
from pathlib import Path
from typing import Any, Iterator

import duckdb
import pyarrow as pa

from models import tables
from models.ingest import Reject
from tasks.common.clock import now
from tasks.common.errors import ReplayError
from tasks.common.processes import process_command
from tasks.store import lake, locks

SQL_DIR = Path(__file__).parent / "sql"
READ_ONLY_STATEMENTS = {"SELECT", "EXPLAIN"}
_EXPLAIN_ANALYZE = re.compile(r"^\s*EXPLAIN\s+ANALY[SZ]E\b", re.IGNORECASE)


class CatalogError(ReplayError):
    """A catalog problem a user can act on (locked, bad query): one-line reason."""


@cache
def sql(name: str) -> str:
    text = (SQL_DIR / f"{name}.sql").read_text()
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--")).strip()


def quote(s: str) -> str:
    """A SQL string literal (for the DDL that cannot bind a path)."""
    return "'" + s.replace("'", "''") + "'"


_SCALARS = ((pa.types.is_string, "VARCHAR"), (pa.types.is_timestamp, "TIMESTAMP"), (pa.types.is_float64, "DOUBLE"),
            (pa.types.is_int64, "BIGINT"), (pa.types.is_int32, "INTEGER"), (pa.types.is_boolean, "BOOLEAN"))


def duck_type(t: pa.DataType) -> str:
    """DuckDB's name for a pyarrow type."""
    name = next((name for test, name in _SCALARS if test(t)), None)
    if name is not None:
        return name
    if pa.types.is_list(t):
        return duck_type(t.value_type) + "[]"
    if pa.types.is_struct(t):
        return "STRUCT(" + ", ".join(f"{f.name} {duck_type(f.type)}" for f in t) + ")"
    raise TypeError(t)


def ident(name: str) -> str:
    """A quoted SQL identifier (for the DDL built from the declarations: DuckDB cannot bind names)."""
    return '"' + name.replace('"', '""') + '"'


def _declared(table: str | tables.Table) -> tables.Table:
    return tables.ALL[table] if isinstance(table, str) else table


# --------------------------------------------------------------------------- views over the lake
def empty_relation(table: str | tables.Table) -> str:
    """A typed relation with no row and the table's stored columns."""
    cols = ", ".join(f"CAST(NULL AS {duck_type(c.type)}) AS {ident(c.name)}" for c in _declared(table).columns)
    return f"(SELECT {cols} WHERE false)"


def lake_source(lake_dir: Path, table: str | tables.Table) -> str:
    """The relation a view reads: the lake's parquet files, or a typed empty one while there is
    none. The files are read by name, under the typed empty relation: a declared column no
    file has yet (the lake is older than the column) reads NULL."""
    decl = _declared(table)
    if not lake.has_files(lake_dir, decl.name):
        return empty_relation(decl)
    files = (f"read_parquet({quote(lake.table_glob(lake_dir, decl.name))}, hive_partitioning = false, "
             f"union_by_name = true)")
    return f"(SELECT * FROM {empty_relation(decl)} UNION ALL BY NAME SELECT * FROM {files})"


def view_columns(table: str | tables.Table) -> str:
    """The select list of a table's view: its visible columns in the view's order, JSON text as JSON."""
    out = []
    for c in _declared(table).visible():
        if c.view:
            out.append(f"{c.view} AS {ident(c.name)}")
        elif c.json and _declared(table).home == "lake":
            out.append(f"{ident(c.name)}::JSON AS {ident(c.name)}")
        else:
            out.append(ident(c.name))
    return ", ".join(out)


def view_sql(table: str | tables.Table, lake_dir: Path) -> str:
    """``CREATE OR REPLACE VIEW`` of a table: ``sql/view_<view>.sql`` with its {columns} (and, for a
    lake table, its {source}) filled in (DDL: nothing here can be bound)."""
    decl = _declared(table)
    text = sql(f"view_{decl.view}").replace("{columns}", view_columns(decl))
    return text.replace("{source}", lake_source(lake_dir, decl)) if decl.home == "lake" else text


# --------------------------------------------------------------------------- catalog tables
def _column_ddl(c: tables.Column, with_not_null: bool = True) -> str:
    ddl = f"{ident(c.name)} {'JSON' if c.json else duck_type(c.type)}"
    return ddl + " NOT NULL" if with_not_null and not c.nullable else ddl


def create_table_sql(table: str | tables.Table) -> str:
    """``CREATE TABLE IF NOT EXISTS`` of a catalog table (DDL: names are quoted, not bound)."""
    decl = _declared(table)
    parts = [_column_ddl(c) for c in decl.columns]
    if decl.enforce_key:
        parts.append(f"PRIMARY KEY ({', '.join(ident(k) for k in decl.key)})")
    return f"CREATE TABLE IF NOT EXISTS {ident(decl.name)} (\n    " + ",\n    ".join(parts) + "\n)"


def migrate(con: duckdb.DuckDBPyConnection, declared: tuple[tables.Table, ...] = tables.CATALOG) -> list[str]:
    """Add the declared columns an existing catalog table lacks (an older data dir); returns
    them as ``table.column``. An added column is nullable whatever its declaration says: the
    rows already there have no value for it. Columns the catalog has beyond the declaration
    (execution_metrics' avg_<evaluator>) stay."""
    have: dict[str, set[str]] = {}
    for table_name, column_name in con.execute(sql("catalog_columns")).fetchall():
        have.setdefault(table_name, set()).add(column_name)
    added = []
    for decl in declared:
        for c in decl.columns:
            if decl.name in have and c.name not in have[decl.name]:
                # DDL: DuckDB cannot bind identifiers; both come from the declaration
                con.execute(f"ALTER TABLE {ident(decl.name)} ADD COLUMN {_column_ddl(c, with_not_null=False)}")
                added.append(f"{decl.name}.{c.name}")
    return added


def init_catalog(con: duckdb.DuckDBPyConnection, lake_dir: Path) -> None:
    """Tables, migrations and views as the declarations say; skipped (one small query) when the
    catalog is already in that shape: every command opens the catalog, most of them often."""
    shape = catalog_shape(lake_dir)
    try:
        if get_watermark(con, "catalog", "shape") == shape:
            return
    except duckdb.CatalogException:  # a new catalog: no watermarks table yet
        pass
    for decl in tables.CATALOG:
        con.execute(create_table_sql(decl))
    migrate(con)
    refresh_views(con, lake_dir)
    set_watermark(con, "catalog", "shape", shape)


def catalog_shape(lake_dir: Path) -> str:
    """A digest of what :func:`init_catalog` makes: the catalog tables' DDL and the views' SQL
    (which depend on the lake's path and on which lake tables have files yet)."""
    ddl = [create_table_sql(decl) for decl in tables.CATALOG]
    views = [view_sql(decl, lake_dir) for decl in tables.LAKE + tables.CATALOG if decl.view]
    return hashlib.sha256("\n".join(ddl + views).encode()).hexdigest()[:16]


def refresh_views(con: duckdb.DuckDBPyConnection, lake_dir: Path) -> None:
    for decl in tables.LAKE + tables.CATALOG:
        if decl.view:
            con.execute(view_sql(decl, lake_dir))


write_lock = locks.write_lock  # the one writer: tasks/store/locks.py


@contextlib.contextmanager
def open_catalog(settings) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection with the bookkeeping tables and views in place.
    Hold ``write_lock`` around it, and keep it open for short work only: while it is open no
    other process can read the catalog (``replay sql`` waits)."""
    con = _connect(settings, read_only=False)
    try:
        con.execute(f"SET memory_limit = {quote(settings.duckdb_memory_limit)}")
        con.execute("SET preserve_insertion_order = false")
        init_catalog(con, settings.lake_dir)
        yield con
    finally:
        con.close()


@contextlib.contextmanager
def writer(settings, timeout: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """``write_lock`` + ``open_catalog``."""
    with write_lock(settings, timeout), open_catalog(settings) as con:
        yield con


_HOLDER_PID = re.compile(r"\(PID (\d+)\)")


def _catalog_holder(settings, error: str) -> str | None:
    """Who has the catalog open, from DuckDB's lock error (its PID) and the writer lock's record."""
    m = _HOLDER_PID.search(error)
    if m is None:
        return None
    pid = int(m.group(1))
    rec = locks.holder(settings)
    if rec is not None and rec.get("pid") == pid:
        return locks.describe(rec)
    return f"pid {pid} ({process_command(pid) or '?'})"


def _connect(settings, read_only: bool) -> duckdb.DuckDBPyConnection:
    """A connection to the catalog; while another process has it open (a writer, or readers
    while this one writes) wait for it, saying so, up to the lock timeout."""
    path = settings.catalog_path
    last = [""]
    wait = locks.Waiting(f"the catalog {path}", locks.lock_timeout(settings),
                         lambda: _catalog_holder(settings, last[0]), cap=0.5)
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            con.execute("SET enable_progress_bar = false")
            return con
        except duckdb.IOException as exc:
            last[0] = str(exc).splitlines()[0]
            if "lock" not in last[0].lower():
                raise CatalogError(f"cannot open the catalog {path}: {last[0]}") from None
            wait.pause()


@contextlib.contextmanager
def reader(settings) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection; an empty data dir gets an empty catalog first."""
    if not settings.catalog_path.exists():
        with writer(settings):
            pass
    con = _connect(settings, read_only=True)
    try:
        yield con
    finally:
        con.close()


def run_read_only(con: duckdb.DuckDBPyConnection, query: str) -> tuple[list[str], list[tuple]]:
    """Run a read-only query: only SELECT-like statements; returns (columns, rows) of the last."""
    try:
        statements = con.extract_statements(query)
    except duckdb.Error as exc:
        raise CatalogError(str(exc).splitlines()[0]) from None
    if not statements:
        raise CatalogError("empty query")
    for st in statements:
        kind = st.type.name
        if kind not in READ_ONLY_STATEMENTS:
            raise CatalogError(f"only read-only queries are allowed here (got a {kind} statement)")
        if kind == "EXPLAIN" and _EXPLAIN_ANALYZE.match(st.query):
            raise CatalogError("only read-only queries are allowed here (EXPLAIN ANALYZE runs its statement)")
    cols: list[str] = []
    rows: list[tuple] = []
    try:
        for st in statements:
            cur = con.execute(st.query)
            cols = [d[0] for d in cur.description or []]
            rows = cur.fetchall()
    except duckdb.Error as exc:
        raise CatalogError(str(exc).splitlines()[0]) from None
    return cols, rows


# --------------------------------------------------------------------------- bookkeeping

def duplicate_rows(con: duckdb.DuckDBPyConnection, lake_dir: Path, staged: list[str]) -> dict[str, set[int]]:
    """{staged file: row numbers to drop}: repeats inside the run and spans already in the lake."""
    if not staged:
        return {}
    existing = [str(p) for p in lake.list_files(lake_dir, "spans")]
    if existing:
        rows = con.execute(sql("staged_duplicates"), {"staged": staged, "existing": existing}).fetchall()
    else:
        rows = con.execute(sql("staged_duplicates_first"), {"staged": staged}).fetchall()
    out: dict[str, set[int]] = {}
    for filename, rownum in rows:
        out.setdefault(filename, set()).add(rownum)
    return out


def add_rejects(con: duckdb.DuckDBPyConnection, rejects: list[Reject]) -> None:
    if not rejects:
        return
    at = now()
    con.executemany(sql("insert_reject"), [
        {"reject_id": r.reject_id, "source": r.source, "location": r.location, "reason": r.reason,
         "raw": r.raw, "rejected_at": at} for r in rejects])


def record_run(con: duckdb.DuckDBPyConnection, stage: str, run_id: str, info_json: str) -> None:
    con.execute(sql("insert_run"), {"run_id": run_id, "stage": stage, "finished_at": now(), "info": info_json})


def get_watermark(con: duckdb.DuckDBPyConnection, source: str, key: str) -> str | None:
    row = con.execute(sql("get_watermark"), {"source": source, "key": key}).fetchone()
    return row[0] if row else None


def set_watermark(con: duckdb.DuckDBPyConnection, source: str, key: str, value: str | None) -> None:
    con.execute(sql("set_watermark"), {"source": source, "key": key, "value": value, "updated_at": now()})


def rows(con: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The rows of the statement ``sql/<name>.sql`` as dicts (column name -> value)."""
    cur = con.execute(sql(name), params or {})
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def one(con: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The first row of the statement ``sql/<name>.sql`` as a dict, or None when there is none."""
    cur = con.execute(sql(name), params or {})
    row = cur.fetchone()
    return None if row is None else dict(zip([d[0] for d in cur.description], row, strict=True))


def scalar(con: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any] | None = None) -> Any:
    row = con.execute(sql(name), params or {}).fetchone()
    return row[0] if row else None
