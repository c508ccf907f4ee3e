-- grain: one row per requested session id that exists, with its project
-- parameters: $ids
SELECT session_id, project FROM sessions WHERE session_id IN (SELECT unnest($ids))
