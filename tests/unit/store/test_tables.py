"""Each table declared once (models/tables.py): the Parquet schema, the empty relation, the
tombstone row, the view's column list and the catalog DDL all follow the declaration, and a
column added to a declaration shows up in every one of them. No files, no servers (DuckDB
in memory only, to type the SQL text)."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pyarrow as pa
import pytest

from models import tables
from models.tables import Column, Table
from tasks.store import catalog, lake

AT = datetime(2026, 11, 20, 9, 0, 0)
LAKE = {t.name: t for t in tables.LAKE}
EXTRA = Column("extra_note", pa.string(), "a column added by the test")
EXTRA_JSON = Column("extra_doc", pa.string(), "a JSON column added by the test", json=True)


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect()
    c.execute("SET enable_progress_bar = false")
    yield c
    c.close()


def described(con, relation: str) -> list[tuple[str, str]]:
    """(name, type) of a relation's columns (DuckDB quotes some struct field names: unquoted)."""
    return [(r[0], r[1].replace('"', "")) for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]


def view_names(decl: Table) -> list[str]:
    """The output names of the view's select list, as DuckDB reads them."""
    con = duckdb.connect()
    try:
        return [d[0] for d in con.execute(f"SELECT {catalog.view_columns(decl)} FROM {catalog.empty_relation(decl)}")
                .description]
    finally:
        con.close()


def test_every_table_is_declared_once():
    assert [t.name for t in tables.LAKE] == ["spans", "turns", "sessions", "chats", "chat_turns", "eval_scores"]
    assert {t.name for t in tables.CATALOG} == {
        "rejects_log", "stage_runs", "watermarks", "replay_sessions", "agent_definitions", "scenarios",
        "scenario_rows", "run_tests", "executions", "evaluators", "execution_metrics"}
    assert len(tables.ALL) == 17
    for t in tables.ALL.values():
        assert t.grain and "\n" not in t.grain and t.key and all(c.doc for c in t.columns), t.name


@pytest.mark.parametrize("name", list(LAKE))
def test_parquet_schema_is_the_declaration(name):
    decl = LAKE[name]
    schema = lake.TABLES[name]
    assert schema.names == [c.name for c in decl.columns]
    assert [f.type for f in schema] == [c.type for c in decl.columns]
    assert all(f.nullable for f in schema)  # the lake enforces nothing
    assert getattr(lake, name.upper()) is schema


@pytest.mark.parametrize("name", list(LAKE))
def test_empty_relation_has_the_stored_columns_and_types(con, name):
    decl = LAKE[name]
    got = described(con, catalog.empty_relation(decl))
    assert got == [(c.name, catalog.duck_type(c.type)) for c in decl.columns]
    assert con.execute(f"SELECT count(*) FROM {catalog.empty_relation(decl)}").fetchall() == [(0,)]
    # the typed empty relation reads as the Parquet schema
    assert con.sql(f"SELECT * FROM {catalog.empty_relation(decl)}").to_arrow_table().schema.types == decl.schema().types


@pytest.mark.parametrize("name", list(LAKE))
def test_view_columns_are_the_visible_ones(name):
    decl = LAKE[name]
    names = view_names(decl)
    visible = [c.name for c in decl.columns if not c.internal]
    assert sorted(names) == sorted(visible) and len(names) == len(set(names))
    assert names[: len(decl.view_first)] == list(decl.view_first)
    rest = [n for n in visible if n not in decl.view_first]
    assert names[len(decl.view_first):] == rest  # then in declaration order


def test_internal_columns_are_hidden_json_is_json():
    assert [c.name for c in tables.TURNS.columns if c.internal] == ["version", "deleted"]
    assert "version" not in view_names(tables.SESSIONS) and "deleted" not in view_names(tables.SESSIONS)
    cols = catalog.view_columns(tables.SPANS)
    assert '"attributes"::JSON AS "attributes"' in cols
    assert "arguments := t.arguments::JSON" in catalog.view_columns(tables.TURNS)


