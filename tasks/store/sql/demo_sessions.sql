-- grain: one row per session: the demo's summary
-- parameters: none
SELECT session_id, user_id, strftime(started_at, '%Y-%m-%d %H:%M') AS started, turn_count AS turns,
       tool_call_count AS tools, error_count AS errors, input_tokens + output_tokens AS tokens,
       left(first_user_message, 60) AS first_user_message
FROM sessions
ORDER BY started_at
