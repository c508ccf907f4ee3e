"""Report: the HTML page of an execution (``data`` loads it, ``render`` draws it) and the
nightly summary (``summary``); ``stage`` composes them once (``run_report``)."""

from tasks.report.render import format_metric, render_report, write_report
from tasks.report.stage import run_report
from tasks.report.summary import nightly_markdown

__all__ = ["format_metric", "nightly_markdown", "render_report", "run_report", "write_report"]
