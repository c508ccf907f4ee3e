-- grain: one row per scenario, newest first
-- parameters: $project (NULL for all)
SELECT scenario_id, scenario_name, project, agent_name, agent_version, source, row_count, writer, created_at,
    derived_from
FROM scenarios WHERE $project IS NULL OR project = $project ORDER BY created_at DESC
