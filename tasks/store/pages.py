"""Where a Parquet file's pages are, and whether they carry a checksum.

pyarrow verifies a page's CRC-32 when it reads it (``page_checksum_verification=True``) but says
nothing about a page that has none, and it exposes no page header. This reads the headers
itself: a page header is a Thrift ``PageHeader`` in the compact protocol, whose first fields are
``1: type``, ``2: uncompressed_page_size``, ``3: compressed_page_size`` and ``4: crc`` (optional:
the CRC-32 of the page's compressed bytes, header excluded). The column chunks' offsets come
from the footer (pyarrow). Only what ``replay check`` and its tests need: integer fields of the
header's top level; every other field is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

PAGE_TYPES = {0: "DATA_PAGE", 1: "INDEX_PAGE", 2: "DICTIONARY_PAGE", 3: "DATA_PAGE_V2"}
_INTS = (4, 5, 6)  # compact types: i16, i32, i64 (zigzag varints)
_STOP, _STRUCT, _MAP = 0, 12, 11


class PageFormatError(ValueError):
    """A page header that is not a compact Thrift PageHeader."""


@dataclass(frozen=True)
class Page:
    """One page of a column chunk: its header at ``offset``, its body right after it."""

    column: str
    row_group: int
    offset: int  # of the header
    body: int  # first byte of the (compressed) body
    size: int  # compressed body bytes
    type: str
    crc: int | None  # None: the page has no checksum

    @property
    def end(self) -> int:
        return self.body + self.size


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if pos >= len(buf):
            raise PageFormatError("page header runs past the data")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift > 70:
            raise PageFormatError("varint too long")


def _zigzag(n: int) -> int:
    return (n >> 1) ^ -(n & 1)


_FIXED = {3: 1, 7: 8}  # byte, double: bytes after the field header


def _skip(buf: bytes, pos: int, ctype: int, in_collection: bool = False) -> int:
    if ctype in (1, 2):  # a bool: in the field header, or one byte in a collection
        return pos + 1 if in_collection else pos
    if ctype in _FIXED:
        return pos + _FIXED[ctype]
    if ctype in (4, 5, 6):
        return _varint(buf, pos)[1]
    if ctype == 8:
        n, pos = _varint(buf, pos)
        return pos + n
    if ctype in (9, 10, _MAP):
        return _skip_collection(buf, pos, ctype)
    if ctype == _STRUCT:
        return read_struct(buf, pos)[1]
    raise PageFormatError(f"unknown compact type {ctype}")


def _skip_collection(buf: bytes, pos: int, ctype: int) -> int:
    if ctype == _MAP:  # size (varint), then key and value types in one byte
        n, pos = _varint(buf, pos)
        if n:
            kv = buf[pos]
            pos += 1
            for _ in range(n):
                pos = _skip(buf, _skip(buf, pos, kv >> 4, True), kv & 0x0F, True)
        return pos
    head = buf[pos]  # list, set: size and element type in one byte (size 15: a varint follows)
    pos += 1
    n, etype = head >> 4, head & 0x0F
    if n == 15:
        n, pos = _varint(buf, pos)
    for _ in range(n):
        pos = _skip(buf, pos, etype, True)
    return pos


def read_struct(buf: bytes, pos: int, stop_after: int | None = None) -> tuple[dict[int, int], int]:
    """The integer fields of the compact Thrift struct at ``pos`` ({field id: value}) and where it
    ends; with ``stop_after``, stop once a field id beyond it shows (the end is then unknown: -1)."""
    ints: dict[int, int] = {}
    fid = 0
    while True:
        if pos >= len(buf):
            raise PageFormatError("page header runs past the data")
        head = buf[pos]
        pos += 1
        if head == _STOP:
            return ints, pos
        delta, ctype = head >> 4, head & 0x0F
        if delta:
            fid += delta
        else:
            raw, pos = _varint(buf, pos)
            fid = _zigzag(raw)
        if stop_after is not None and fid > stop_after:
            return ints, -1
        if ctype in _INTS:
            raw, pos = _varint(buf, pos)
            ints[fid] = _zigzag(raw)
        else:
            pos = _skip(buf, pos, ctype)


def _chunk_range(col) -> tuple[int, int]:
    start = col.data_page_offset
    if col.has_dictionary_page and col.dictionary_page_offset:
        start = min(start, col.dictionary_page_offset)
    return start, start + col.total_compressed_size


def _header(buf: bytes, pos: int, column: str, row_group: int) -> Page:
    ints, body = read_struct(buf, pos)
    if 1 not in ints or 3 not in ints or ints[3] < 0:
        raise PageFormatError(f"no page header at byte {pos}")
    crc = ints.get(4)
    return Page(column, row_group, pos, body, ints[3], PAGE_TYPES.get(ints[1], f"type {ints[1]}"),
                None if crc is None else crc & 0xFFFFFFFF)


def pages(path: str | Path) -> list[Page]:
    """Every page of every column chunk of the file, in file order."""
    data = Path(path).read_bytes()
    meta = pq.ParquetFile(path).metadata
    out = []
    for rg in range(meta.num_row_groups):
        for c in range(meta.num_columns):
            col = meta.row_group(rg).column(c)
            pos, end = _chunk_range(col)
            while pos < end:
                page = _header(data, pos, col.path_in_schema, rg)
                out.append(page)
                pos = page.end
    return out


def first_page_has_crc(path: str | Path, meta: pq.FileMetaData) -> bool | None:
    """Whether the file's first page carries a checksum (a writer sets it on every page or on
    none); None when the file has no column chunk. Reads a few bytes, not the file."""
    if meta.num_row_groups == 0 or meta.num_columns == 0:
        return None
    start, _ = _chunk_range(meta.row_group(0).column(0))
    with open(path, "rb") as f:
        f.seek(start)
        head = f.read(64)
    ints, _ = read_struct(head, 0, stop_after=4)
    return 4 in ints
