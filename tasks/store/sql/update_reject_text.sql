-- grain: one reject's location and reason, rewritten (credentials masked)
-- parameters: $reject_id, $location, $reason
UPDATE rejects_log SET location = $location, reason = $reason WHERE reject_id = $reject_id
