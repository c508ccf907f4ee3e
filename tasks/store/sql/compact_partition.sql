-- grain: one row per key of one day partition of a merge-on-read table (turns, sessions): the
--        latest version that partition holds. A tombstone stays (it may hide an older version in
--        another partition), so the view reads the same rows before and after.
-- parameters: $files the partition's parts; {empty} the table's typed empty relation (a column
--             an older part lacks reads NULL); {key} its key columns; {order} the part's sort
--             order (DDL-like: names and relations cannot be bound)
SELECT *
FROM (
    SELECT * FROM {empty}
    UNION ALL BY NAME
    SELECT * FROM read_parquet($files, hive_partitioning = false, union_by_name = true)
)
QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY version DESC) = 1
ORDER BY {order}
