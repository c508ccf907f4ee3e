-- grain: one row per session (its latest sessionized version; tombstones hidden)
-- parameters: {source} is the lake's read_parquet(...) or a typed empty relation (DDL cannot bind)
CREATE OR REPLACE VIEW sessions AS
SELECT session_id, project, user_id, started_at, ended_at, turn_count, input_tokens, output_tokens,
       tool_call_count, error_count, first_user_message, last_assistant_message,
       duration_ms, sessionized_at
FROM (
    SELECT * FROM {source}
    QUALIFY row_number() OVER (PARTITION BY session_id ORDER BY version DESC) = 1
)
WHERE NOT deleted
