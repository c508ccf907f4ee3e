-- grain: one row per turn of a replayed conversation, with production's answer beside it
-- parameters: {source} is the lake's read_parquet(...) or a typed empty relation (DDL cannot bind)
CREATE OR REPLACE VIEW chat_turns AS
SELECT chat_id, turn_index, user_message, assistant_message,
       list_transform(tool_calls, lambda t: struct_pack(id := t.id, name := t.name, arguments := t.arguments::JSON,
                      result := t.result, status := t.status, source := t.source, matched_turn := t.matched_turn)) AS tool_calls,
       latency_ms, input_tokens, output_tokens, original_assistant_message,
       list_transform(original_tool_calls, lambda t: struct_pack(id := t.id, name := t.name,
                      arguments := t.arguments::JSON, result := t.result, status := t.status)) AS original_tool_calls,
       user_source, similarity, attempts, error, execution_id
FROM {source}
