-- grain: one value: the newest ingested_at in the spans lake
-- parameters: none
SELECT max(ingested_at) FROM spans
