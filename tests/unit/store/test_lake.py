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
