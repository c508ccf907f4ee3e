"""The one clock: every time Replay stores is naive UTC (DuckDB ``TIMESTAMP``)."""

from __future__ import annotations

from datetime import datetime, timezone


def now() -> datetime:
    """Now, in UTC, without a time zone (the catalog's and the lake's convention)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


__all__ = ["now"]
