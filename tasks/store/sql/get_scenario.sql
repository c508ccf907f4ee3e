-- grain: one scenario
-- parameters: $scenario_id
SELECT * FROM scenarios WHERE scenario_id = $scenario_id
