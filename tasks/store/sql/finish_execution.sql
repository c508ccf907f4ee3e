-- grain: one execution: its end, status and counts
-- parameters: $execution_id, $ended_at, $status, $completed_chats, $failed_chats, $error
UPDATE executions SET ended_at = $ended_at, status = $status, completed_chats = $completed_chats,
    failed_chats = $failed_chats, error = $error
WHERE execution_id = $execution_id
