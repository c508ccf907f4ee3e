-- grain: one row per input record that could not be used
-- parameters: none
CREATE OR REPLACE VIEW rejects AS
SELECT source, location, reason, raw, rejected_at, reject_id FROM rejects_log
