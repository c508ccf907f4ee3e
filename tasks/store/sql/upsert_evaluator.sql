-- grain: one evaluator's description, replaced by its latest
-- parameters: $name, $version, $spec (JSON text), $updated_at
INSERT OR REPLACE INTO evaluators (name, version, spec, updated_at) VALUES ($name, $version, $spec, $updated_at)
