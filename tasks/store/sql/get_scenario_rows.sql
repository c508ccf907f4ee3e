-- grain: one row per scenario row, in order
-- parameters: $scenario_id
SELECT * FROM scenario_rows WHERE scenario_id = $scenario_id ORDER BY row_index
