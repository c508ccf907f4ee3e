"""Shared fixtures. Prefect is configured here so that no test writes ~/.prefect or
phones home; only tests/flows starts a Prefect server (its own conftest)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_PREFECT_HOME = Path(tempfile.mkdtemp(prefix="replay-prefect-"))
os.environ.setdefault("PREFECT_HOME", str(_PREFECT_HOME))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "60")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.pop("PREFECT_API_URL", None)
for k in [k for k in os.environ if k.startswith("REPLAY_")]:
    os.environ.pop(k)
sys.path.insert(0, str(ROOT / "tests" / "support"))


@pytest.fixture
def settings(tmp_path):
    from models.settings import load_settings

    return load_settings(data_dir=tmp_path / "data")


@pytest.fixture
def ingest(settings):
    """ingest(paths, project=None) -> IngestInfo, in-process, on the test's data dir."""
    from tasks.ingest import run_ingest

    def run(paths, project=None, s=None):
        return run_ingest(s or settings, paths=[str(p) for p in paths], project=project)

    return run


@pytest.fixture
def query(settings):
    """query(sql) -> list of dict rows from the catalog (read-only)."""
    from tasks.store import catalog

    def run(q, s=None):
        with catalog.reader(s or settings) as con:
            cols, rows = catalog.run_read_only(con, q)
        return [dict(zip(cols, r, strict=False)) for r in rows]

    return run
