"""An older data dir whose catalog holds a Phoenix URL's password (in the cursor's key, a reject's
location and reason): the next command that opens the catalog rewrites them, and the next pull
with the same URL still finds its cursor. A real DuckDB file."""

from __future__ import annotations

from secret_scan import leaks

from models.ingest import Reject
from tasks.ingest.sources.phoenix import watermark_key
from tasks.store import catalog

URL = "http://replay:pw-OLD-S3CR3T@phoenix.internal:6006"


def test_an_older_catalog_loses_the_phoenix_password_and_keeps_its_cursor(settings):
    with catalog.writer(settings) as con:  # what an earlier version wrote
        con.execute(catalog.sql("set_watermark"), {"source": "phoenix", "key": f"{URL}|proj", "value": "U3Bhbjo1",
                                                   "updated_at": "2026-01-01 00:00:00"})
        con.execute(catalog.sql("set_watermark"), {"source": "phoenix", "key": "http://127.0.0.1:6006|other",
                                                   "value": "U3Bhbjo5", "updated_at": "2026-01-01 00:00:00"})
        catalog.add_rejects(con, [Reject(reject_id="r1", source="phoenix", location=f"{URL}/v1/projects/proj/spans#cursor=",
                                         reason=f"phoenix span: bad trace_id at {URL}", raw="{}"),
                                  Reject(reject_id="r2", source="otlp_file", location="/data/a.jsonl:3",
                                         reason="not JSON", raw="{")])
        catalog.set_watermark(con, "catalog", "shape", "from an earlier version")
    with catalog.reader(settings) as con:  # any command that opens the catalog, a reader too
        marks = dict(con.execute("select key, value from watermarks where source = 'phoenix'").fetchall())
        rejects = con.execute("select reject_id, location, reason from rejects order by 1").fetchall()
    assert marks == {"http://***@phoenix.internal:6006|proj": "U3Bhbjo1", "http://127.0.0.1:6006|other": "U3Bhbjo5"}
    assert marks[watermark_key(URL, "proj")] == "U3Bhbjo1"  # the next pull with the same URL resumes there
    assert rejects == [("r1", "http://***@phoenix.internal:6006/v1/projects/proj/spans#cursor=",
                        "phoenix span: bad trace_id at http://***@phoenix.internal:6006"),
                       ("r2", "/data/a.jsonl:3", "not JSON")]
    with catalog.reader(settings) as con:
        for (name,) in con.execute("select table_name from information_schema.tables").fetchall():
            assert "pw-OLD-S3CR3T" not in str(con.execute(f'select * from "{name}"').fetchall()), name
    # the catalog file may still hold the old bytes in blocks DuckDB freed (not rows: no query returns
    # them) until it reuses them; the lake never had them (no part was written here)
    assert [hit for hit in leaks(settings.data_dir, "pw-OLD-S3CR3T") if "replay.duckdb (bytes)" not in hit] == []
