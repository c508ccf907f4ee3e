-- grain: one row per session of a project, every column of the sessions view (what a --where
--        predicate is evaluated on, in a sandbox that holds these rows only)
-- parameters: $project
SELECT * FROM sessions WHERE project = $project
