-- grain: one row per (source, key): where the next incremental pull or sessionize starts
-- parameters: none
CREATE TABLE IF NOT EXISTS watermarks (
    source     VARCHAR NOT NULL,
    key        VARCHAR NOT NULL,
    value      VARCHAR,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (source, key)
)
