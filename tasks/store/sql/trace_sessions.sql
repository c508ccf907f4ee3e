-- grain: one row per wanted trace: the session it belongs to (the root span's session id,
--        else the most common one among its spans: instrumentations often put it only on
--        LLM spans). The same rule as tasks/sessionize.py:trace_session. An empty or
--        white-space-only id is no session id (extract stores none; a lake written before may)
-- parameters: relation wanted_traces(trace_id) registered by the caller
SELECT s.trace_id,
       coalesce(max(s.sid) FILTER (WHERE s.parent_span_id IS NULL), mode(s.sid)) AS session_id
FROM (
    SELECT trace_id, parent_span_id,
           CASE WHEN regexp_full_match(session_id, '\s*') THEN NULL ELSE session_id END AS sid
    FROM spans
) s
SEMI JOIN wanted_traces w ON s.trace_id = w.trace_id
GROUP BY s.trace_id
