-- grain: the latest execution of a run-test name that started before the given one and was scored
-- parameters: $name, $execution_id
SELECT e.execution_id, r.scenario_id, e.started_at
FROM executions e JOIN run_tests r USING (run_test_id)
WHERE r.name = $name AND e.execution_id <> $execution_id
  AND e.started_at < (SELECT started_at FROM executions WHERE execution_id = $execution_id)
  AND e.execution_id IN (SELECT execution_id FROM execution_metrics)
ORDER BY e.started_at DESC
LIMIT 1
