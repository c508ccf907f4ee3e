-- grain: one row per session of a project (replays create --all; --where is evaluated on
--        project_sessions in a sandbox)
-- parameters: $project
SELECT session_id FROM sessions WHERE project = $project ORDER BY started_at, session_id
