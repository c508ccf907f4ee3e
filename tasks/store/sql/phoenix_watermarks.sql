-- grain: one Phoenix cursor (its key: the URL and the project), oldest first
-- parameters: none
SELECT key, value, updated_at FROM watermarks WHERE source = 'phoenix' ORDER BY updated_at, key
