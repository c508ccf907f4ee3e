-- grain: one row per execution with its run test and scenario, newest first
-- parameters: $scenario_id (NULL for all), $execution_id (NULL for all)
SELECT e.execution_id, r.scenario_id, s.scenario_name, r.name AS run_test, e.agent_ref, r.mode, e.status,
    e.total_chats, e.completed_chats, e.failed_chats, e.started_at, e.ended_at, e.error, e.owner_pid,
    e.owner_host, e.owner_start, e.evaluator_refs
FROM executions e JOIN run_tests r USING (run_test_id) LEFT JOIN scenarios s USING (scenario_id)
WHERE ($scenario_id IS NULL OR r.scenario_id = $scenario_id)
  AND ($execution_id IS NULL OR e.execution_id = $execution_id)
ORDER BY e.started_at DESC, e.execution_id
