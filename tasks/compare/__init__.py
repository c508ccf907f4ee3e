"""Compare: an execution against production, against a baseline execution of the same
scenario (``executions``, with the statistics of ``stats``), or against the previous
execution of the same run test (``history``, the nightly's)."""

from tasks.compare.executions import between, regression_gate, repeatability, verdict_lines, vs_production
from tasks.compare.history import compare_with_previous

__all__ = ["between", "compare_with_previous", "regression_gate", "repeatability", "verdict_lines", "vs_production"]
