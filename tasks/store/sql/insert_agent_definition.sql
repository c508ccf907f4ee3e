-- grain: one agent definition version
-- parameters: $agent_name, $version, $project, $description, $system_prompt, $tools, $model, $agent_type, $created_at
INSERT INTO agent_definitions VALUES ($agent_name, $version, $project, $description, $system_prompt, $tools,
    $model, $agent_type, $created_at)
