-- grain: one row per run test (a scenario against an agent, with its options)
-- parameters: none
CREATE TABLE IF NOT EXISTS run_tests (
    run_test_id   VARCHAR PRIMARY KEY,
    name          VARCHAR NOT NULL,
    scenario_id   VARCHAR NOT NULL,
    agent_name    VARCHAR,
    agent_version INTEGER,
    mode          VARCHAR NOT NULL,      -- replay, simulate, hybrid
    tool_mode     VARCHAR NOT NULL,      -- recorded, live
    agent_ref     VARCHAR NOT NULL,      -- module:function or http(s)://...
    replay_id     VARCHAR,
    options       JSON NOT NULL,
    created_at    TIMESTAMP NOT NULL
)
