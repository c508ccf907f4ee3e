-- grain: the latest version of an agent definition (by name), or of a project's newest agent
-- parameters: $agent_name (NULL: any), $project (NULL: any)
SELECT agent_name, version, description, system_prompt, tools, model, agent_type, created_at
FROM agent_definitions
WHERE ($agent_name IS NULL OR agent_name = $agent_name) AND ($project IS NULL OR project = $project)
ORDER BY created_at DESC, version DESC
LIMIT 1
