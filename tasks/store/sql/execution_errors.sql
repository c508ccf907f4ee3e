-- grain: one row per reason an execution's chats failed (the first line of the error), most frequent first
-- parameters: $execution_id, $limit
SELECT coalesce(nullif(trim(split_part(trim(error), chr(10), 1)), ''), 'ended: ' || ended_reason) AS reason,
    count(*) AS count, min(chat_id) AS example_chat_id
FROM chats
WHERE execution_id = $execution_id AND status = 'failed'
GROUP BY ALL
ORDER BY count DESC, reason
LIMIT $limit
