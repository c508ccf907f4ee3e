-- grain: one row per session a wanted trace belonged to at the last sessionize
-- parameters: relation wanted_traces(trace_id) registered by the caller
SELECT DISTINCT session_id FROM turns WHERE trace_id IN (SELECT trace_id FROM wanted_traces)
