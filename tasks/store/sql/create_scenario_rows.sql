-- grain: one row per scenario row
-- parameters: none
CREATE TABLE IF NOT EXISTS scenario_rows (
    scenario_id         VARCHAR NOT NULL,
    row_index           INTEGER NOT NULL,
    origin_id           VARCHAR NOT NULL,
    persona             JSON NOT NULL,
    situation           VARCHAR NOT NULL,
    outcome             VARCHAR NOT NULL,
    conversation_branch VARCHAR NOT NULL,
    branch_category     VARCHAR NOT NULL,
    user_turns          VARCHAR[] NOT NULL,
    expected_turns      JSON NOT NULL,
    custom              JSON,
    PRIMARY KEY (scenario_id, row_index)
)
