-- grain: one row per staged span row to drop: a repeat of an earlier staged row (exporter
--        retry, same file twice in one run) or a span the lake already holds
-- parameters: $staged (list of staged part files), $existing (list of lake span files, may be empty)
WITH staged AS (
    SELECT trace_id, span_id, filename, file_row_number
    FROM read_parquet($staged, filename = true, file_row_number = true)
), ranked AS (
    SELECT *, row_number() OVER (PARTITION BY trace_id, span_id ORDER BY filename, file_row_number) AS rn
    FROM staged
), existing AS (
    SELECT DISTINCT trace_id, span_id
    FROM read_parquet($existing)
)
SELECT r.filename, r.file_row_number
FROM ranked r
WHERE r.rn > 1
   OR EXISTS (SELECT 1 FROM existing e WHERE e.trace_id = r.trace_id AND e.span_id = r.span_id)
