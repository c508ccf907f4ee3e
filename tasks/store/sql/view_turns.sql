-- grain: one row per trace (its latest sessionized version; tombstones hidden)
-- parameters: {columns} the view's columns, from models/tables.py; {source} the lake's files or a
--             typed empty relation (DDL cannot bind either)
CREATE OR REPLACE VIEW turns AS
SELECT {columns}
FROM (
    SELECT * FROM {source}
    QUALIFY row_number() OVER (PARTITION BY trace_id ORDER BY version DESC) = 1
)
WHERE NOT deleted
