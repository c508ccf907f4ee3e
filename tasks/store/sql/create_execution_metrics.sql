-- grain: one row per evaluated execution; one avg_<evaluator> column per evaluator (added as met)
-- parameters: none
CREATE TABLE IF NOT EXISTS execution_metrics (
    execution_id        VARCHAR PRIMARY KEY,
    total_chats         INTEGER,
    completed_chats     INTEGER,
    completion_pct      DOUBLE,
    avg_output_tokens   DOUBLE,
    avg_chat_latency_ms DOUBLE,
    avg_turn_count      DOUBLE,
    avg_csat            DOUBLE,
    evaluated_at        TIMESTAMP
)
