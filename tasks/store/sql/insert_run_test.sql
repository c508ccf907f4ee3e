-- grain: one run test
-- parameters: $run_test_id, $name, $scenario_id, $agent_name, $agent_version, $mode, $tool_mode, $agent_ref,
--             $replay_id, $options, $created_at
INSERT INTO run_tests (run_test_id, name, scenario_id, agent_name, agent_version, mode, tool_mode, agent_ref,
    replay_id, options, created_at)
VALUES ($run_test_id, $name, $scenario_id, $agent_name, $agent_version, $mode, $tool_mode, $agent_ref, $replay_id,
    $options, $created_at)
