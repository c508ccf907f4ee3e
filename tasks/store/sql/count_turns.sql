-- grain: one value: turns in the catalog
-- parameters: none
SELECT count(*) FROM turns
