-- grain: one row per replayed conversation (a "call execution")
-- parameters: {source} is the lake's read_parquet(...) or a typed empty relation (DDL cannot bind)
CREATE OR REPLACE VIEW chats AS
SELECT chat_id, execution_id, scenario_id, row_index, repetition, origin_id, status, ended_reason,
       divergence_turn, turn_count, input_tokens, output_tokens, avg_latency_ms, error, started_at, ended_at
FROM {source}
