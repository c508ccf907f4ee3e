-- grain: one row: the project with the most sessions (none when the catalog has no session)
-- parameters: none
SELECT project FROM sessions GROUP BY project ORDER BY count(*) DESC, project LIMIT 1
