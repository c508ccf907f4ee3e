"""Where everything is kept: the Parquet lake (``lake``), the DuckDB catalog over it
(``catalog``: bookkeeping tables, views, read-only SQL), the SQL statements (``sql/``), and
``check``: every part verified (page checksums, declared schema), broken ones quarantined."""

__all__ = ["catalog", "check", "lake", "pages"]
