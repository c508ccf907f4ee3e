"""Text helpers every stage uses: one-line messages, clipped texts, JSON as text."""

from __future__ import annotations

import json
from typing import Any

import orjson

from tasks.common.secrets import scrub


def one_line(text: Any, limit: int = 500) -> str:
    """``text`` on one line (white space folded), cut to ``limit`` characters with "..."."""
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def error_text(exc: BaseException, limit: int = 500) -> str:
    """An exception as one line: ``Type: message`` (the type alone when there is no message),
    credentials masked (tasks.common.secrets): what a failed chat or evaluator row keeps."""
    msg = one_line(scrub(str(exc)), limit)
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def clip(text: Any, limit: int) -> str:
    """A text for a prompt or a page: non-text as JSON, stripped, cut to ``limit`` characters
    with a note of what was left out."""
    if text is None:
        return ""
    if not isinstance(text, str):
        text = json.dumps(text, ensure_ascii=False, default=str)
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more chars]"


def judged(text: str | None, limit: int | None) -> str | None:
    """The part of a text a judge (an evaluator, the divergence check) reads: its first ``limit``
    characters (None: all of it). Judging a 50 MB answer whole costs gigabytes; what an answer
    says is in its beginning."""
    return text if text is None or limit is None or len(text) <= limit else text[:limit]


def json_text(value: Any) -> str | None:
    """A value as stored in a text column: text as is, anything else as JSON, None as None."""
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value, default=str).decode()


def json_value(value: Any, default: Any = None) -> Any:
    """JSON text (str or bytes) parsed; ``default`` when it does not parse; anything else as is."""
    if isinstance(value, (str, bytes)):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return default
    return value


__all__ = ["clip", "error_text", "json_text", "json_value", "judged", "one_line"]
