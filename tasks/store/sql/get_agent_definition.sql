-- grain: one agent definition version
-- parameters: $agent_name, $version
SELECT * FROM agent_definitions WHERE agent_name = $agent_name AND version = $version
