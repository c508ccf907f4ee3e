"""Where everything is kept: the Parquet lake (``lake``), the DuckDB catalog over it
(``catalog``: bookkeeping tables, views, read-only SQL) and the SQL statements (``sql/``)."""

__all__ = ["catalog", "lake"]
