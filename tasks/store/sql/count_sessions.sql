-- grain: one value: sessions in the catalog
-- parameters: none
SELECT count(*) FROM sessions
