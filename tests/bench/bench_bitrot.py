"""Bit rot in a lake part: single-bit flips at seeded positions, and what each reader makes of them.

    uv run python tests/bench/bench_bitrot.py [--flips 200] [--where file|pages] [--seed 11]

Ingests the bundled sample into a temporary data dir with the current code, takes its largest
spans part, and for each flip (one flipped copy at a time) reads the copy with pyarrow (no
verification), pyarrow with ``page_checksum_verification=True``, DuckDB, and ``replay check``'s
part verification. Each read is: an error (caught), the same values (harmless), or different
values without an error (silent). ``--where pages``: positions inside page bodies only (what a
page checksum covers); ``file``: anywhere in the file.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from models.settings import SAMPLES_DIR, load_settings  # noqa: E402
from tasks.ingest import run_ingest  # noqa: E402
from tasks.store import lake, pages  # noqa: E402


def _outcome(read, original) -> str:
    try:
        got = read()
    except Exception:  # noqa: BLE001 - any failure to read is a caught flip
        return "caught"
    return "same" if got == original else "silent"


def _readers(path: Path) -> dict:
    try:
        from tasks.store.check import verify_part
    except ImportError:  # before replay check existed
        verify_part = None

    def check():
        problems = [p for p in verify_part(path, "spans") if p.severity == "error"]
        if problems:
            raise ValueError(problems[0].reason)
        return pq.read_table(path)

    return {"pyarrow": lambda: pq.read_table(path),
            "pyarrow+verify": lambda: pq.read_table(path, page_checksum_verification=True),
            "duckdb": lambda: duckdb.sql(f"select * from read_parquet('{path}', hive_partitioning = false)").to_arrow_table(),
            **({"replay check": check} if verify_part else {})}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--flips", type=int, default=200)
    ap.add_argument("--where", choices=("file", "pages"), default="file")
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=Path(tmp) / "data")
        run_ingest(settings, paths=[str(SAMPLES_DIR / "otlp")])
        part = max(lake.list_files(settings.lake_dir, "spans"), key=lambda p: p.stat().st_size)
        data = part.read_bytes()
        if args.where == "pages":
            spans = [range(p.body, p.end) for p in pages.pages(part)]
            positions = [i for r in spans for i in r]
        else:
            positions = list(range(len(data)))
        has_crc = pages.first_page_has_crc(part, pq.ParquetFile(part).metadata)
        print(f"part {part.name}: {len(data)} bytes, {pq.ParquetFile(part).metadata.num_rows} rows, "
              f"page checksums: {has_crc}; {args.flips} flips ({args.where}, seed {args.seed})")
        rng = random.Random(args.seed)
        copy = Path(tmp) / "flipped.parquet"
        counts: dict[str, Counter] = {}
        arrow = pq.read_table(part)
        originals = {"pyarrow": arrow, "pyarrow+verify": arrow, "replay check": arrow,
                     "duckdb": duckdb.sql(f"select * from read_parquet('{part}', hive_partitioning = false)").to_arrow_table()}
        for _ in range(args.flips):
            pos, bit = rng.choice(positions), rng.randrange(8)
            flipped = bytearray(data)
            flipped[pos] ^= 1 << bit
            copy.write_bytes(bytes(flipped))
            for name, read in _readers(copy).items():
                counts.setdefault(name, Counter())[_outcome(read, originals[name])] += 1
        for name, c in counts.items():
            print(f"  {name:15s} caught {c['caught']:4d}  silent {c['silent']:4d}  same {c['same']:4d}")
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
