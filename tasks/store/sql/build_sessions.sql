-- grain: one row per session of a batch of whole sessions: the sessions columns sessionize
--        computes (the writer adds version, sessionized_at, deleted). Rules (a turn's text or id
--        counts when not NULL and not ''):
--        project: the most common among its turns, a tie to the one met first (by turn_index);
--        user_id / first_user_message: the first turn's that has one; last_assistant_message:
--        the last turn's that has one; duration_ms: as a turn's latency_ms (us / 1e6 * 1e3);
--        token sums saturate at 2^63-1 (the column is BIGINT; DuckDB sums into HUGEINT)
-- parameters: relation batch_turns (the batch's rebuilt turns, lake.TURNS) registered by the caller
WITH turns AS (
    SELECT * FROM batch_turns WHERE session_id <> ''
),
projects AS (
    SELECT session_id, project, count(*) AS n, min(turn_index) AS first_turn
    FROM turns
    WHERE project <> ''
    GROUP BY session_id, project
),
top_project AS (
    SELECT session_id, first(project ORDER BY n DESC, first_turn) AS project
    FROM projects
    GROUP BY session_id
)
SELECT t.session_id,
       any_value(p.project) AS project,
       arg_min(t.user_id, t.turn_index) FILTER (WHERE t.user_id <> '') AS user_id,
       min(t.started_at) AS started_at,
       max(t.ended_at) AS ended_at,
       (epoch_us(max(t.ended_at)) - epoch_us(min(t.started_at))) / 1e6 * 1e3 AS duration_ms,
       count(*) AS turn_count,
       least(sum(t.input_tokens), 9223372036854775807)::BIGINT AS input_tokens,
       least(sum(t.output_tokens), 9223372036854775807)::BIGINT AS output_tokens,
       sum(len(t.tool_calls)) AS tool_call_count,
       sum(t.error_count) AS error_count,
       arg_min(t.user_message, t.turn_index) FILTER (WHERE t.user_message <> '') AS first_user_message,
       arg_max(t.assistant_message, t.turn_index) FILTER (WHERE t.assistant_message <> '') AS last_assistant_message
FROM turns t
LEFT JOIN top_project p ON p.session_id = t.session_id
GROUP BY t.session_id
ORDER BY t.session_id
