-- grain: one value: how many scenarios a project has
-- parameters: $project
SELECT count(*) FROM scenarios WHERE project = $project
