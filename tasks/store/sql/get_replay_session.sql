-- grain: one replay session
-- parameters: $replay_id
SELECT * FROM replay_sessions WHERE replay_id = $replay_id
