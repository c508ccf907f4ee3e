-- grain: one row per input record that could not be used
-- parameters: {columns} the view's columns, from models/tables.py (DDL cannot bind)
CREATE OR REPLACE VIEW rejects AS
SELECT {columns} FROM rejects_log
