-- grain: one row per distinct (error, ended_reason) of an execution's failed chats, with how many
-- chats failed with it and the first of them (grouped further into reasons in Python)
-- parameters: $execution_id
SELECT error, ended_reason, count(*) AS n, min(chat_id) AS example_chat_id
FROM chats
WHERE execution_id = $execution_id AND status = 'failed'
GROUP BY error, ended_reason
ORDER BY n DESC, example_chat_id
