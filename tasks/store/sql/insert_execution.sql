-- grain: one execution, running (in the given process: its owner)
-- parameters: $execution_id, $run_test_id, $agent_ref, $started_at, $total_chats, $owner_pid, $owner_host,
--             $owner_start
INSERT INTO executions (execution_id, run_test_id, agent_ref, started_at, ended_at, status, total_chats,
    completed_chats, failed_chats, error, owner_pid, owner_host, owner_start)
VALUES ($execution_id, $run_test_id, $agent_ref, $started_at, NULL, 'running', $total_chats, 0, 0, NULL, $owner_pid,
    $owner_host, $owner_start)
