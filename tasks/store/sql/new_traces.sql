-- grain: one row per (trace, session id carried) among spans ingested after the watermark
-- parameters: $watermark (TIMESTAMP)
SELECT DISTINCT trace_id, session_id FROM spans WHERE ingested_at > $watermark
