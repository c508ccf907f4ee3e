-- grain: one row per stage run (extract, sessionize, phoenix pull): what it did, as JSON
-- parameters: none
CREATE TABLE IF NOT EXISTS stage_runs (
    run_id     VARCHAR NOT NULL,
    stage      VARCHAR NOT NULL,
    finished_at TIMESTAMP NOT NULL,
    info       JSON
)
