"""Parquet parts carry page checksums and are read with verification; the page headers are read
right (a hand-made compact Thrift header, and pyarrow's own)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.store import lake, pages


def _table(n=500):
    return pa.table({"a": pa.array(range(n), pa.int64()), "b": pa.array([f"v{i % 7}" for i in range(n)])})


def test_write_atomic_writes_a_checksum_on_every_page(tmp_path):
    part = lake.write_atomic(_table(), tmp_path / "t" / "part.parquet")
    found = pages.pages(part)
    assert {p.type for p in found} == {"DICTIONARY_PAGE", "DATA_PAGE"}
    assert all(p.crc is not None for p in found)
    assert pages.first_page_has_crc(part, pq.ParquetFile(part).metadata) is True


def test_a_flipped_page_is_refused_by_read_part(tmp_path):
    part = lake.write_atomic(_table(), tmp_path / "part.parquet")
    assert lake.read_part(part).equals(_table())
    page = [p for p in pages.pages(part) if p.type == "DATA_PAGE"][0]
    data = bytearray(part.read_bytes())
    data[page.body + page.size // 2] ^= 0x10
    part.write_bytes(bytes(data))
    with pytest.raises(OSError, match="(?i)crc|checksum"):
        lake.read_part(part)


def test_parts_without_checksums_are_told_apart(tmp_path):
    pq.write_table(_table(), tmp_path / "old.parquet")
    assert all(p.crc is None for p in pages.pages(tmp_path / "old.parquet"))
    assert pages.first_page_has_crc(tmp_path / "old.parquet", pq.ParquetFile(tmp_path / "old.parquet").metadata) is False


def test_read_struct_skips_nested_fields_and_reads_ints():
    # PageHeader{1: type=0, 2: 10, 3: 7, 4: crc=-5, 5: DataPageHeader{1: num_values=3, 2: bool? no: i32 4}}
    header = bytes([0x15, 0x00,  # field 1, i32, zigzag(0)
                    0x15, 0x14,  # field 2, i32, 10
                    0x15, 0x0E,  # field 3, i32, 7
                    0x15, 0x09,  # field 4, i32, -5
                    0x1C,  # field 5, struct
                    0x15, 0x06, 0x11, 0x00,  # {1: i32 3, 2: bool true}, stop
                    0x00])
    ints, end = pages.read_struct(header, 0)
    assert ints == {1: 0, 2: 10, 3: 7, 4: -5} and end == len(header)
    assert pages.read_struct(header, 0, stop_after=3) == ({1: 0, 2: 10, 3: 7}, -1)
