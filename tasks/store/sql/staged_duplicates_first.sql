-- grain: one row per staged span row to drop when the lake is still empty: repeats only
-- parameters: $staged (list of staged part files)
WITH ranked AS (
    SELECT filename, file_row_number,
           row_number() OVER (PARTITION BY trace_id, span_id ORDER BY filename, file_row_number) AS rn
    FROM read_parquet($staged, filename = true, file_row_number = true)
)
SELECT filename, file_row_number FROM ranked WHERE rn > 1
