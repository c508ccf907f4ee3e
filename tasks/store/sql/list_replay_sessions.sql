-- grain: one row per replay session, newest first
-- parameters: $project (NULL for all)
SELECT replay_id, project, replay_type, len(ids) AS n_ids, state, agent_name, scenario_name, created_at, updated_at
FROM replay_sessions WHERE $project IS NULL OR project = $project ORDER BY created_at DESC
