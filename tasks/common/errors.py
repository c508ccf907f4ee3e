"""The one error base. Every error Replay raises on purpose is a :class:`ReplayError` whose
message is one line a user can act on: what failed, on which id, and what to do next. The
CLI prints that line as it is (no traceback unless ``--debug``); anything else reaching the
CLI is a bug and is reported with its type."""

from __future__ import annotations


class ReplayError(Exception):
    """A failure a user can act on, told in one line."""


__all__ = ["ReplayError"]
