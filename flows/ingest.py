"""The ingest flow: extract (OTLP/JSON files or Phoenix) -> sessionize. Composition only."""

from __future__ import annotations

import time

from prefect import flow

from flows.local import ingest_summary
from models.settings import load_settings
from tasks.ingest import extract, sessionize
from tasks.ingest.sources import phoenix
from tasks.store import catalog


@flow(name="ingest", log_prints=True)
def ingest_flow(paths: list[str] | None = None, project: str | None = None,
                phoenix_url: str | None = None, data_dir: str | None = None) -> dict:
    """Ingest trace files or a Phoenix project into the lake, then rebuild turns and sessions."""
    settings = load_settings(data_dir=data_dir)
    t0 = time.perf_counter()
    if phoenix_url:
        extracts = phoenix.pull_task()(settings, phoenix_url, project)
    else:
        files = [str(p) for p in extract.expand_paths(paths or [])]
        extracts = [extract.extract_task()(settings, files, project)]
    sess = sessionize.sessionize_task()(settings)
    with catalog.writer(settings) as con:
        info = ingest_summary(con, extracts, sess, t0, "prefect")
    print(f"ingest: read {info.read}, ingested {info.ingested}, rejected {info.rejected}, "
          f"duplicates {info.duplicates}; {info.sessions} sessions, {info.turns} turns")
    return info.model_dump(mode="json")


if __name__ == "__main__":
    ingest_flow()
