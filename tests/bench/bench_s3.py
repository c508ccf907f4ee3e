"""Object-storage benchmark: `replay ingest` into an S3 bucket against the same ingest into a local
data dir, and the part I/O of the filesystem libraries that could carry the lake.

Run on demand (pytest ignores tests/bench):

    uv run python tests/bench/bench_s3.py                    # 100 MB of generated traces, 3 rounds
    uv run python tests/bench/bench_s3.py --mb 250 --rounds 2

The S3 server is moto's server mode started here on 127.0.0.1 (an in-memory S3 written in Python:
what it measures is the cost of going through an object-store API on this machine, not a real
bucket's latency or bandwidth). Each round runs the two ingests one after the other (local, then
S3; each into a new data dir / prefix) as child processes and prints their wall times and the
ratio of the pair, then the medians. Then each library writes and reads the same 8 MB Parquet parts
through the same server: s3fs (fsspec, what Replay uses), pyarrow's own S3FileSystem, and obstore
when it is installed (it is not a dependency: `uv pip install obstore` to include it).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests" / "support"))
from bench_ingest import get_dataset  # noqa: E402
from s3_server import s3_server  # noqa: E402


def ingest(data_dir: str, src: str, env: dict[str, str], timeout: float) -> tuple[float, dict]:
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "replay.cli", "--data-dir", data_dir, "--json", "ingest", src],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout)
    seconds = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"ingest into {data_dir} failed: {r.stderr.strip()[-500:]}")
    return seconds, json.loads(r.stdout)


def part_bytes(mb: int) -> bytes:
    """A Parquet part of about ``mb`` MB of text (zstd, as the lake writes them)."""
    n = mb * 4_000
    rows = pa.table({"trace_id": [f"{i:032x}" for i in range(n)],
                     "attributes": [os.urandom(150).hex() for _ in range(n)]})
    buf = io.BytesIO()
    pq.write_table(rows, buf, compression="zstd")
    return buf.getvalue()


def libraries(endpoint: str, env: dict[str, str], bucket: str) -> dict:
    """{library: (write, read)} functions over one key."""
    import s3fs
    from pyarrow import fs as pafs

    out = {}
    s3 = s3fs.S3FileSystem(endpoint_url=endpoint, key=env["AWS_ACCESS_KEY_ID"], secret=env["AWS_SECRET_ACCESS_KEY"],
                           use_listings_cache=False)

    def s3fs_write(key, data):
        with s3.open(f"{bucket}/{key}", "wb") as f:
            f.write(data)

    def s3fs_read(key):
        with s3.open(f"{bucket}/{key}", "rb") as f:
            return pq.read_table(f).num_rows

    out["s3fs (fsspec)"] = (s3fs_write, s3fs_read)
    arrow = pafs.S3FileSystem(endpoint_override=endpoint, scheme="http", access_key=env["AWS_ACCESS_KEY_ID"],
                              secret_key=env["AWS_SECRET_ACCESS_KEY"], region="us-east-1")

    def arrow_write(key, data):
        with arrow.open_output_stream(f"{bucket}/{key}") as f:
            f.write(data)

    def arrow_read(key):
        return pq.read_table(f"{bucket}/{key}", filesystem=arrow).num_rows

    out["pyarrow S3FileSystem"] = (arrow_write, arrow_read)
    try:
        import obstore
        from obstore.store import S3Store
    except ImportError:
        return out
    store = S3Store(bucket, endpoint=endpoint, access_key_id=env["AWS_ACCESS_KEY_ID"],
                    secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region="us-east-1",
                    client_options={"allow_http": True})

    def obstore_write(key, data):
        obstore.put(store, key, data)

    def obstore_read(key):
        return pq.read_table(pa.BufferReader(obstore.get(store, key).bytes().to_bytes())).num_rows

    out["obstore"] = (obstore_write, obstore_read)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=100, help="generated input, MB")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--parts", type=int, default=8, help="8 MB parts each library writes and reads")
    ap.add_argument("--timeout", type=float, default=1800)
    a = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-s3-"))
    st = get_dataset(a.mb, 1, 8, keep=True, tmp_root=tmp)
    with s3_server() as server:
        server.make_bucket("bench")
        base = {k: v for k, v in os.environ.items() if not k.startswith(("REPLAY_", "AWS_"))}
        env = base | server.env | {"REPLAY_COMPACT_MIN_FILES": "0"}
        rows = []
        for r in range(a.rounds):
            local_s, local = ingest(str(tmp / f"local-{r}"), st["dir"], env, a.timeout)
            s3_s, on_s3 = ingest(f"s3://bench/round-{r}", st["dir"],
                                 env | {"REPLAY_CATALOG_DIR": str(tmp / f"catalog-{r}")}, a.timeout)
            assert (local["ingested"], local["turns"]) == (on_s3["ingested"], on_s3["turns"]), (local, on_s3)
            rows.append((local_s, s3_s))
            print(f"round {r + 1}: local {local_s:.2f} s, S3 {s3_s:.2f} s, S3/local {s3_s / local_s:.2f} "
                  f"({local['ingested']:,} spans, {local['turns']:,} turns)", flush=True)
        objects = len(server.keys("bench", "round-0/"))
        mb = st["bytes"] / 1e6
        med_l, med_s = statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows)
        print(f"\n### replay ingest, {mb:.0f} MB ({st['spans']:,} spans), {a.rounds} rounds, medians\n")
        print("| lake | seconds | MB/s | S3 / local (median of the pairs) |\n|---|---:|---:|---:|")
        print(f"| local disk | {med_l:.2f} | {mb / med_l:.1f} | |")
        print(f"| S3 (moto, loopback), {objects} objects | {med_s:.2f} | {mb / med_s:.1f} | "
              f"{statistics.median(s / loc for loc, s in rows):.2f} |")

        data = part_bytes(8)
        print(f"\n### {a.parts} parts of {len(data) / 1e6:.1f} MB written, then read back (Parquet decoded)\n")
        print("| library | write s | write MB/s | read s | read MB/s |\n|---|---:|---:|---:|---:|")
        for name, (write, read) in libraries(server.endpoint, server.env, "bench").items():
            keys = [f"lib/{name.split()[0]}/{i}.parquet" for i in range(a.parts)]
            t = time.perf_counter()
            for k in keys:
                write(k, data)
            w = time.perf_counter() - t
            t = time.perf_counter()
            for k in keys:
                read(k)
            rd = time.perf_counter() - t
            total = len(data) * a.parts / 1e6
            print(f"| {name} | {w:.2f} | {total / w:.0f} | {rd:.2f} | {total / rd:.0f} |", flush=True)
    print(f"\n({os.cpu_count()} CPUs; Python {sys.version.split()[0]}; data in {st['dir']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
