-- grain: one row per turn of an execution's chats (tool calls as JSON text)
-- parameters: $execution_id
SELECT chat_id, turn_index, user_message, assistant_message, to_json(tool_calls)::VARCHAR AS tool_calls,
       latency_ms, input_tokens, output_tokens, original_assistant_message,
       to_json(original_tool_calls)::VARCHAR AS original_tool_calls, user_source, similarity, attempts, error
FROM chat_turns WHERE execution_id = $execution_id ORDER BY chat_id, turn_index
