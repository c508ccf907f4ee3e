"""The DuckDB catalog: bookkeeping tables, the SQL views over the lake, read-only queries.

Every statement lives in ``tasks/store/sql/*.sql``; values are bound (``$name``). DDL is the
exception: DuckDB cannot bind a file path in a view, nor a name, so the lake path is quoted into
the views and the names of models/tables.py into the views, ``CREATE TABLE`` and ``ALTER TABLE``.
The tables, their columns and the views' column lists derive from models/tables.py.

The stored views name the lake's files relative to the data dir (``lake/spans/*/*.parquet``) and
every connection sets ``file_search_path`` to the data dir, so a moved data dir keeps working and
a copy reads its own lake. ``replay sql`` (:func:`sql_reader`) runs on a connection that can read
nothing but the lake (DuckDB ``enable_external_access`` off, ``allowed_directories``) and only a
statement DuckDB's parser calls a SELECT (:func:`read_only_statement`); a user's ``--where`` is
evaluated in :func:`sandbox`, an in-memory database holding only the rows it may see.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from models import tables
from models.ingest import Reject
from tasks.common.clock import now
from tasks.common.errors import ReplayError
from tasks.common.processes import process_command
from tasks.store import lake, locks, remote

SQL_DIR = Path(__file__).parent / "sql"
# the configuration of every connection that runs a user's SQL: no extension is installed or
# loaded behind the user's back (an autoloaded httpfs would read URLs)
LOCKED_DOWN = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
FETCH_ROWS = 512  # rows a batch when a result is streamed (spans: ~6 MB of Python objects)


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


def lake_source(lake_dir: Path, table: str | tables.Table, absolute: bool = False,
                present: set[str] | None = None) -> str:
    """The relation a view reads: the lake's parquet files, or a typed empty one while there is
    none. The files are read by name, under the typed empty relation: a declared column no
    file has yet (the lake is older than the column) reads NULL. The files are named relative
    to the data dir (``lake/<table>/*/*.parquet``, found through ``file_search_path``) unless
    ``absolute`` or the data dir's path has a comma (``file_search_path`` is a comma-separated
    list: such a data dir's views name its absolute path, and are rebuilt when it moves)."""
    decl = _declared(table)
    if not (decl.name in present if present is not None else lake.has_files(lake_dir, decl.name)):
        return empty_relation(decl)
    if remote.is_remote(lake_dir):  # a URL (read through the fsspec filesystem each connection registers)
        where = lake_dir
    else:
        absolute = absolute or "," in str(lake_dir.resolve())
        where = lake_dir.resolve() if absolute else Path(lake_dir.name)
    files = (f"read_parquet({quote(lake.table_glob(where, decl.name))}, hive_partitioning = false, "
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


def view_sql(table: str | tables.Table, lake_dir: Path, temp: bool = False, present: set[str] | None = None) -> str:
    """``CREATE OR REPLACE VIEW`` of a table: ``sql/view_<view>.sql`` with its {columns} (and, for a
    lake table, its {source}) filled in (DDL: nothing here can be bound). ``temp``: a temporary
    view of this connection only, over the lake's absolute path (what :func:`sql_reader` reads)."""
    decl = _declared(table)
    text = sql(f"view_{decl.view}").replace("{columns}", view_columns(decl))
    if temp:
        text = text.replace("CREATE OR REPLACE VIEW", "CREATE OR REPLACE TEMP VIEW", 1)
    if decl.home != "lake":
        return text
    return text.replace("{source}", lake_source(lake_dir, decl, absolute=temp, present=present))


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
    scrub_stored_secrets(con)
    refresh_views(con, lake_dir)
    set_watermark(con, "catalog", "shape", shape)


def catalog_shape(lake_dir: Path) -> str:
    """A digest of what :func:`init_catalog` makes: the catalog tables' DDL and the views' SQL
    (which depend on which lake tables have files yet, not on where the data dir is — but for
    a path with a comma, see :func:`lake_source`)."""
    ddl = [create_table_sql(decl) for decl in tables.CATALOG]
    present = lake.tables_with_files(lake_dir)
    views = [view_sql(decl, lake_dir, present=present) for decl in tables.LAKE + tables.CATALOG if decl.view]
    return hashlib.sha256("\n".join(ddl + views + list(DATA_MIGRATIONS)).encode()).hexdigest()[:16]


def refresh_views(con: duckdb.DuckDBPyConnection, lake_dir: Path) -> None:
    present = lake.tables_with_files(lake_dir)
    for decl in tables.LAKE + tables.CATALOG:
        if decl.view:
            con.execute(view_sql(decl, lake_dir, present=present))


# what init_catalog also does to the rows of an older catalog; a new name here runs them once more
DATA_MIGRATIONS = ("scrub-stored-secrets",)
# a location or reason that may hold a credential: a URL's user info, a credential parameter, a key
_MAYBE_SECRET = (r"://[^/\s]*@|[?&#][^=\s]*(key|token|passw|pwd|secret|sig|auth|cred)[^=\s]*=|bearer |basic |"
                 r"sk-|eyJ|api[_-]?key|password")


def scrub_stored_secrets(con: duckdb.DuckDBPyConnection) -> int:
    """Mask the credentials earlier versions stored (a Phoenix URL's password in the cursor's
    key and in reject locations and reasons); returns the rows rewritten. A cursor keeps its
    value under the scrubbed key (the newest wins when two keys become one), so the next pull
    with the same URL resumes where the last one stopped. Lake parts are immutable: the spans'
    ``location`` pulled before keeps its URL."""
    from tasks.common.secrets import scrub, scrub_url

    changed = 0
    for key, value, at in con.execute(sql("phoenix_watermarks")).fetchall():
        url, sep, project = key.rpartition("|")
        clean = f"{scrub_url(url).rstrip('/')}{sep}{project}" if sep else scrub(key)
        if clean != key:
            con.execute(sql("delete_watermark"), {"source": "phoenix", "key": key})
            con.execute(sql("set_watermark"), {"source": "phoenix", "key": clean, "value": value, "updated_at": at})
            changed += 1
    for reject_id, location, reason in con.execute(sql("rejects_with_credentials"), {"pattern": _MAYBE_SECRET}).fetchall():
        clean_location, clean_reason = scrub(location), scrub(reason)
        if (clean_location, clean_reason) != (location, reason):
            con.execute(sql("update_reject_text"),
                        {"reject_id": reject_id, "location": clean_location, "reason": clean_reason})
            changed += 1
    return changed


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


def _connect(settings, read_only: bool, config: dict[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
    """A connection to the catalog; while another process has it open (a writer, or readers
    while this one writes) wait for it, saying so, up to the lock timeout."""
    path = settings.catalog_path
    last = [""]
    wait = locks.Waiting(f"the catalog {path}", locks.lock_timeout(settings),
                         lambda: _catalog_holder(settings, last[0]), cap=0.5)
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only, config=config or {})
            con.execute("SET enable_progress_bar = false")
            con.execute(f"SET file_search_path = {quote(str(path.resolve().parent))}")
            remote.register(con, settings.lake_dir)
            return con
        except duckdb.IOException as exc:
            last[0] = str(exc).splitlines()[0]
            if "lock" not in last[0].lower():
                raise CatalogError(f"cannot open the catalog {path}: {last[0]}") from None
            wait.pause()


@contextlib.contextmanager
def reader(settings) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection; an empty data dir gets an empty catalog first, and a catalog an
    older Replay made is brought up to date first (its new columns added: a reader's queries
    name them) when the data dir can be written. A compaction switch a kill cut short is
    finished first (:func:`tasks.store.lake.finish_switches`)."""
    lake.finish_switches(settings.work_dir, reader=True)
    if not settings.catalog_path.exists():
        with writer(settings):
            pass
    con = _connect(settings, read_only=True)
    if not _up_to_date(con, settings.lake_dir):
        con.close()
        with contextlib.suppress(OSError):  # a data dir this user cannot write: read it as it is
            with writer(settings):
                pass
        con = _connect(settings, read_only=True)
    try:
        yield con
    finally:
        con.close()


def _up_to_date(con: duckdb.DuckDBPyConnection, lake_dir: Path) -> bool:
    """Whether the catalog has the shape this version declares (:func:`init_catalog`)."""
    try:
        return get_watermark(con, "catalog", "shape") == catalog_shape(lake_dir)
    except duckdb.CatalogException:
        return False


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _words(text: str) -> list[tuple[str, int]]:
    """DuckDB's own tokens of ``text`` as (word, offset), comments left out."""
    toks = duckdb.tokenize(text)
    ends = [pos for pos, _ in toks[1:]] + [len(text)]
    return [(text[pos:end].strip(), pos) for (pos, kind), end in zip(toks, ends, strict=True)
            if kind != duckdb.token_type.comment]


def _check_explain(text: str) -> None:
    """EXPLAIN of one SELECT, without ANALYZE (which runs its statement): the options are read
    from DuckDB's tokens (``EXPLAIN ANALYZE``, ``EXPLAIN (ANALYZE, ...)``), the explained
    statement is parsed again by DuckDB."""
    words = _words(text)
    i = 1
    if i < len(words) and words[i][0] == "(":
        depth = 0
        for j in range(i, len(words)):
            depth += {"(": 1, ")": -1}.get(words[j][0], 0)
            if depth == 0:
                break
        options, i = words[1:j + 1], j + 1
    else:
        options = words[1:2] if len(words) > 1 and words[1][0].upper() in ("ANALYZE", "ANALYSE") else []
        i += len(options)
    if any(w.upper() in ("ANALYZE", "ANALYSE") for w, _ in options):
        raise CatalogError("only read-only queries are allowed here (EXPLAIN ANALYZE runs its statement)")
    inner = duckdb.extract_statements(text[words[i][1]:]) if i < len(words) else []
    if len(inner) != 1 or inner[0].type != duckdb.StatementType.SELECT:
        kind = inner[0].type.name if len(inner) == 1 else "no single"
        raise CatalogError(f"only read-only queries are allowed here (EXPLAIN of a {kind} statement)")


def read_only_statement(query: str) -> str:
    """The one statement of ``query`` when DuckDB's parser calls it a SELECT (or an EXPLAIN of
    one, without ANALYZE); otherwise CatalogError with a one-line reason."""
    try:
        statements = duckdb.extract_statements(query)
        if not statements:
            raise CatalogError("empty query")
        if len(statements) > 1:
            raise CatalogError(f"only one read-only statement at a time is allowed here (got {len(statements)})")
        (st,) = statements
        if st.type == duckdb.StatementType.EXPLAIN:
            _check_explain(st.query)
        elif st.type != duckdb.StatementType.SELECT:
            raise CatalogError(f"only read-only queries are allowed here (got a {st.type.name} statement)")
    except duckdb.Error as exc:
        raise CatalogError(_first_line(exc)) from None
    return st.query


def stream_read_only(con: duckdb.DuckDBPyConnection, query: str,
                     batch_rows: int = FETCH_ROWS) -> tuple[list[str], Iterator[list[tuple]]]:
    """Run a read-only query (:func:`read_only_statement`); returns its columns and its rows in
    batches as DuckDB streams them (the whole result is never held)."""
    statement = read_only_statement(query)
    try:
        cur = con.execute(statement)
    except duckdb.Error as exc:
        raise CatalogError(_first_line(exc)) from None
    cols = [d[0] for d in cur.description or []]

    def batches() -> Iterator[list[tuple]]:
        while True:
            try:
                rows = cur.fetchmany(batch_rows)
            except duckdb.Error as exc:
                raise CatalogError(_first_line(exc)) from None
            if not rows:
                return
            yield rows

    return cols, batches()


def run_read_only(con: duckdb.DuckDBPyConnection, query: str) -> tuple[list[str], list[tuple]]:
    """Run a read-only query: (columns, rows)."""
    cols, batches = stream_read_only(con, query)
    return cols, [row for batch in batches for row in batch]


@contextlib.contextmanager
def sql_reader(settings, allow: Sequence[Path] = ()) -> Iterator[duckdb.DuckDBPyConnection]:
    """The connection of ``replay sql``: read-only, it reads the lake and nothing else — external
    access off, the lake (and the directories or files of ``allow``) the only paths allowed, no
    extension installed or loaded, the configuration locked. The lake's views are this
    connection's temporary views over the lake's absolute path. A compaction switch a kill cut
    short is finished first (:func:`tasks.store.lake.finish_switches`)."""
    lake.finish_switches(settings.work_dir, reader=True)
    if not settings.catalog_path.exists():
        with writer(settings):
            pass
    con = _connect(settings, read_only=True, config=LOCKED_DOWN)
    try:  # no memory limit of its own: DuckDB's default (a share of RAM), as any reader
        present = lake.tables_with_files(settings.lake_dir)
        for decl in tables.LAKE:
            if decl.view:
                con.execute(view_sql(decl, settings.lake_dir, temp=True, present=present))
        paths = [p.resolve() for p in allow]
        here = settings.lake_dir if remote.is_remote(settings.lake_dir) else settings.lake_dir.resolve()
        dirs = [str(here) + "/"] + [str(p) + "/" for p in paths if not p.is_file()]
        files = [str(p) for p in paths if p.is_file()]
        con.execute(f"SET allowed_directories = [{', '.join(map(quote, dirs))}]")
        if files:
            con.execute(f"SET allowed_paths = [{', '.join(map(quote, files))}]")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        yield con
    finally:
        con.close()


@contextlib.contextmanager
def sandbox(name: str, rows: pa.Table, memory_limit: str = "512MB") -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory database holding ``rows`` as the table ``name`` and nothing else, with
    external access off and its configuration locked: where a user's expression is evaluated
    (``replays create --where``): it sees those rows and no file, no other table."""
    con = duckdb.connect(":memory:", config=LOCKED_DOWN)
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute(f"SET memory_limit = {quote(memory_limit)}")
        con.register("_rows", rows)
        con.execute(f"CREATE TABLE {ident(name)} AS SELECT * FROM _rows")
        con.unregister("_rows")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        yield con
    finally:
        con.close()


# --------------------------------------------------------------------------- bookkeeping

def duplicate_rows(con: duckdb.DuckDBPyConnection, lake_dir: Path, staged: list[str]) -> dict[str, set[int]]:
    """{staged file: row numbers to drop}: repeats inside the run and spans already in the lake.
    A span's partition is its start day, so a span already stored is in the same day partition
    as its staged copy, or in the month part of that day: only those parts are read (a nightly
    ingest reads its own days, not the year before them)."""
    if not staged:
        return {}
    existing = [str(p) for p in lake.files_beside(lake_dir, "spans", staged)]
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
    rows = con.execute(sql("get_watermark"), {"source": source, "key": key}).fetchall()  # no result left open
    return rows[0][0] if rows else None


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
    found = cur.fetchall()  # whole: DuckDB refuses other work on a connection with a result left open
    return dict(zip([d[0] for d in cur.description], found[0], strict=True)) if found else None


def scalar(con: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any] | None = None) -> Any:
    found = con.execute(sql(name), params or {}).fetchall()
    return found[0][0] if found else None
