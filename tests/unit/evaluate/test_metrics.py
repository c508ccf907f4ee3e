"""execution_metrics (tasks/metrics.py): the execution_metrics row from chats and scores,
with known answers."""

from __future__ import annotations

import re

import pytest

from models.evals import EvalScore
from tasks.evaluate.evaluators import default_evaluators, run_evaluators
from tasks.evaluate.metrics import (
    BASE_COLUMNS,
    aggregate,
    chat_values,
    column_name,
    eval_errors,
    execution_metrics,
    metric_kind,
    row_values,
)


def chat(cid: str, status: str = "completed", *, out: int = 10, lat: float | None = 100.0,
         turns: int = 2, row: int = 0, rep: int = 0, execution_id: str = "e1") -> dict:
    return {"chat_id": cid, "execution_id": execution_id, "row_index": row, "repetition": rep,
            "status": status, "output_tokens": out, "avg_latency_ms": lat, "turn_count": turns}


def score(cid: str, evaluator: str, value=None, *, passed=None, turn=None, error=None,
          source="heuristic", execution_id="e1") -> EvalScore:
    return EvalScore(execution_id=execution_id, chat_id=cid, turn_index=turn, evaluator=evaluator,
                     evaluator_version="1", value=value, passed=passed, error=error, source=source)


def test_zero_chats_counts_zero_and_averages_none():
    m = execution_metrics("e1", [], [])
    assert m["execution_id"] == "e1"
    assert (m["total_chats"], m["completed_chats"]) == (0, 0)
    for k in ("completion_pct", "avg_output_tokens", "avg_chat_latency_ms", "avg_turn_count",
              "avg_csat"):
        assert m[k] is None, k
    assert list(m) == list(BASE_COLUMNS)


def test_all_failed_chats_complete_zero_percent():
    chats = [chat(f"c{i}", "failed", out=0, lat=None, turns=1) for i in range(4)]
    m = execution_metrics("e1", chats, [])
    assert (m["total_chats"], m["completed_chats"], m["completion_pct"]) == (4, 0, 0.0)
    assert m["avg_chat_latency_ms"] is None  # no chat has a latency
    assert m["avg_output_tokens"] == 0.0 and m["avg_turn_count"] == 1.0


def test_chat_columns_known_values():
    chats = [chat("c1", out=10, lat=100.0, turns=2), chat("c2", out=20, lat=300.0, turns=4),
             chat("c3", "failed", out=0, lat=None, turns=1)]
    m = execution_metrics("e1", chats, [])
    assert m["completed_chats"] == 2
    assert m["completion_pct"] == 66.7  # 1 decimal
    assert m["avg_output_tokens"] == 10.0  # failed chats count
    assert m["avg_chat_latency_ms"] == 200.0  # chats without latency are left out
    assert m["avg_turn_count"] == pytest.approx(7 / 3, abs=1e-4)


def test_percent_evaluators_are_scaled_to_0_100():
    scores = [score("c1", "ground_truth_match", 1.0, passed=True, turn=0),
              score("c1", "ground_truth_match", 0.5, passed=False, turn=1),
              score("c1", "ground_truth_match", None, turn=2),  # no production answer: left out
              score("c2", "ground_truth_match", None, turn=0, error="Boom"),  # failure row
              score("c1", "tool_call_match", 1.0, passed=True, turn=0),
              score("c1", "tool_call_match", 2 / 3, passed=False, turn=1),
              score("c1", "task_completion", 1.0, passed=True),
              score("c2", "task_completion", 0.0, passed=False)]
    m = execution_metrics("e1", [chat("c1"), chat("c2")], scores)
    assert m["avg_ground_truth_match"] == 75.0  # mean(1.0, 0.5) x 100, not the pass rate (50)
    assert m["avg_tool_call_match"] == pytest.approx(83.3333)
    assert m["avg_task_completion"] == 50.0
    assert eval_errors(scores) == 1
    assert all(k in BASE_COLUMNS or re.fullmatch(r"avg_[a-z0-9_]+", k) for k in m)


