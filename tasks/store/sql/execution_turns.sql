-- grain: one row per turn of an execution's chats (tool calls as JSON text); each text cut to its
--        first $max_chars characters (what a judge reads: a 50 MB answer is neither sorted nor
--        judged whole), its full length in <text>_chars
-- parameters: $execution_id, $max_chars
SELECT chat_id, turn_index, left(user_message, $max_chars) AS user_message,
       left(assistant_message, $max_chars) AS assistant_message, to_json(tool_calls)::VARCHAR AS tool_calls,
       latency_ms, input_tokens, output_tokens, left(original_assistant_message, $max_chars) AS original_assistant_message,
       to_json(original_tool_calls)::VARCHAR AS original_tool_calls, user_source, similarity, attempts, error,
       length(user_message) AS user_message_chars, length(assistant_message) AS assistant_message_chars,
       length(original_assistant_message) AS original_assistant_message_chars
FROM chat_turns WHERE execution_id = $execution_id ORDER BY chat_id, turn_index
