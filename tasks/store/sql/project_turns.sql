-- grain: one row per trace (turn) of a project, every column of the turns view (what a --where
--        predicate is evaluated on, in a sandbox that holds these rows only)
-- parameters: $project
SELECT * FROM turns WHERE project = $project
