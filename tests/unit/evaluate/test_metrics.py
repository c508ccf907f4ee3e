"""The one aggregation (tasks/evaluate/metrics.py): chats and scores -> the metrics of an
execution, with known answers."""

from __future__ import annotations

import pytest

from models.evals import EvalScore, MetricSpec
from tasks.evaluate.evaluators import BUILTINS, default_evaluators, run_evaluators
from tasks.evaluate.metrics import COMPLETION, FAILED, chat_value, execution_metrics, infer_spec, metrics

GT = BUILTINS["ground_truth_match"].spec
TC = BUILTINS["task_completion"].spec
LAT = BUILTINS["latency"].spec
CSAT = BUILTINS["csat"].spec
SPECS = [GT, TC, LAT, CSAT]


def chat(cid: str, status: str = "completed", *, origin: str = "o1", row: int = 0, rep: int = 0,
         execution_id: str = "e1") -> dict:
    return {"chat_id": cid, "execution_id": execution_id, "origin_id": origin, "row_index": row,
            "repetition": rep, "status": status}


def score(cid: str, evaluator: str, value=None, *, passed=None, turn=None, error=None,
          execution_id="e1") -> EvalScore:
    return EvalScore(execution_id=execution_id, chat_id=cid, turn_index=turn, evaluator=evaluator,
                     evaluator_version="1", value=value, passed=passed, error=error)


def test_zero_chats_every_metric_is_none():
    m = execution_metrics("e1", [], [], SPECS)
    assert (m["total_chats"], m["completed_chats"]) == (0, 0)
    for col in ("completion_pct", "failed_pct", "avg_ground_truth_match", "avg_task_completion",
                "avg_chat_latency_ms", "avg_csat"):
        assert m[col] is None, col


def test_a_pass_rate_is_the_share_of_items_passed_per_chat_then_per_unit():
    chats = [chat("c1", origin="o1"), chat("c2", origin="o2")]
    scores = [score("c1", "ground_truth_match", 0.9, passed=True, turn=0),
              score("c1", "ground_truth_match", 0.2, passed=False, turn=1),
              score("c1", "ground_truth_match", None, turn=2),  # nothing to compare: left out
              score("c2", "ground_truth_match", 1.0, passed=True, turn=0)]
    m = metrics(chats, scores, [GT])["ground_truth_match"]
    assert m.units["o1"].value == 50.0 and m.units["o2"].value == 100.0
    assert m.value == 75.0  # each production conversation weighs the same


def test_rows_and_repetitions_of_one_origin_are_one_unit():
    # three chats replay o1 (two rows, one repeated), one replays o2: o1 does not count thrice
    chats = [chat("a", origin="o1", row=0), chat("b", origin="o1", row=5), chat("c", origin="o1", row=5, rep=1),
             chat("d", origin="o2", row=1)]
    scores = [score(c, "task_completion", 1.0, passed=True) for c in ("a", "b", "c")]
    scores.append(score("d", "task_completion", 0.0, passed=False))
    m = metrics(chats, scores, [TC])["task_completion"]
    assert m.units["o1"].rows == (0, 5) and m.units["o1"].values == (100.0, 100.0, 100.0)
    assert m.value == 50.0  # not 75
    assert m.pass_k == 100.0  # o1's three chats all passed (o2 has one chat: not counted)


def test_a_failed_chat_fails_quality_and_is_no_saving_on_cost():
    chats = [chat("ok", origin="o1"), chat("crash", "failed", origin="o2")]
    scores = [score("ok", "task_completion", 1.0, passed=True), score("crash", "task_completion", 1.0, passed=True),
              score("ok", "latency", 200.0), score("crash", "latency", 1.0), score("ok", "csat", 8.0),
              score("crash", "csat", 9.0)]
    ms = metrics(chats, scores, [TC, LAT, CSAT])
    assert ms["task_completion"].value == 50.0  # the crash fails its task whatever its score says
    assert ms["csat"].value == 4.5  # the crash gets the bottom of the scale (1)
    assert ms["latency"].value == 200.0  # the crash's 1 ms is not a saving
    assert ms["latency"].comparable() == ["o1"]
    assert ms["completion"].value == 50.0 and ms["failed"].value == 50.0


