-- grain: one row per chat of an execution already persisted (resume skips them)
-- parameters: $files (that execution's chat part files)
SELECT chat_id, status FROM read_parquet($files)
