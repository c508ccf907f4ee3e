-- grain: one row: an execution's turns and the turns with at least one tool call
-- parameters: $execution_id
SELECT count(*) AS turns, count(*) FILTER (WHERE len(tool_calls) > 0) AS turns_with_tools
FROM chat_turns WHERE execution_id = $execution_id
