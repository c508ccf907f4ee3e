-- grain: one row per evaluator that scored an execution
-- parameters: $execution_id
SELECT DISTINCT evaluator FROM eval_scores WHERE execution_id = $execution_id ORDER BY 1
