-- grain: one execution with its run test
-- parameters: $execution_id
SELECT e.*, r.name, r.scenario_id, r.mode, r.tool_mode, r.options, r.replay_id, r.agent_name, r.agent_version
FROM executions e JOIN run_tests r USING (run_test_id)
WHERE e.execution_id = $execution_id
