-- grain: one execution: running now, in the given process (its owner)
-- parameters: $execution_id, $owner_pid, $owner_host, $owner_start
UPDATE executions SET status = 'running', ended_at = NULL, owner_pid = $owner_pid, owner_host = $owner_host,
    owner_start = $owner_start
WHERE execution_id = $execution_id
