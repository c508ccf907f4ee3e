-- grain: one replay session: the agent and scenario names generation used
-- parameters: $replay_id, $agent_name, $scenario_name
UPDATE replay_sessions SET agent_name = $agent_name, scenario_name = $scenario_name WHERE replay_id = $replay_id
