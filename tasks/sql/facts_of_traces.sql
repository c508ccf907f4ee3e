-- grain: one row per span of a wanted trace, with the small facts sessionize needs
--        (read from the lake's files directly: runs in worker processes without the catalog)
-- parameters: $files (the spans part files), relation wanted_traces(trace_id) registered by the caller
SELECT s.trace_id, s.span_id, s.parent_span_id, s.name, s.kind, s.start_time, s.end_time,
       s.status, s.status_message, s.session_id, s.user_id, s.project, s.convention,
       s.model, s.input_tokens, s.output_tokens, s.input_text, s.output_text,
       s.user_message, s.assistant_text, s.tool_calls, s.tool_results,
       s.tool_name, s.tool_call_id, s.tool_arguments, s.tool_result
FROM read_parquet($files, union_by_name = true) s
SEMI JOIN wanted_traces w ON s.trace_id = w.trace_id
