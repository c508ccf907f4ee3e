-- grain: one replay session's state transition
-- parameters: $replay_id, $state, $state_reason, $transitions, $updated_at, $run_test_id
UPDATE replay_sessions
SET state = $state, state_reason = $state_reason, transitions = $transitions, updated_at = $updated_at,
    run_test_id = coalesce($run_test_id, run_test_id)
WHERE replay_id = $replay_id
