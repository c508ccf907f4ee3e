-- grain: one row per evaluator that described itself
-- parameters: none
SELECT name, spec FROM evaluators ORDER BY name
