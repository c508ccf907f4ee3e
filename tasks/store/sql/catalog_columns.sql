-- grain: one row per column of a table (not a view) of the catalog's main schema
-- parameters: none
SELECT c.table_name, c.column_name
FROM duckdb_columns() c
SEMI JOIN duckdb_tables() t
    ON t.database_name = c.database_name AND t.schema_name = c.schema_name AND t.table_name = c.table_name
WHERE c.database_name = current_database() AND c.schema_name = 'main'
