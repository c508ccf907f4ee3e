"""``replay check``: every lake part read in full with its page checksums verified, against its
table's declared schema; broken parts in one line each, and quarantined on demand so that the
queries go on without them. Real parts: the sample ingested by the CLI, real bit flips."""

from __future__ import annotations

import json
import random
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
from cli_helpers import replay

from models.settings import SAMPLES_DIR
from tasks.store import lake, pages

SPANS = json.loads((SAMPLES_DIR / "expected.json").read_text())["summary"]["spans"]


def _ingested(tmp_path):
    data = tmp_path / "data"
    r = replay(data, "ingest", SAMPLES_DIR / "otlp")
    assert r.returncode == 0, r.stderr
    return data


def _flipped_copies(part, n, seed=11):
    """``n`` copies of ``part`` beside it, each with one bit flipped at a seeded position inside
    a page body (the bytes a page checksum covers): {copy: (position, bit, page type)}."""
    data = part.read_bytes()
    bodies = pages.pages(part)
    assert bodies and all(p.crc is not None for p in bodies)  # written with page checksums
    rng = random.Random(seed)
    out = {}
    for i in range(n):
        page = rng.choice(bodies)
        pos, bit = rng.randrange(page.body, page.end), rng.randrange(8)
        flipped = bytearray(data)
        flipped[pos] ^= 1 << bit
        copy = part.with_name(f"flip-{i:02d}.parquet")
        copy.write_bytes(bytes(flipped))
        out[copy] = (pos, bit, page.type)
    return out


def test_check_finds_every_bit_flip_in_a_page_and_quarantine_keeps_queries_working(tmp_path):
    data = _ingested(tmp_path)
    assert replay(data, "check").returncode == 0  # a fresh lake is sound
    part = max(lake.list_files(data / "lake", "spans"), key=lambda p: p.stat().st_size)
    flips = _flipped_copies(part, 50)

    r = replay(data, "--json", "check")
    assert r.returncode == 1 and "50 broken parts" in r.stderr, (r.stdout, r.stderr)
    report = json.loads(r.stdout)
    broken = {b["path"]: b["reason"] for b in report["broken"]}
    caught = [c for c in flips if str(c) in broken]
    assert len(caught) == len(flips) == 50, sorted(set(map(str, flips)) - set(broken))  # 50 of 50
    assert set(broken) == {str(c) for c in flips}  # and nothing else
    assert report["parts"] == len(list((data / "lake").rglob("*.parquet")))

    plain = replay(data, "check")
    lines = [ln for ln in plain.stdout.splitlines() if ln.startswith("broken: ")]
    assert plain.returncode == 1 and len(lines) == 50
    assert all(str(part.parent) in ln and ": " in ln.removeprefix("broken: ") for ln in lines)

    q = replay(data, "--json", "check", "--quarantine")
    assert q.returncode == 1, q.stderr  # it found them broken: still a failure, but they are moved
    moved = json.loads(q.stdout)["quarantined"]
    assert len(moved) == 50
    for copy in flips:
        assert not copy.exists()
        assert (data / "_quarantine" / copy.relative_to(data)).is_file()
    assert replay(data, "check").returncode == 0
    r = replay(data, "sql", "select count(*) n from spans", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [{"n": SPANS}]


def test_check_on_old_undecodable_and_foreign_parts(tmp_path):
    data = _ingested(tmp_path)
    part = lake.list_files(data / "lake", "spans")[0]
    table = pq.read_table(part)
    # a part written before page checksums: a warning, not an error
    old = part.with_name("old.parquet")
    pq.write_table(table, old)
    r = replay(data, "check")
    assert r.returncode == 0, r.stderr
    assert "no page checksums" in r.stdout and "1 part of spans" in r.stdout
    js = json.loads(replay(data, "--json", "check").stdout)
    assert [w["path"] for w in js["warnings"]] == [str(old)] and js["broken"] == []

    # cut short; not Parquet; a column of another type than declared; a column not declared
    cut = part.with_name("cut.parquet")
    cut.write_bytes(part.read_bytes()[: part.stat().st_size // 2])
    junk = part.with_name("junk.parquet")
    junk.write_bytes(b"not parquet at all")
    typed = part.with_name("typed.parquet")
    pq.write_table(table.set_column(table.schema.get_field_index("status"), "status",
                                    pa.array(range(table.num_rows), pa.int64())), typed, write_page_checksum=True)
    extra = part.with_name("extra.parquet")
    pq.write_table(table.append_column("surprise", pa.array([1] * table.num_rows)), extra, write_page_checksum=True)
    r = replay(data, "--json", "check")
    assert r.returncode == 1
    reasons = {b["path"]: b["reason"] for b in json.loads(r.stdout)["broken"]}
    assert set(reasons) == {str(cut), str(junk), str(typed), str(extra)}
    assert "status" in reasons[str(typed)] and "int64" in reasons[str(typed)]
    assert "surprise" in reasons[str(extra)]
    assert "Parquet" in reasons[str(junk)] or "parquet" in reasons[str(junk)]


def test_check_on_an_empty_data_dir(tmp_path):
    r = replay(tmp_path / "empty", "--json", "check")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert (out["parts"], out["broken"], out["warnings"]) == (0, [], [])
    shutil.rmtree(tmp_path / "empty", ignore_errors=True)


def test_check_finds_a_flipped_bit_in_the_footer_statistics(tmp_path):
    """The footer has no checksum, and DuckDB skips a row group on its min/max: a flipped bit in
    a trace_id's max makes a filtered query silently miss rows. check compares them with the values."""
    import duckdb

    data = _ingested(tmp_path)
    part = max(lake.list_files(data / "lake", "spans"), key=lambda p: p.stat().st_size)
    meta = pq.ParquetFile(part).metadata
    col = next(meta.row_group(0).column(i) for i in range(meta.num_columns)
               if meta.row_group(0).column(i).path_in_schema == "trace_id")
    top = col.statistics.max.encode()
    raw = bytearray(part.read_bytes())
    footer_len = int.from_bytes(raw[-8:-4], "little")
    start = len(raw) - 8 - footer_len
    at = raw.find(top, start)
    assert at > 0
    while at > 0:  # every copy of the max in the footer: its last hex digit one lower
        raw[at + len(top) - 1] ^= 0x01
        at = raw.find(top, at + 1)
    part.write_bytes(bytes(raw))

    q = f"select count(*) from read_parquet('{part}', hive_partitioning = false) where trace_id = '{top.decode()}'"
    assert duckdb.sql(q).fetchall() == [(0,)]  # the trace is there, but DuckDB skipped its row group: silent
    r = replay(data, "--json", "check")
    assert r.returncode == 1
    (broken,) = json.loads(r.stdout)["broken"]
    assert broken["path"] == str(part) and "trace_id" in broken["reason"] and "footer min/max" in broken["reason"]