def test_tombstone_row_follows_the_declaration():
    row = lake.tombstone(tables.SESSIONS, {"session_id": "s"}, AT, version=7)
    assert list(row) == lake.SESSIONS.names
    assert row["session_id"] == "s" and row["deleted"] is True and row["version"] == 7
    assert row["started_at"] == row["ended_at"] == row["sessionized_at"] == AT  # lands in a day partition
    assert row["duration_ms"] == 0.0 and row["turn_count"] == 0 and row["input_tokens"] == 0
    assert row["project"] is None and row["first_user_message"] is None
    table = pa.Table.from_pylist([row], schema=lake.SESSIONS)
    assert table.to_pylist() == [row]
    with pytest.raises(ValueError):
        lake.tombstone(tables.SESSIONS, {"trace_id": "t"}, AT)
    with pytest.raises(ValueError):
        lake.tombstone(tables.CHATS, {"chat_id": "c"}, AT)  # no deleted column: no tombstone


@pytest.mark.parametrize("name", list(LAKE))
def test_a_column_added_to_a_declaration_shows_up_everywhere(con, name):
    decl = LAKE[name].with_column(EXTRA).with_column(EXTRA_JSON)
    assert decl.schema().names[-2:] == ["extra_note", "extra_doc"]
    assert described(con, catalog.empty_relation(decl))[-2:] == [("extra_note", "VARCHAR"), ("extra_doc", "VARCHAR")]
    assert view_names(decl)[-2:] == ["extra_note", "extra_doc"]
    view_types = dict(described(con, f"(SELECT {catalog.view_columns(decl)} FROM {catalog.empty_relation(decl)})"))
    assert view_types["extra_doc"] == "JSON" and view_types["extra_note"] == "VARCHAR"
    if "deleted" in decl.names:
        row = lake.tombstone(decl, {k: "k" for k in decl.key}, AT)
        assert row["extra_note"] is None and row["extra_doc"] is None and list(row) == decl.schema().names
    # the original declaration is untouched
    assert "extra_note" not in LAKE[name].names and "extra_note" not in lake.TABLES[name].names


@pytest.mark.parametrize("decl", tables.CATALOG, ids=lambda t: t.name)
def test_catalog_ddl_is_the_declaration(con, decl):
    con.execute(catalog.create_table_sql(decl))
    rows = con.execute("SELECT column_name, data_type, is_nullable FROM duckdb_columns() "
                       "WHERE table_name = $t ORDER BY column_index", {"t": decl.name}).fetchall()
    assert rows == [(c.name, "JSON" if c.json else catalog.duck_type(c.type), c.nullable) for c in decl.columns]
    keys = con.execute("SELECT constraint_column_names FROM duckdb_constraints() "
                       "WHERE table_name = $t AND constraint_type = 'PRIMARY KEY'", {"t": decl.name}).fetchall()
    assert keys == ([(list(decl.key),)] if decl.enforce_key else [])
    con.execute(catalog.create_table_sql(decl))  # IF NOT EXISTS: again is a no-op


def test_declarations_are_checked():
    c = Column("a", pa.string(), "a")
    with pytest.raises(ValueError, match="declared twice"):
        Table("t", "one t", "lake", key=("a",), columns=(c, c))
    with pytest.raises(ValueError, match="key column b"):
        Table("t", "one t", "lake", key=("b",), columns=(c,))
    with pytest.raises(ValueError, match="view_first"):
        Table("t", "one t", "lake", key=("a",), columns=(c,), view_first=("z",))
    with pytest.raises(ValueError, match="JSON column is text"):
        Table("t", "one t", "lake", key=("a",), columns=(c, Column("j", pa.int64(), "j", json=True)))
    with pytest.raises(ValueError, match="NOT NULL"):
        Table("t", "one t", "catalog", key=("a",), columns=(c,))