def test_csat_and_metric_evaluators_are_plain_means():
    scores = [score("c1", "csat", 8.0), score("c2", "csat", 5.0), score("c3", "csat", error="x"),
              score("c1", "latency", 120.0, source="metric"),
              score("c2", "latency", 80.0, source="metric"),
              score("c1", "output_tokens", 7.0, source="metric"),
              score("c2", "output_tokens", 9.0, source="metric"),
              score("c1", "input_tokens", 1.0, source="metric"),
              score("c1", "turn_count", 3.0, source="metric")]
    m = execution_metrics("e1", [chat("c1"), chat("c2"), chat("c3")], scores)
    assert m["avg_csat"] == 6.5
    assert m["avg_latency"] == 100.0
    assert m["avg_input_tokens"] == 1.0  # a metric at 1.0 is not scaled
    assert "avg_output_tokens" in m and m["avg_output_tokens"] == 10.0  # the chat column wins
    assert m["avg_turn_count"] == 2.0  # likewise


def test_custom_evaluators():
    scores = [score("c1", "polite", 1.0, passed=True), score("c2", "polite", 0.2, passed=False),
              score("c3", "polite", passed=None),
              score("c1", "relevance", 0.25), score("c2", "relevance", 0.75),
              score("c1", "word-count", 30.0), score("c2", "word-count", 50.0),
              score("c1", "my_metric", 5000.0, source="metric")]
    m = execution_metrics("e1", [chat("c1"), chat("c2")], scores)
    assert m["avg_polite"] == 50.0  # pass/fail: the pass rate, not mean(value)
    assert m["avg_relevance"] == 50.0  # a 0..1 score: x100
    assert m["avg_word_count"] == 40.0  # other numbers: plain mean; the name made SQL-safe
    assert m["avg_my_metric"] == 5000.0
    assert metric_kind("polite", scores[:3]) == "pass_rate"
    assert metric_kind("relevance", scores[3:5]) == "custom"
    assert metric_kind("my_metric", scores[-1:]) == "mean"
    assert metric_kind("task_completion", []) == "percent"
    assert aggregate("polite", [score("c1", "polite", error="boom")]) is None


def test_column_name():
    assert column_name("ground_truth_match") == "avg_ground_truth_match"
    assert column_name("My-Check.v2") == "avg_my_check_v2"


def test_other_executions_are_ignored():
    chats = [chat("c1"), chat("x1", "failed", execution_id="e2")]
    scores = [score("c1", "csat", 9.0), score("x1", "csat", 1.0, execution_id="e2")]
    m = execution_metrics("e1", chats, scores)
    assert (m["total_chats"], m["completion_pct"], m["avg_csat"]) == (1, 100.0, 9.0)


def test_chat_and_row_values_for_compare():
    chats = [chat("c1", row=0, rep=1), chat("c2", row=0, rep=0), chat("c3", row=1, rep=0)]
    scores = [score("c1", "ground_truth_match", 1.0, turn=0), score("c1", "ground_truth_match", 0.5, turn=1),
              score("c2", "ground_truth_match", 0.0, turn=0),
              score("c3", "ground_truth_match", None, turn=0)]
    assert chat_values(scores, "ground_truth_match") == {"c1": 75.0, "c2": 0.0}
    assert row_values(chats, scores, "ground_truth_match") == {0: [0.0, 75.0]}
    pf = [score("c1", "polite", 1.0, passed=True), score("c2", "polite", 0.0, passed=False),
          score("c3", "polite", 0.0, passed=True)]
    assert row_values(chats, pf, "polite") == {0: [0.0, 100.0], 1: [100.0]}


def test_metrics_from_evaluated_chats_end_to_end():
    turns = {"c1": [{"chat_id": "c1", "turn_index": 0, "user_message": "hi", "assistant_message": "Hello!",
                     "tool_calls": [], "latency_ms": 50.0, "input_tokens": 3, "output_tokens": 2,
                     "original_assistant_message": "hello", "original_tool_calls": [],
                     "user_source": "original", "error": None}],
             "c2": []}
    chats = [dict(chat("c1", out=2, lat=50.0, turns=1), ended_reason="script_done"),
             dict(chat("c2", "failed", out=0, lat=None, turns=0), ended_reason="error")]
    scores = run_evaluators(default_evaluators(), chats, turns, {}, None)
    m = execution_metrics("e1", chats, scores)
    assert m["completion_pct"] == 50.0
    assert m["avg_ground_truth_match"] == 100.0
    assert m["avg_tool_call_match"] == 100.0
    assert m["avg_task_completion"] == 50.0
    assert m["avg_csat"] == 6.0  # 7 and 5 (the failed chat ended after an error)
    assert m["avg_latency"] == 50.0  # c2 has no turns: no value
    assert eval_errors(scores) == 0
