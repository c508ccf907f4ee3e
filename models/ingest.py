"""Manifests handed between the ingest stages (small: counts and ids, never data)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Reject(BaseModel):
    """An input record that could not be used, with where it was and why."""

    reject_id: str
    source: str
    location: str
    reason: str
    raw: str


class ExtractInfo(BaseModel):
    run_id: str
    source: str
    files: int = 0
    read: int = Field(0, description="span records read (a broken line counts as one)")
    ingested: int = Field(0, description="new spans written to the lake")
    rejected: int = 0
    duplicates: int = Field(0, description="spans already in the lake or repeated in the input")
    bytes: int = 0
    seconds: float = 0.0


class SessionizeInfo(BaseModel):
    traces: int = 0
    turns_written: int = 0
    sessions_written: int = 0
    sessions_rejected: int = Field(0, description="sessions (or lone traces) that could not be rebuilt: "
                                                  "a reject row each (source 'sessionize')")
    sessions_touched: list[str] = Field(default_factory=list)
    seconds: float = 0.0


class IngestInfo(BaseModel):
    """What ``replay ingest`` prints with ``--json``."""

    extract: list[ExtractInfo]
    sessionize: SessionizeInfo
    read: int
    ingested: int
    rejected: int
    duplicates: int
    sessions: int = Field(0, description="sessions in the catalog after the run")
    turns: int = Field(0, description="turns in the catalog after the run")
    seconds: float = 0.0
    mode: str = Field("in-process", description="'prefect' when run as a flow on a Prefect server")
