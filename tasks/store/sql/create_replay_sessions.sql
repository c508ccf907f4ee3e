-- grain: one row per replay session (what to replay, and where it is in its life)
-- parameters: none
CREATE TABLE IF NOT EXISTS replay_sessions (
    replay_id     VARCHAR PRIMARY KEY,
    project       VARCHAR NOT NULL,
    replay_type   VARCHAR NOT NULL,          -- 'session' or 'trace'
    ids           VARCHAR[] NOT NULL,        -- the selected session or trace ids
    select_all    BOOLEAN NOT NULL,
    where_sql     VARCHAR,                   -- the --where predicate, when used
    state         VARCHAR NOT NULL,          -- INIT, GENERATING, COMPLETED, FAILED
    state_reason  VARCHAR,                   -- why FAILED
    transitions   JSON NOT NULL,             -- [{"state": ..., "at": ...}, ...]
    agent_name    VARCHAR,
    scenario_name VARCHAR,
    suggestions   JSON,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    run_test_id   VARCHAR
)
