-- grain: one scenario row
-- parameters: $scenario_id, $row_index, $origin_id, $persona, $situation, $outcome, $conversation_branch,
--             $branch_category, $user_turns, $expected_turns, $custom
INSERT INTO scenario_rows (scenario_id, row_index, origin_id, persona, situation, outcome, conversation_branch,
    branch_category, user_turns, expected_turns, custom)
VALUES ($scenario_id, $row_index, $origin_id, $persona, $situation, $outcome, $conversation_branch, $branch_category,
    $user_turns, $expected_turns, $custom)
