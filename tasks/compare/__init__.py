"""Compare: an execution against production, or against a baseline execution."""

from tasks.compare.executions import LOWER_IS_BETTER, MEASUREMENTS, between, per_row_values, vs_production

__all__ = ["LOWER_IS_BETTER", "MEASUREMENTS", "between", "per_row_values", "vs_production"]
