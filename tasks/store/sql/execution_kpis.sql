-- grain: one execution: average chat latency, turn count and output tokens of its chats
-- parameters: $execution_id
SELECT avg(avg_latency_ms), avg(turn_count), avg(output_tokens) FROM chats WHERE execution_id = $execution_id
