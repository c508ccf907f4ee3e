-- grain: one row per session of a project (all of them, or those the --where predicate keeps)
-- parameters: $project; {where} the user's predicate over the sessions view (checked to be one expression)
SELECT session_id FROM sessions WHERE project = $project AND ({where}) ORDER BY started_at, session_id
