-- grain: one execution: the custom evaluators it was scored with
-- parameters: $execution_id, $evaluator_refs
UPDATE executions SET evaluator_refs = $evaluator_refs WHERE execution_id = $execution_id
