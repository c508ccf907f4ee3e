"""What ``replay check`` reports: the lake's parts it read and the ones it could not trust. No I/O."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class PartProblem(BaseModel):
    """One part that is broken (``error``: unreadable, a damaged page, not its table's schema) or
    that cannot be fully verified (``warning``: written without page checksums)."""

    path: str
    table: str
    severity: Literal["error", "warning"]
    reason: str = Field(description="one line")


class CheckInfo(BaseModel):
    """What ``replay check --json`` prints."""

    parts: int = Field(0, description="part files read")
    rows: int = Field(0, description="rows in the sound parts")
    broken: list[PartProblem] = Field(default_factory=list)
    warnings: list[PartProblem] = Field(default_factory=list)
    quarantined: list[str] = Field(default_factory=list, description="where each broken part was moved")
    seconds: float = 0.0
