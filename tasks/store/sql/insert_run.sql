-- grain: one stage run
-- parameters: $run_id, $stage, $finished_at, $info (JSON text)
INSERT INTO stage_runs (run_id, stage, finished_at, info)
VALUES ($run_id, $stage, $finished_at, $info)
