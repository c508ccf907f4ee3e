-- grain: one row per rejected input record (reject_id = hash of source, position, raw, reason)
-- parameters: none
CREATE TABLE IF NOT EXISTS rejects_log (
    reject_id   VARCHAR PRIMARY KEY,
    source      VARCHAR NOT NULL,
    location    VARCHAR NOT NULL,
    reason      VARCHAR NOT NULL,
    raw         VARCHAR,
    rejected_at TIMESTAMP NOT NULL
)
