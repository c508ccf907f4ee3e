-- grain: one row per requested trace id that exists, with its project
-- parameters: $ids
SELECT trace_id, project FROM turns WHERE trace_id IN (SELECT unnest($ids))
