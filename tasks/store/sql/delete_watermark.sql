-- grain: one (source, key) watermark, removed
-- parameters: $source, $key
DELETE FROM watermarks WHERE source = $source AND key = $key
