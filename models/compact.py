"""What ``replay compact`` (and the compaction after an ingest) reports. No I/O."""

from __future__ import annotations

from pydantic import BaseModel, Field


class CompactTable(BaseModel):
    """One lake table before and after compaction."""

    table: str
    partitions: int = Field(0, description="partitions of the table (day=..., and month=... once folded)")
    compacted: int = Field(0, description="partitions and closed months folded into one part by this run")
    months: int = Field(0, description="closed months among them (folded into month=YYYY-MM)")
    files_before: int = 0
    files_after: int = 0
    max_files_before: int = Field(0, description="the most part files one partition had before")
    max_files_after: int = 0
    rows_read: int = Field(0, description="rows (versions) read from the folded partitions")
    rows_written: int = Field(0, description="rows of their compacted parts (spans: every row; turns and "
                              "sessions: the latest version of each key)")


class CompactInfo(BaseModel):
    """What ``replay compact --json`` prints."""

    tables: list[CompactTable] = Field(default_factory=list)
    min_files: int = Field(2, description="a partition with at least this many part files was folded")
    seconds: float = 0.0
