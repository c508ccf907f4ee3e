-- grain: one row per trace (turn) of a project (replays create --all; --where is evaluated on
--        project_turns in a sandbox)
-- parameters: $project
SELECT trace_id FROM turns WHERE project = $project ORDER BY started_at, trace_id
