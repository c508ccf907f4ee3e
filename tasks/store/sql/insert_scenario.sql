-- grain: one scenario
-- parameters: $scenario_id, $scenario_name, $replay_id, $project, $agent_name, $agent_version, $source,
--             $graph, $row_count, $writer, $redactions, $failures, $created_at, $derived_from
INSERT INTO scenarios (scenario_id, scenario_name, replay_id, project, agent_name, agent_version, source, graph,
    row_count, writer, redactions, failures, created_at, derived_from)
VALUES ($scenario_id, $scenario_name, $replay_id, $project, $agent_name, $agent_version, $source, $graph, $row_count,
    $writer, $redactions, $failures, $created_at, $derived_from)
