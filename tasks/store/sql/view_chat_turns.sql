-- grain: one row per turn of a replayed conversation, with production's answer beside it
-- parameters: {columns} the view's columns, from models/tables.py; {source} the lake's files or a
--             typed empty relation (DDL cannot bind either)
-- A batch's chats part is its commit (written after its chat_turns part): the turns of a chat
-- are visible once its row in `chats` is, so a crash between the two parts shows nothing of the
-- half batch (chat ids are unique across executions: <execution>-r<row>-k<repetition>).
CREATE OR REPLACE VIEW chat_turns AS
SELECT {columns}
FROM {source}
WHERE chat_id IN (SELECT chat_id FROM chats)
