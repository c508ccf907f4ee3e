-- grain: one row per (chat, turn or NULL, evaluator) score of the latest evaluation of each execution
-- parameters: {source} is the lake's read_parquet(...) or a typed empty relation (DDL cannot bind)
CREATE OR REPLACE VIEW eval_scores AS
SELECT chat_id, turn_index, evaluator, evaluator_version, value, label, passed, reason, source, error,
       execution_id, evaluated_at
FROM {source}
