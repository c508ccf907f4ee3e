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
    return json_bytes(value).decode()


I64_MIN, I64_MAX = -(1 << 63), (1 << 63) - 1
_U64_MAX = (1 << 64) - 1
_MAX_NOTES = 5


def json_bytes(value: Any, notes: list[str] | None = None, where: str = "") -> bytes:
    """``value`` as JSON, losslessly: an integer beyond 64 bits (which orjson cannot write) is
    written digit for digit, and ``notes`` gets one line naming it (``where`` prefixes the path)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # an integer beyond 64 bits, or a type JSON has no form for
        found: list[str] = []
        out = orjson.dumps(_exact_numbers(value, where, found), option=orjson.OPT_NON_STR_KEYS, default=str)
        if notes is not None and found:
            more = f" (and {len(found) - _MAX_NOTES} more)" if len(found) > _MAX_NOTES else ""
            notes.append(f"{', '.join(found[:_MAX_NOTES])}{more}: integer beyond 64 bits, kept as written")
        return out


def _exact_numbers(value: Any, path: str, found: list[str]) -> Any:
    """A copy of ``value`` whose integers beyond 64 bits are raw JSON numbers (``orjson.Fragment``)."""
    if isinstance(value, dict):
        return {(str(k) if isinstance(k, int) else k): _exact_numbers(v, f"{path}.{k}" if path else str(k), found)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_exact_numbers(v, f"{path}[{i}]", found) for i, v in enumerate(value)]
    if isinstance(value, int) and not isinstance(value, bool) and not I64_MIN <= value <= _U64_MAX:
        found.append(path or "value")
        return orjson.Fragment(str(value).encode())
    return value


def json_value(value: Any, default: Any = None) -> Any:
    """JSON text (str or bytes) parsed; ``default`` when it does not parse; anything else as is."""
    if isinstance(value, (str, bytes)):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return default
    return value


__all__ = ["I64_MAX", "I64_MIN", "clip", "error_text", "json_bytes", "json_text", "json_value", "judged",
           "one_line"]
