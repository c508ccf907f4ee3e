"""Executions as a user lists them: what each is (scenario, agent), where it stands, why its
chats failed. Read-only: nothing here writes the catalog.

An execution's stored status is ``running`` from its start until its process finishes it; a
process killed (``kill -9``, a crash, a reboot) never does. :func:`status_of` tells them apart
by the owner each execution records (``executions.owner_pid``/``owner_host``/``owner_start``):
a ``running`` execution whose owner is gone on this host is ``interrupted`` (``replay runs
resume`` finishes it). On another host nothing can be told: it stays ``running``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from tasks.common.clock import now
from tasks.common.processes import owner_gone
from tasks.simulate.executor import RunError, exec_dir, finished_chats
from tasks.store import catalog

STATUSES = ("running", "completed", "failed", "interrupted")


def status_of(row: dict[str, Any]) -> str:
    """The status to show: the stored one, except a ``running`` execution whose process has
    ended on this host, which is ``interrupted``."""
    if row["status"] == "running" and owner_gone(row.get("owner_pid"), row.get("owner_host"), row.get("owner_start")):
        return "interrupted"
    return row["status"]


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    """From ``start`` to ``end`` (None: now), in seconds."""
    return None if start is None else round(((end or now()) - start).total_seconds(), 3)


def execution_rows(con, lake_dir, scenario_id: str | None = None, status: str | None = None,
                   execution_id: str | None = None) -> list[dict[str, Any]]:
    """Executions, newest first, each with its shown ``status`` (:func:`status_of`; the stored
    one is ``stored_status``), its chats done (a running or interrupted one: counted in the lake)
    and its duration in seconds (so far, for a running one; for one whose process died before
    it could end it, until its last persisted batch). ``status``: only those."""
    if status is not None and status not in STATUSES:
        raise RunError(f"--status {status!r} is not a status: use {', '.join(STATUSES)}")
    out = []
    for r in catalog.rows(con, "list_executions", {"scenario_id": scenario_id, "execution_id": execution_id}):
        shown = status_of(r)
        if status is not None and shown != status:
            continue
        if r["status"] in ("running", "interrupted"):  # its counts are set when it finishes: read the lake
            done = finished_chats(lake_dir, r["execution_id"])
            r["completed_chats"] = sum(1 for s in done.values() if s == "completed")
            r["failed_chats"] = sum(1 for s in done.values() if s == "failed")
        # so far for a running one; until its last persisted batch for one whose process died
        # before it could end it (None: it persisted none)
        end = r["ended_at"] if r["ended_at"] is not None or shown == "running" else last_batch_at(lake_dir, r)
        seconds = None if shown != "running" and end is None else _seconds(r["started_at"], end)
        r.update(stored_status=r["status"], status=shown, done_chats=r["completed_chats"] + r["failed_chats"],
                 seconds=seconds)
        out.append(r)
    return out


def last_batch_at(lake_dir, row: dict[str, Any]) -> datetime | None:
    """When the execution's last batch was persisted (UTC, its chats part's time); None when none was."""
    d = exec_dir(lake_dir, "chats", row["execution_id"])
    times = [p.stat().st_mtime for p in d.glob("*.parquet")] if d.is_dir() else []
    return datetime.fromtimestamp(max(times), timezone.utc).replace(tzinfo=None) if times else None


def execution_errors(con, execution_id: str, limit: int = 5) -> list[dict[str, Any]]:
    """Why the chats of an execution failed: ``[{reason, count, example_chat_id}]``, the most
    frequent reason first — the reasons of ``replay run`` (:func:`tasks.simulate.failures.error_reasons`)."""
    from tasks.simulate.failures import error_reasons

    return [r.model_dump() for r in error_reasons(con, execution_id, limit)]


__all__ = ["STATUSES", "execution_errors", "execution_rows", "status_of"]
