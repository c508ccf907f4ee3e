-- grain: one execution, running
-- parameters: $execution_id, $run_test_id, $agent_ref, $started_at, $total_chats
INSERT INTO executions (execution_id, run_test_id, agent_ref, started_at, ended_at, status, total_chats,
    completed_chats, failed_chats, error)
VALUES ($execution_id, $run_test_id, $agent_ref, $started_at, NULL, 'running', $total_chats, 0, 0, NULL)
