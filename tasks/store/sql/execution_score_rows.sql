-- grain: one row per score of an execution, every column (detail as JSON text)
-- parameters: $execution_id
SELECT chat_id, turn_index, evaluator, evaluator_version, value, label, passed, reason, source, error,
    detail::VARCHAR AS detail, evaluated_at
FROM eval_scores WHERE execution_id = $execution_id
