-- grain: one row per trace (its latest sessionized version; tombstones hidden)
-- parameters: {source} is the lake's read_parquet(...) or a typed empty relation (DDL cannot bind)
CREATE OR REPLACE VIEW turns AS
SELECT session_id, turn_index, trace_id, project, started_at, ended_at, latency_ms,
       user_message, assistant_message,
       list_transform(tool_calls, lambda t: struct_pack(id := t.id, name := t.name,
                                                         arguments := t.arguments::JSON,
                                                         result := t.result, status := t.status)) AS tool_calls,
       llm_calls, input_tokens, output_tokens, model, status, error,
       user_id, error_count, span_count, root_span_id, root_name, system_prompt, conventions,
       sessionized_at
FROM (
    SELECT * FROM {source}
    QUALIFY row_number() OVER (PARTITION BY trace_id ORDER BY version DESC) = 1
)
WHERE NOT deleted
