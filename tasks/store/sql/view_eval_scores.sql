-- grain: one row per (chat, turn or NULL, evaluator) score of the latest evaluation of each execution
-- parameters: {columns} the view's columns, from models/tables.py; {source} the lake's files or a
--             typed empty relation (DDL cannot bind either)
CREATE OR REPLACE VIEW eval_scores AS
SELECT {columns}
FROM {source}
