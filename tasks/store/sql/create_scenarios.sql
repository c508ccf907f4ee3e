-- grain: one row per scenario
-- parameters: none
CREATE TABLE IF NOT EXISTS scenarios (
    scenario_id   VARCHAR PRIMARY KEY,
    scenario_name VARCHAR NOT NULL,
    replay_id     VARCHAR,
    project       VARCHAR,
    agent_name    VARCHAR NOT NULL,
    agent_version INTEGER NOT NULL,
    source        VARCHAR NOT NULL,          -- 'session_replay', 'trace_replay', 'import'
    graph         JSON,
    row_count     INTEGER NOT NULL,
    writer        VARCHAR,                   -- 'offline' or 'llm:<model>'
    redactions    JSON,                      -- {"email": n, ...} when --redact
    failures      JSON,                      -- transcripts no row could be written for, with reasons
    created_at    TIMESTAMP NOT NULL
)
