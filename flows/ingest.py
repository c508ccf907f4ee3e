"""The ingest flow: extract (OTLP/JSON files or a Phoenix pull) -> sessionize. Wiring only:
``tasks.ingest.run_ingest``, its steps as Prefect task runs."""

from __future__ import annotations

from prefect import flow

from models.settings import load_settings
from tasks.common.runner import PREFECT
from tasks.ingest import run_ingest


@flow(name="ingest", log_prints=True)
def ingest_flow(paths: list[str] | None = None, project: str | None = None,
                phoenix_url: str | None = None, data_dir: str | None = None) -> dict:
    """Ingest trace files or a Phoenix project into the lake, then rebuild turns and sessions."""
    info = run_ingest(load_settings(data_dir=data_dir), paths=paths, project=project, phoenix_url=phoenix_url,
                      runner=PREFECT)
    print(f"ingest: read {info.read}, ingested {info.ingested}, rejected {info.rejected}, "
          f"duplicates {info.duplicates}; {info.sessions} sessions, {info.turns} turns")
    return info.model_dump(mode="json")


if __name__ == "__main__":
    ingest_flow()
