-- grain: one row per chat of an execution
-- parameters: $execution_id
SELECT * FROM chats WHERE execution_id = $execution_id ORDER BY row_index, repetition
