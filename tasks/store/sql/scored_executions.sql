-- grain: one row per execution that has metrics (scored)
-- parameters: none
SELECT execution_id, evaluated_at FROM execution_metrics
