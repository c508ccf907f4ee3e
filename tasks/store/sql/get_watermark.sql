-- grain: one (source, key) watermark
-- parameters: $source, $key
SELECT value FROM watermarks WHERE source = $source AND key = $key
