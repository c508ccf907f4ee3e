-- grain: one row per turn of a replayed conversation, with production's answer beside it
-- parameters: {columns} the view's columns, from models/tables.py; {source} the lake's files or a
--             typed empty relation (DDL cannot bind either)
CREATE OR REPLACE VIEW chat_turns AS
SELECT {columns}
FROM {source}
