"""Nightly: the whole loop on one night's production sessions (pull, select, scenario, run,
score, compare with the previous night, report, summary), composed once in ``stage``
(``run_nightly``) for the ``nightly`` Prefect flow and ``replay nightly``."""

from tasks.nightly.stage import run_nightly, run_one

__all__ = ["run_nightly", "run_one"]
