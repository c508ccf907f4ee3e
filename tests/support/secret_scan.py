"""Where a secret ended up in a data dir: the raw bytes of every file, the decoded values of every
Parquet part (zstd hides strings from a byte search) and every row of every table and view of the
catalog (DuckDB compresses strings too)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow.parquet as pq


def leaks(data_dir: Path, *secrets: str) -> list[str]:
    """``file: secret`` or ``table: secret`` for every place a secret is found (empty: nowhere)."""
    secrets = tuple(s for s in secrets if s)
    found = []
    for f in sorted(p for p in Path(data_dir).rglob("*") if p.is_file()):
        raw = f.read_bytes()
        found += [f"{f} (bytes): {s}" for s in secrets if s.encode() in raw]
        if f.suffix == ".parquet":
            text = json.dumps(pq.read_table(f).to_pylist(), default=str)
            found += [f"{f} (values): {s}" for s in secrets if s in text]
    catalog = Path(data_dir) / "replay.duckdb"
    if catalog.exists():
        con = duckdb.connect(str(catalog), read_only=True)
        try:  # the views name the lake relative to the data dir
            con.execute(f"SET file_search_path = '{Path(data_dir).resolve()}'")
            names = [r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()]
            for name in names:
                text = json.dumps(con.execute(f'select * from "{name}"').fetchall(), default=str)
                found += [f"catalog {name}: {s}" for s in secrets if s in text]
        finally:
            con.close()
    return found
