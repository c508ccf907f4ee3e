"""The declarations (models/tables.py) against what DuckDB actually exposes on a catalog in a
tmp dir: the views' columns and types (no lake file yet, and with files), a declared column
the lake's files do not have yet, the migration of an older catalog, the tombstone of a
session every trace has left."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from otlp_helpers import make_line, make_span, write_otlp_file

from models import tables
from models.tables import Column
from tasks.store import catalog, lake

AT = datetime(2026, 11, 20, 9, 0, 0)
EXTRA = Column("extra_note", pa.string(), "a column added by the test")
EXTRA_JSON = Column("extra_doc", pa.string(), "a JSON column added by the test", json=True)
EXTRA_VIEW = {"spans": ["day"]}  # computed in view_spans.sql, not a stored column


def view_shape(con, view: str) -> list[tuple[str, str]]:
    return [(r[0], r[1].replace('"', "")) for r in con.execute(f"DESCRIBE {view}").fetchall()]


def expected_shape(decl: tables.Table) -> list[tuple[str, str]]:
    out = []
    for c in decl.visible():
        t = catalog.duck_type(c.type)
        if c.json:
            t = "JSON"
        elif c.view:  # a list of structs whose arguments are JSON
            t = t.replace("arguments VARCHAR", "arguments JSON")
        out.append((c.name, t))
    return out + [(n, "DATE") for n in EXTRA_VIEW.get(decl.name, [])]


def blank_row(decl: tables.Table) -> dict:
    row = {c.name: lake.blank(c.type, AT) for c in decl.columns}
    if "chat_id" in row:  # a chat's turns are visible once its chat row is: one chat for both
        row["chat_id"] = "chat-0"
    return row


def write_blank_parts(lake_dir, decls=tables.LAKE) -> None:
    for decl in decls:
        lake.write_atomic(pa.Table.from_pylist([blank_row(decl)], schema=decl.schema()),
                          lake.table_dir(lake_dir, decl.name) / "day=2026-11-20" / "part-test.parquet")


@pytest.mark.parametrize("with_files", [False, True], ids=["empty-lake", "lake-with-files"])
def test_views_expose_the_declared_columns(settings, with_files):
    if with_files:
        write_blank_parts(settings.lake_dir)
    with catalog.writer(settings) as con:
        for decl in tables.LAKE:
            assert view_shape(con, decl.view) == expected_shape(decl), decl.name
            n = con.execute(f"SELECT count(*) FROM {decl.view}").fetchall()[0][0]
            assert n == (1 if with_files else 0), decl.name  # a blank row is not deleted
        for decl in tables.CATALOG:
            if decl.view:
                assert [c for c, _ in view_shape(con, decl.view)] == [c.name for c in decl.visible()]


def test_a_declared_column_no_lake_file_has_yet_reads_null(settings):
    write_blank_parts(settings.lake_dir, [tables.SESSIONS, tables.SPANS])
    with catalog.writer(settings) as con:
        for decl in (tables.SESSIONS.with_column(EXTRA).with_column(EXTRA_JSON), tables.SPANS.with_column(EXTRA)):
            con.execute(catalog.view_sql(decl, settings.lake_dir))
            assert view_shape(con, decl.view) == expected_shape(decl)
            rows = con.execute(f"SELECT extra_note, count(*) FROM {decl.view} GROUP BY ALL").fetchall()
            assert rows == [(None, 1)]
        # merge-on-read still works over old files: a newer version of the session, written by
        # a writer that knows the column, wins
        newer = dict(blank_row(tables.SESSIONS), session_id=None, version=2, turn_count=5)
        pq.write_table(pa.Table.from_pylist([dict(newer, extra_note="new")],
                                            schema=lake.SESSIONS.append(pa.field("extra_note", pa.string()))),
                       lake.table_dir(settings.lake_dir, "sessions") / "day=2026-11-20" / "part-new.parquet")
        con.execute(catalog.view_sql(tables.SESSIONS.with_column(EXTRA), settings.lake_dir))
        assert con.execute("SELECT turn_count, extra_note FROM sessions").fetchall() == [(5, "new")]


def test_an_older_catalog_gets_the_declared_columns_it_lacks(settings):
    settings.data_dir.mkdir(parents=True)
    old = duckdb.connect(str(settings.catalog_path))
    old.execute("CREATE TABLE executions (execution_id VARCHAR PRIMARY KEY, run_test_id VARCHAR NOT NULL, "
                "agent_ref VARCHAR NOT NULL, started_at TIMESTAMP NOT NULL, ended_at TIMESTAMP, "
                "status VARCHAR NOT NULL, total_chats INTEGER NOT NULL)")
    old.execute("INSERT INTO executions VALUES ('e1', 'r1', 'm:f', TIMESTAMP '2026-11-20 09:00:00', NULL, "
                "'completed', 3)")
    old.execute("CREATE TABLE execution_metrics (execution_id VARCHAR PRIMARY KEY, total_chats INTEGER, "
                "avg_my_judge DOUBLE)")  # an evaluator's column, added at run time
    old.execute("INSERT INTO execution_metrics VALUES ('e1', 3, 0.5)")
    old.close()
    with catalog.writer(settings) as con:
        cols = [r[0] for r in con.execute("DESCRIBE executions").fetchall()]
        assert cols == list(tables.EXECUTIONS.names)  # the missing ones appended, in declaration order here
        assert con.execute("SELECT total_chats, failed_chats, error FROM executions").fetchall() == [(3, None, None)]
        metrics = [r[0] for r in con.execute("DESCRIBE execution_metrics").fetchall()]
        assert metrics[:3] == ["execution_id", "total_chats", "avg_my_judge"]
        assert set(tables.EXECUTION_METRICS.names) <= set(metrics)
        # the inserts name their columns: a migrated table takes new rows
        con.execute(catalog.sql("insert_execution"), {"execution_id": "e2", "run_test_id": "r1", "agent_ref": "m:f",
                                                      "started_at": AT, "total_chats": 2, "owner_pid": 1,
                                                      "owner_host": "h", "owner_start": None})
        assert con.execute("SELECT status, failed_chats FROM executions WHERE execution_id = 'e2'").fetchall() == [
            ("running", 0)]
        # store_metrics (tasks/evaluate) still adds its avg_<evaluator> columns
        from tasks.evaluate.stage import store_metrics

        store_metrics(con, {"execution_id": "e1", "total_chats": 3, "avg_my_judge": 0.7, "avg_new_judge": 0.9})
        assert catalog.migrate(con) == []
    with catalog.writer(settings) as con:  # reopened: migrating again changes nothing, keeps the extra columns
        row = catalog.one(con, "get_execution_metrics", {"execution_id": "e1"})
        assert (row["avg_my_judge"], row["avg_new_judge"]) == (0.7, 0.9)


def test_a_column_added_to_a_catalog_declaration_is_added_to_an_existing_catalog(settings):
    with catalog.writer(settings) as con:
        con.execute(catalog.sql("insert_run"), {"run_id": "r", "stage": "extract", "finished_at": AT, "info": "{}"})
        plus = tables.STAGE_RUNS.with_column(EXTRA).with_column(EXTRA_JSON)
        assert catalog.migrate(con, (plus,)) == ["stage_runs.extra_note", "stage_runs.extra_doc"]
        assert catalog.migrate(con, (plus,)) == []
        assert con.execute("SELECT run_id, extra_note, extra_doc, typeof(extra_doc) FROM stage_runs").fetchall() == [
            ("r", None, None, "JSON")]
        rejects_plus = tables.REJECTS_LOG.with_column(EXTRA)
        assert catalog.migrate(con, (rejects_plus,)) == ["rejects_log.extra_note"]
        con.execute(catalog.view_sql(rejects_plus, settings.lake_dir))
        assert [r[0] for r in con.execute("DESCRIBE rejects").fetchall()][-1] == "extra_note"


def _spans(trace: int, ids: range, session: str | None, start: int, root: bool = False) -> list[dict]:
    t0 = 1_790_000_000_000_000_000 + start * 1_000_000_000
    out = []
    if root:
        out.append(make_span(trace, 1, None, "agent", t0, t0 + 10**10, {"openinference.span.kind": "AGENT",
                                                                        "input.value": "hi", "output.value": "yo"}))
    for i in ids:
        attrs = {"openinference.span.kind": "LLM", "llm.model_name": "m"}
        if session:
            attrs["session.id"] = session
        out.append(make_span(trace, i, 1, "llm", t0 + i * 10**6, t0 + i * 10**6 + 1000, attrs))
    return out


def test_a_session_every_trace_has_left_gets_a_tombstone(settings, ingest, query, tmp_path):
    # run 1: the trace's only session id is A; run 2: two more spans say B (the most common wins)
    write_otlp_file(tmp_path / "in1" / "a.jsonl", [make_line({"service.name": "svc"},
                                                             _spans(7, range(2, 3), "A", 0, root=True))])
    write_otlp_file(tmp_path / "in2" / "b.jsonl", [make_line({"service.name": "svc"}, _spans(7, range(3, 5), "B", 0))])
    ingest([tmp_path / "in1"])
    assert [r["session_id"] for r in query("select session_id from sessions")] == ["A"]
    info = ingest([tmp_path / "in2"])
    assert sorted(info.sessionize.sessions_touched) == ["A", "B"]
    assert [(r["session_id"], r["turn_count"]) for r in query("select * from sessions")] == [("B", 1)]
    files = [str(p) for p in lake.list_files(settings.lake_dir, "sessions")]
    con = duckdb.connect()
    cur = con.execute("SELECT * FROM read_parquet($f, union_by_name = true) WHERE session_id = 'A' "
                      "QUALIFY row_number() OVER (ORDER BY version DESC) = 1", {"f": files})
    (latest,) = [dict(zip([d[0] for d in cur.description], r, strict=True)) for r in cur.fetchall()]
    con.close()
    row = {k: latest[k] for k in lake.SESSIONS.names}
    assert row["deleted"] is True and row["turn_count"] == 0 and row["project"] is None
    assert row == lake.tombstone(tables.SESSIONS, {"session_id": "A"}, row["sessionized_at"], version=row["version"])


def test_a_reader_brings_an_older_catalog_up_to_date_first(settings):
    """``replay runs list`` reads columns an older Replay did not declare: the reader adds them."""
    with catalog.writer(settings) as con:  # what an earlier version made: executions without owner_pid
        con.execute("ALTER TABLE executions DROP COLUMN owner_pid")
        catalog.set_watermark(con, "catalog", "shape", "from an earlier version")
    with catalog.reader(settings) as con:
        assert "owner_pid" in [r[0] for r in con.execute("DESCRIBE executions").fetchall()]
        assert catalog.rows(con, "list_executions", {"scenario_id": None, "execution_id": None}) == []
