-- grain: one row per wanted trace: the session it belongs to (the root span's session id,
--        else the most common one among its spans: instrumentations often put it only on
--        LLM spans). The same rule as tasks/sessionize.py:trace_session.
-- parameters: relation wanted_traces(trace_id) registered by the caller
SELECT s.trace_id,
       coalesce(max(s.session_id) FILTER (WHERE s.parent_span_id IS NULL), mode(s.session_id)) AS session_id
FROM spans s
SEMI JOIN wanted_traces w ON s.trace_id = w.trace_id
GROUP BY s.trace_id
