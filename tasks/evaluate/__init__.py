"""Evaluate: score an execution's chats (``eval_scores``) and aggregate its metrics."""

from tasks.evaluate.stage import (
    evaluate,
    evaluate_task,
    load_execution_data,
    metrics_markdown,
    store_metrics,
    write_scores,
)

__all__ = ["evaluate", "evaluate_task", "load_execution_data", "metrics_markdown", "store_metrics", "write_scores"]
