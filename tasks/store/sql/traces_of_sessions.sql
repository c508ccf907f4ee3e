-- grain: one row per trace of a wanted session (as sessionized, or as the spans say now)
-- parameters: relation wanted_sessions(session_id) registered by the caller
SELECT trace_id FROM turns WHERE session_id IN (SELECT session_id FROM wanted_sessions)
UNION
SELECT DISTINCT trace_id FROM spans WHERE session_id IN (SELECT session_id FROM wanted_sessions)
