"""The report stage, composed once: an execution (and its baseline) -> one HTML file."""

from __future__ import annotations

from pathlib import Path

from models.settings import Settings
from tasks.common.runner import IN_PROCESS, Runner
from tasks.report import data as report_data
from tasks.report.render import write_report
from tasks.store import catalog


def report_step(settings: Settings, execution_id: str, out: Path, baseline: str | None = None) -> Path:
    """Load what the page shows from the catalog and write it (atomically) to ``out``."""
    with catalog.reader(settings) as con:
        data = report_data.load(con, execution_id, baseline)
    return write_report(data, Path(out))


def run_report(settings: Settings, execution_id: str, out: Path, baseline: str | None = None,
               runner: Runner = IN_PROCESS) -> Path:
    """The HTML report of ``execution_id`` (against ``baseline``, another execution of the same
    scenario, when given); returns the file's path."""
    return runner.step(report_step, name="report")(settings, execution_id, Path(out), baseline)


__all__ = ["report_step", "run_report"]
