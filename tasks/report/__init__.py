"""Report: the HTML page of an execution."""

from tasks.report.render import format_metric, render_report, write_report

__all__ = ["format_metric", "render_report", "write_report"]