def test_completion_is_the_share_of_chats():
    chats = [chat("a", origin="o1"), chat("b", origin="o1", rep=1), chat("c", "failed", origin="o2")]
    row = execution_metrics("e1", chats, [], [])
    assert row["completion_pct"] == round(200 / 3, 4) and row["failed_pct"] == round(100 / 3, 4)
    assert (row["total_chats"], row["completed_chats"]) == (3, 2)


def test_evaluator_failures_and_empty_scores_are_left_out():
    c = chat("c1")
    assert chat_value(GT, c, [score("c1", "ground_truth_match", error="boom")]) is None
    assert chat_value(GT, c, [score("c1", "ground_truth_match", None)]) is None
    assert chat_value(COMPLETION, c, []) == 100.0 and chat_value(FAILED, c, []) == 0.0


def test_columns_come_from_the_specs():
    chats = [chat("c1")]
    scores = [score("c1", "latency", 120.0), score("c1", "output_tokens", 30.0)]
    row = execution_metrics("e1", chats, scores, [LAT, BUILTINS["output_tokens"].spec])
    assert row["avg_chat_latency_ms"] == 120.0 and row["avg_output_tokens"] == 30.0
    assert "avg_latency" not in row  # one metric, one column


def test_custom_specs_are_inferred_or_declared():
    scores = [score("c1", "polite", 1.0, passed=True)]
    assert infer_spec("polite", "chat", scores).aggregation == "pass_rate"
    assert infer_spec("length", "chat", [score("c1", "length", 12.0)]).aggregation == "mean"
    declared = infer_spec("cost", "chat", [], {"unit": "$", "higher_is_better": False, "kind": "cost"})
    assert (declared.unit, declared.higher_is_better, declared.kind) == ("$", False, "cost")


def test_other_executions_are_ignored():
    chats = [chat("c1"), chat("x", execution_id="e2")]
    scores = [score("c1", "task_completion", 1.0, passed=True),
              score("x", "task_completion", 0.0, passed=False, execution_id="e2")]
    assert execution_metrics("e1", chats, scores, [TC])["avg_task_completion"] == 100.0


@pytest.mark.parametrize("spec", [s.spec for s in BUILTINS.values()], ids=lambda s: s.name)
def test_every_builtin_describes_itself(spec: MetricSpec):
    assert spec.label and spec.measures and spec.unit and spec.metric_column.startswith("avg_")
    assert spec.aggregation in ("pass_rate", "mean") and spec.kind in ("quality", "cost")
    assert spec.min_effect > 0  # a change smaller than that is never called one


def test_metrics_from_evaluated_chats_end_to_end():
    chats = [chat("c1", origin="o1"), chat("c2", "failed", origin="o2")]
    chats[0].update(turn_count=1, avg_latency_ms=50.0, input_tokens=3, output_tokens=2, ended_reason="script_done")
    chats[1].update(turn_count=1, avg_latency_ms=10.0, input_tokens=3, output_tokens=0, ended_reason="error")
    turns = {"c1": [{"chat_id": "c1", "turn_index": 0, "user_message": "hi", "assistant_message": "hello",
                     "original_assistant_message": "hello", "tool_calls": [], "original_tool_calls": [],
                     "latency_ms": 50.0, "input_tokens": 3, "output_tokens": 2}],
             "c2": [{"chat_id": "c2", "turn_index": 0, "user_message": "hi", "assistant_message": None,
                     "original_assistant_message": "hello", "tool_calls": [], "original_tool_calls": [],
                     "latency_ms": 10.0, "input_tokens": 3, "output_tokens": 0, "error": "boom"}]}
    evs = default_evaluators()
    scores = run_evaluators(evs, chats, turns, {}, None)
    row = execution_metrics("e1", chats, scores, [e.spec for e in evs])
    assert row["avg_ground_truth_match"] == 50.0  # the failed chat fails it
    assert row["avg_chat_latency_ms"] == 50.0  # only the completed chat has a cost
    assert row["completion_pct"] == 50.0
