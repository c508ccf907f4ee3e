"""Evaluate: score an execution's chats (``eval_scores``) and aggregate its metrics.

``evaluators`` (the built-in evaluators and custom ``module:Class`` ones), ``metrics`` (the one
aggregation of scores into ``execution_metrics``); ``stage`` composes them once
(``run_evaluation``)."""

from tasks.evaluate.stage import check_evaluators, evaluate, load_execution_data, run_and_score, run_evaluation

__all__ = ["check_evaluators", "evaluate", "load_execution_data", "run_and_score", "run_evaluation"]
