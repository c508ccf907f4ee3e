-- grain: one row per score of an execution
-- parameters: $execution_id
SELECT chat_id, turn_index, evaluator, evaluator_version, value, label, passed, reason, source, error
FROM eval_scores WHERE execution_id = $execution_id
