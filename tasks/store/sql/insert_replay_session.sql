-- grain: one new replay session, state INIT
-- parameters: $replay_id, $project, $replay_type, $ids, $select_all, $where_sql, $transitions,
--             $agent_name, $scenario_name, $suggestions, $created_at
INSERT INTO replay_sessions (replay_id, project, replay_type, ids, select_all, where_sql, state, state_reason,
    transitions, agent_name, scenario_name, suggestions, created_at, updated_at, run_test_id)
VALUES ($replay_id, $project, $replay_type, $ids, $select_all, $where_sql, 'INIT', NULL, $transitions, $agent_name,
    $scenario_name, $suggestions, $created_at, $created_at, NULL)
