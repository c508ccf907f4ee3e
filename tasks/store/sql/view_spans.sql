-- grain: one row per span (the lake holds each (trace_id, span_id) once: extract deduplicates)
-- parameters: {columns} the view's columns, from models/tables.py; {source} the lake's files or a
--             typed empty relation (DDL cannot bind either)
CREATE OR REPLACE VIEW spans AS
SELECT {columns},
       CAST(start_time AS DATE) AS day
FROM {source}
