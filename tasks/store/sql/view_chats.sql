-- grain: one row per replayed conversation (a "call execution")
-- parameters: {columns} the view's columns, from models/tables.py; {source} the lake's files or a
--             typed empty relation (DDL cannot bind either)
CREATE OR REPLACE VIEW chats AS
SELECT {columns}
FROM {source}
