-- grain: one row per spans part file that holds a span of a wanted trace (only the trace_id
--        column is read: the facts are then read from these files alone, not from the whole lake)
-- parameters: $files (the spans part files); relation wanted_batches(trace_id, batch) registered by the caller
SELECT DISTINCT s.filename
FROM read_parquet($files, filename = true) s
WHERE s.trace_id IN (SELECT trace_id FROM wanted_batches)
ORDER BY 1
