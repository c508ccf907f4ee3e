-- grain: one row per execution of a run test
-- parameters: none
CREATE TABLE IF NOT EXISTS executions (
    execution_id    VARCHAR PRIMARY KEY,
    run_test_id     VARCHAR NOT NULL,
    agent_ref       VARCHAR NOT NULL,
    started_at      TIMESTAMP NOT NULL,
    ended_at        TIMESTAMP,
    status          VARCHAR NOT NULL,    -- running, completed, failed, interrupted
    total_chats     INTEGER NOT NULL,
    completed_chats INTEGER NOT NULL,
    failed_chats    INTEGER NOT NULL,
    error           VARCHAR
)
