-- grain: one reject row; an already-known reject_id is ignored (re-ingest adds nothing)
-- parameters: $reject_id, $source, $location, $reason, $raw, $rejected_at
INSERT OR IGNORE INTO rejects_log (reject_id, source, location, reason, raw, rejected_at)
VALUES ($reject_id, $source, $location, $reason, $raw, $rejected_at)
