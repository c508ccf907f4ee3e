"""Why the chats of an execution failed: their errors grouped into reasons.

A failed chat keeps its error (``chats.error``: ``Type: message``, one line). Errors that differ
only in a number or an id (``agent exploded on turn 1`` / ``... turn 2``, a chat id, a UUID)
are one reason: :func:`reason_of` masks numbers as ``<n>`` and ids as ``<id>`` (URLs and HTTP
statuses are kept as written: which endpoint failed, and how). :func:`error_reasons` reads an
execution's failed chats and counts them by reason, each with one example chat id.
"""

from __future__ import annotations

import re
from typing import Any

from models.simulate import ErrorReason
from tasks.store import catalog

REASON_CHARS = 200  # a reason, at most (the example chat keeps the whole error)
TOP_REASONS = 10  # reasons an execution reports, the most frequent first

# kept as written: a URL (the endpoint that failed) and an HTTP status (429 is not 500)
_KEEP = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>]+|\bHTTP \d{3}\b", re.I)
_IDS = (
    re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I),  # a UUID
    re.compile(r"\bex_[0-9a-f]{6,}(?:-r\d+-k\d+)?\b"),  # an execution or chat id
    re.compile(r"\b[a-z]+_[0-9a-z]*\d[0-9a-z]*\b", re.I),  # prefixed ids: sess_9dfbab13dfae, rpl_...
    re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b", re.I),  # a hex run (hash, trace id)
    re.compile(r"\b(?=\w*\d)(?=\w*[a-z])\w+\b", re.I),  # a word with letters and digits: A1208, r0003
)
_NUMBER = re.compile(r"(?<![\w<])[-+]?\d+(?:[.,]\d+)*(?![\w>])")


def reason_of(error: str | None, ended_reason: str | None = None) -> str:
    """The reason of a failed chat's error: its first line, numbers masked as ``<n>``, ids as
    ``<id>``, URLs and HTTP statuses as written, cut to :data:`REASON_CHARS`. A chat that failed
    without an error text is its ended reason (``off_script``, ``timeout``)."""
    text = (error or "").strip().splitlines()[0].strip() if (error or "").strip() else ""
    if not text:
        return f"ended: {ended_reason}" if ended_reason else "failed without an error"
    text = re.sub("[\ue000-\uf8ff]", "", text)  # the placeholders of what is kept
    urls: list[str] = []

    def keep(m: re.Match) -> str:
        urls.append(m.group(0))
        return chr(0xE000 + len(urls) - 1)  # a private-use character: no pattern below matches it

    text = _KEEP.sub(keep, text)
    for pattern in _IDS:
        text = pattern.sub("<id>", text)
    text = _NUMBER.sub("<n>", text)
    text = re.sub("[\ue000-\uf8ff]", lambda m: urls[ord(m.group(0)) - 0xE000], text)
    text = " ".join(text.split())
    return text if len(text) <= REASON_CHARS else text[:REASON_CHARS - 1] + "…"


def group_errors(rows: list[dict[str, Any]], top: int | None = TOP_REASONS) -> list[ErrorReason]:
    """``rows`` of (error, ended_reason, n, example_chat_id) -> reasons, the most frequent first
    (ties by reason), each with the example of its largest error (then the smallest chat id)."""
    groups: dict[str, dict[str, Any]] = {}
    for r in rows:
        reason = reason_of(r.get("error"), r.get("ended_reason"))
        g = groups.setdefault(reason, {"count": 0, "best": (-1, "")})
        g["count"] += int(r["n"])
        best = (int(r["n"]), r["example_chat_id"])
        if best[0] > g["best"][0] or (best[0] == g["best"][0] and best[1] < g["best"][1]):
            g["best"] = best
    ranked = sorted(groups.items(), key=lambda kv: (-kv[1]["count"], kv[0]))
    return [ErrorReason(reason=k, count=v["count"], example_chat_id=v["best"][1]) for k, v in ranked[:top]]


def error_reasons(con, execution_id: str, top: int | None = TOP_REASONS) -> list[ErrorReason]:
    """The reasons an execution's chats failed, counted (the views must read its parts)."""
    return group_errors(catalog.rows(con, "execution_errors", {"execution_id": execution_id}), top)


def reasons_line(reasons: list[ErrorReason], limit: int = 3) -> str:
    """The most frequent reasons in one line: ``12 x RuntimeError: ... (e.g. CHAT); ...``."""
    parts = [f"{r.count} x {r.reason} (e.g. {r.example_chat_id})" for r in reasons[:limit]]
    more = len(reasons) - limit
    return "; ".join(parts) + (f"; and {more} more reason{'s' if more > 1 else ''}" if more > 0 else "")


__all__ = ["REASON_CHARS", "TOP_REASONS", "error_reasons", "group_errors", "reason_of", "reasons_line"]
