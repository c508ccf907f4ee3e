-- grain: one agent definition version
-- parameters: $agent_name, $version, $project, $description, $system_prompt, $tools, $model, $agent_type, $created_at
INSERT INTO agent_definitions (agent_name, version, project, description, system_prompt, tools, model, agent_type,
    created_at)
VALUES ($agent_name, $version, $project, $description, $system_prompt, $tools, $model, $agent_type, $created_at)
