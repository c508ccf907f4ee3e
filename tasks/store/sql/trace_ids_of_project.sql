-- grain: one row per trace (turn) of a project (all, or those the --where predicate keeps)
-- parameters: $project; {where} the user's predicate over the turns view (checked to be one expression)
SELECT trace_id FROM turns WHERE project = $project AND ({where}) ORDER BY started_at, trace_id
