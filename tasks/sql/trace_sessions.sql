-- grain: one row per wanted trace: the session it belongs to (the root span's session id,
--        else the most common one among its spans: instrumentations often put it only on
--        LLM spans) and the system prompt of its first model call
-- parameters: relation wanted_traces(trace_id) registered by the caller
SELECT s.trace_id,
       coalesce(max(s.session_id) FILTER (WHERE s.parent_span_id IS NULL), mode(s.session_id)) AS session_id,
       arg_min(s.system_prompt, s.start_time) FILTER (WHERE s.system_prompt IS NOT NULL) AS system_prompt
FROM spans s
SEMI JOIN wanted_traces w ON s.trace_id = w.trace_id
GROUP BY s.trace_id
