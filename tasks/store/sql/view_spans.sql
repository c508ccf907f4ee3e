-- grain: one row per span (the lake holds each (trace_id, span_id) once: extract deduplicates)
-- parameters: {source} is the lake's read_parquet(...) or a typed empty relation (DDL cannot bind)
CREATE OR REPLACE VIEW spans AS
SELECT trace_id, span_id, parent_span_id, name, kind, start_time, end_time, duration_ms,
       status, status_message, session_id, user_id, project,
       attributes::JSON AS attributes, resource::JSON AS resource, source, ingested_at,
       otel_kind, events::JSON AS events, scope_name, convention, location,
       model, input_tokens, output_tokens, input_text, output_text, user_message, assistant_text,
       system_prompt, tool_calls::JSON AS tool_calls, tool_results::JSON AS tool_results,
       tools::JSON AS tools, tool_name, tool_call_id, tool_arguments, tool_result,
       CAST(start_time AS DATE) AS day
FROM {source}
