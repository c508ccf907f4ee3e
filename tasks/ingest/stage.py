"""The ingest stage, composed once: extract (files or a Phoenix pull) -> sessionize (-> compact,
when a turns/sessions partition has ``compact_min_files`` parts).

``run_ingest`` is what ``replay ingest``, the ingest flow, the nightly flow and the demo call;
the runner decides whether its two steps run in this process or as Prefect task runs. Each
step takes the data dir's writer lock itself and starts its own worker processes before it
opens DuckDB (with fork, a worker must not inherit an open catalog).
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

from models.ingest import ExtractInfo, IngestInfo, SessionizeInfo
from models.settings import Settings
from tasks.common.runner import IN_PROCESS, Runner
from tasks.ingest._pool import worker_pool
from tasks.ingest.extract import expand_paths, extract_files
from tasks.ingest.sessionize import sessionize
from tasks.store import catalog
from tasks.store.compact import due, run_compact


def extract_step(settings: Settings, paths: list[str], project: str | None) -> list[ExtractInfo]:
    """Parse, deduplicate and publish the spans of OTLP/JSON files."""
    return [extract_files(settings, [Path(p) for p in paths], project)]


def pull_step(settings: Settings, url: str, project: str) -> list[ExtractInfo]:
    """Pull a Phoenix project's new spans (from the stored cursor) into the lake."""
    from tasks.ingest.sources import phoenix

    with catalog.write_lock(settings, sweep_parts=True):
        return phoenix.pull(functools.partial(catalog.open_catalog, settings), settings, url, project)


def sessionize_step(settings: Settings) -> SessionizeInfo:
    """Rebuild the turns and sessions that the new spans touch."""
    with catalog.write_lock(settings), worker_pool(settings) as pool, catalog.open_catalog(settings) as con:
        return sessionize(con, settings, pool)


def compact_step(settings: Settings) -> None:
    """Fold the turns/sessions partitions that reached ``compact_min_files`` parts (tasks/store/compact.py)."""
    run_compact(settings, settings.compact_min_files)


def summarize(settings: Settings, extracts: list[ExtractInfo], sess: SessionizeInfo, t0: float,
              mode: str) -> IngestInfo:
    """The run's counts, and what the catalog holds after it."""
    with catalog.reader(settings) as con:
        sessions, turns = catalog.scalar(con, "count_sessions"), catalog.scalar(con, "count_turns")
    return IngestInfo(
        extract=extracts, sessionize=sess,
        read=sum(e.read for e in extracts), ingested=sum(e.ingested for e in extracts),
        rejected=sum(e.rejected for e in extracts), duplicates=sum(e.duplicates for e in extracts),
        sessions=sessions, turns=turns, seconds=round(time.perf_counter() - t0, 3), mode=mode)


def run_ingest(settings: Settings, paths: list[str | Path] | None = None, project: str | None = None,
               phoenix_url: str | None = None, runner: Runner = IN_PROCESS) -> IngestInfo:
    """Files (or a Phoenix project) into the lake, then turns and sessions rebuilt.
    A missing or unreadable path fails here, in one line, before anything is written."""
    t0 = time.perf_counter()
    if phoenix_url:
        extracts = runner.step(pull_step, name="phoenix-pull", retries=2, retry_delay_seconds=10)(
            settings, phoenix_url, project)
    else:
        files = [str(p) for p in expand_paths(paths or [])]
        extracts = runner.step(extract_step, name="extract")(settings, files, project)
    sess = runner.step(sessionize_step, name="sessionize", retries=1)(settings)
    if due(settings.lake_dir, settings.compact_min_files):  # a listing of the partitions
        runner.step(compact_step, name="compact")(settings)
    return summarize(settings, extracts, sess, t0, runner.kind)


__all__ = ["compact_step", "extract_step", "pull_step", "run_ingest", "sessionize_step", "summarize"]
