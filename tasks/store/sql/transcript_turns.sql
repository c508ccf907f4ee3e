-- grain: one row per turn of the wanted conversations (sessions by session_id, or traces)
-- parameters: $ids, $by_trace (BOOLEAN: ids are trace ids)
SELECT CASE WHEN $by_trace THEN trace_id ELSE session_id END AS origin_id,
       project, user_id, turn_index, trace_id, user_message, assistant_message,
       to_json(tool_calls)::VARCHAR AS tool_calls, started_at, latency_ms, input_tokens, output_tokens,
       model, status, error, system_prompt
FROM turns
WHERE CASE WHEN $by_trace THEN trace_id ELSE session_id END IN (SELECT unnest($ids))
ORDER BY origin_id, turn_index, started_at
