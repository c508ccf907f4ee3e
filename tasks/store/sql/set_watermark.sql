-- grain: one (source, key) watermark, replaced
-- parameters: $source, $key, $value, $updated_at
INSERT OR REPLACE INTO watermarks (source, key, value, updated_at)
VALUES ($source, $key, $value, $updated_at)
