"""Lake parts: row groups bounded in bytes, so that a reader never holds huge texts at once."""

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.store import lake


def test_row_groups_are_bounded_in_bytes_and_rows(tmp_path):
    big, small = "x" * 20_000_000, "y"
    t = pa.table({"text": [big if i % 4 == 0 else small for i in range(12)], "n": list(range(12))})
    assert lake.row_group_bounds(t) == [0, 4, 8]  # one 20 MB text a group (32 MB each at most)
    assert lake.row_group_bounds(pa.table({"text": ["s"] * 70_000})) == [0, 32_768, 65_536]
    assert lake.row_group_bounds(pa.table({"text": pa.array([], pa.string())})) == [0]
    path = lake.write_atomic(t, tmp_path / "part.parquet")
    meta = pq.ParquetFile(path).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [4, 4, 4]
    assert pq.read_table(path).equals(t)


def test_a_row_larger_than_the_bound_is_a_group_of_its_own():
    t = pa.table({"text": ["z" * 40_000_000, "z" * 40_000_000, "a"]})
    assert lake.row_group_bounds(t) == [0, 1, 2]


def test_the_bound_is_per_column_so_small_wide_rows_keep_large_groups():
    # 8 text columns of 2 KB a row (16 KB a row): a whole-row bound of 32 MB would make 2,048-row
    # groups; each column holds 32 MB = 16,384 rows of 2 KB
    cols = {f"c{i}": pa.array(["x" * 2048] * 20_000) for i in range(8)}
    assert lake.row_group_bounds(pa.table(cols), max_rows=131_072) == [0, 16_384]
    mixed = pa.table({"big": ["y" * 4096] * 20_000, "small": ["s"] * 20_000, "n": list(range(20_000))})
    assert lake.row_group_bounds(mixed, max_rows=131_072) == [0, 8_192, 16_384]  # the big column bounds


def test_a_fold_writes_full_row_groups_and_carries_the_unfilled_one(tmp_path, monkeypatch):
    """Batches gathered into groups bounded by a column's bytes: every group but the file's
    last is full (the unfilled end of a gathering waits for the next batches; it used to be
    written as a small group of its own, halving the rows a group of a month part held)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tasks.store import compact, lake

    monkeypatch.setattr(lake, "ROW_GROUP_BYTES", 100_000)  # 1,000 rows of 100-byte texts a group
    schema = pa.schema([("n", pa.int64()), ("text", pa.string())])
    batches = [pa.record_batch({"n": list(range(i, i + 300)), "text": ["x" * 100] * 300}, schema=schema)
               for i in range(0, 6_000, 300)]  # 20 batches of 300 rows
    path = tmp_path / "fold.parquet"
    with pq.ParquetWriter(path, schema) as w:
        rows = compact._write_groups(w, pa.RecordBatchReader.from_batches(schema, batches), schema)
    meta = pq.ParquetFile(path).metadata
    groups = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert rows == 6_000 and sum(groups) == 6_000
    assert all(g == groups[0] for g in groups[:-1]) and groups[0] >= 990, groups  # full, not 900 + 90 + ...
    assert pq.read_table(path).column("n").to_pylist() == list(range(6_000))  # order and rows kept
