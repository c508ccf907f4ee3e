-- grain: one row per span of a wanted trace, with the small facts sessionize needs, written
--        once into one Parquet folder per batch of whole sessions (the workers each read theirs)
-- parameters: $files (the spans part files); {out} the staging folder (DDL cannot bind a COPY target);
--             relation wanted_batches(trace_id, batch) registered by the caller
COPY (
    SELECT b.batch, s.trace_id, s.span_id, s.parent_span_id, s.name, s.kind, s.start_time, s.end_time,
           s.status, s.status_message, s.session_id, s.user_id, s.project, s.convention,
           s.model, s.input_tokens, s.output_tokens, s.input_text, s.output_text,
           s.user_message, s.assistant_text, s.system_prompt, s.tool_calls, s.tool_results,
           s.tool_name, s.tool_call_id, s.tool_arguments, s.tool_result
    FROM read_parquet($files, union_by_name = true) s
    JOIN wanted_batches b ON s.trace_id = b.trace_id
) TO {out} (FORMAT parquet, PARTITION_BY (batch), COMPRESSION zstd, OVERWRITE_OR_IGNORE)
