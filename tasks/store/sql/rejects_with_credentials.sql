-- grain: one reject whose location or reason may hold a credential (the caller scrubs and decides)
-- parameters: $pattern (a case-insensitive regular expression)
SELECT reject_id, location, reason FROM rejects_log WHERE regexp_matches(location || ' ' || reason, $pattern, 'i')
