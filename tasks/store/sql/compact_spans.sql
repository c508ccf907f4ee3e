-- grain: one row per span of a closed month's parts (spans are stored once each: nothing to fold
--        but the files), in the order of the parts given (day order)
-- parameters: $files the month's parts; {empty} the table's typed empty relation (a column an
--             older part lacks reads NULL) (DDL-like: a relation cannot be bound)
SELECT *
FROM {empty}
UNION ALL BY NAME
SELECT * FROM read_parquet($files, hive_partitioning = false, union_by_name = true)
