-- grain: one execution's metrics row
-- parameters: $execution_id
SELECT * FROM execution_metrics WHERE execution_id = $execution_id
