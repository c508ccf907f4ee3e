"""`replay sql` benchmark: peak memory and time of large results, in each output format.

Run on demand (pytest ignores tests/bench):

    uv run python tests/bench/bench_sql.py                          # ~40k spans, generated and ingested
    uv run python tests/bench/bench_sql.py --data-dir D             # an existing data dir
    uv run python tests/bench/bench_sql.py --root OTHER_CHECKOUT    # another checkout's code (before/after)
    uv run python tests/bench/bench_sql.py --data-dir D --grow 4 --cases readme   # the README's queries on
                                                                  # D's spans x4 (a copy of D; ids rewritten)

It makes a data dir of about 40k spans (``gen_otlp.py --mb 300``, then ``replay ingest``) unless
``--data-dir`` names one, then runs ``python -m replay.cli sql QUERY --format F`` as a child process
for each case, stdout to a file, measuring the wall time and the PEAK RSS of the child's process
tree (psutil, every 50 ms). A case still running after ``--timeout`` seconds is killed and
reported as such. Prints a markdown table.

Measured on this machine (2 cores shared with other work, so times are rough; 37,481 spans from
``gen_otlp.py --mb 300 --seed 1``, 39 MB of Parquet, 430 MB as csv), before = the code before
issue 11 (fetchall, the whole output built in memory, rich folding every cell of every row),
after = batches of 512 rows written as they come, the table capped at 100 rows with cells cut:

| case | before: wall s | before: peak RSS MB | after: wall s | after: peak RSS MB |
| --- | ---: | ---: | ---: | ---: |
| csv (`select * from spans`) | 48.9 | 4,813 | 17.3 | 477 |
| json | 29.7 | 5,512 | 10.6 | 587 |
| csv-x4 (4 times the rows, 1.7 GB out) | — | — | 63.4 | 472 |
| table | killed at 300 s | 1,810 (growing) | 4.8 (100 rows shown, the rest counted) | 494 |
| table-limit-500 | killed at 300 s | 1,292 (growing) | 3.7 | 230 |
| table-narrow (5 columns, every row before) | 45.3 | 286 | 1.5 (100 rows) | 164 |
| table-all-narrow (5 columns, `--all`: 37,481 rows) | — | — | 25.9 | 169 |

The peak after does not grow with the result (csv-x4); what is left is DuckDB decoding the
Parquet parts (~150 MB over the ~150 MB a process starts with) and one batch of Python rows.
The table with ``--all`` is rich rendering pages of 100 rows: ~0.7 ms a row at 5 columns, ~15 ms
at the 40 columns of ``select *`` (use csv for that).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
SPANS = "select * from spans"
NARROW = "select trace_id, span_id, name, kind, duration_ms from spans"
CASES = [  # (name, query, format)
    ("csv", SPANS, "csv"),
    ("json", SPANS, "json"),
    ("csv-x4", SPANS + ", range(4)", "csv"),  # 4 times the rows: memory must not grow with them
    ("table", SPANS, "table"),
    ("table-limit-500", SPANS + " limit 500", "table"),
    ("table-narrow", NARROW, "table"),
    ("table-all-narrow", NARROW, "table --all"),
    # the README's analytics queries ("Questions it answers"), as a user types them
    ("readme-tools", "select tool_name, count(*) calls, avg((status = 'error')::int) failure_rate from spans "
                     "where kind = 'TOOL' group by tool_name order by failure_rate desc, tool_name", "table"),
    ("readme-tokens", "select started_at::date as day, model, sum(input_tokens) as input, sum(output_tokens) as output "
                      "from turns group by all order by all", "csv"),
    ("readme-errors", "select session_id, user_id, turn_count, error_count, first_user_message from sessions "
                      "where error_count > 0 and started_at > (select max(started_at) from sessions) - interval 1 day "
                      "order by all", "csv"),
    ("readme-conversation", "select turn_index, user_message, unnest(tool_calls).name tool, assistant_message "
                            "from turns where session_id = (select max(session_id) from sessions) "
                            "order by turn_index, tool", "table"),
    ("readme-spans-per-day", "select day, kind, count(*) from spans group by all order by all", "csv"),
]


def tree_rss(p: psutil.Process) -> int:
    try:
        procs = [p, *p.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for q in procs:
        try:
            total += q.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def run_case(python: str, root: Path, data_dir: Path, query: str, fmt: str, timeout: float,
             out: Path) -> dict:
    cmd = [python, "-m", "replay.cli", "--data-dir", str(data_dir), "sql", query, "--format", *fmt.split()]
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPLAY_") and k != "PREFECT_API_URL"}
    t0 = time.perf_counter()
    with open(out, "wb") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.PIPE, cwd=root, env=env)
        ps = psutil.Process(proc.pid)
        peak, killed = 0, False
        while proc.poll() is None:
            peak = max(peak, tree_rss(ps))
            if time.perf_counter() - t0 > timeout:
                proc.kill()
                killed = True
                break
            time.sleep(0.05)
        _, err = proc.communicate()
    seconds = time.perf_counter() - t0
    size = out.stat().st_size
    out.unlink()
    return {"seconds": seconds, "peak_mb": peak / 1e6, "out_mb": size / 1e6, "rc": proc.returncode,
            "killed": killed, "err": err.decode(errors="replace").strip().splitlines()[-1:] if err else []}


def grow(src: Path, copies: int, dest: Path) -> Path:
    """A copy of the data dir ``src`` whose spans are there ``copies`` times: each extra copy is
    one Parquet file (DuckDB) of every span with its trace and span ids' first two hex digits
    rewritten, in a folder of its own (``copy=K``; the views read every ``*/*.parquet``)."""
    import duckdb

    subprocess.run(["cp", "-r", str(src), str(dest)], check=True)
    spans = dest / "lake" / "spans"
    files = [str(f) for f in sorted(spans.glob("*/*.parquet"))]
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    for k in range(1, copies):
        out = spans / f"copy={k}"
        out.mkdir()
        con.execute(f"COPY (SELECT * REPLACE (printf('%02x', {k}) || substr(trace_id, 3) AS trace_id, "
                    f"printf('%02x', {k}) || substr(span_id, 3) AS span_id) "
                    f"FROM read_parquet($files, union_by_name = true)) TO '{out / 'part.parquet'}' "
                    f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 100000)", {"files": files})
    con.close()
    return dest


def make_data_dir(python: str, mb: float, tmp: Path) -> Path:
    otlp, data = tmp / "otlp", tmp / "data"
    subprocess.run([sys.executable, str(ROOT / "tests" / "bench" / "gen_otlp.py"), "--out", str(otlp),
                    "--mb", str(mb), "--files", "4", "--seed", "1"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([python, "-m", "replay.cli", "--data-dir", str(data), "ingest", str(otlp)], check=True,
                   cwd=ROOT, stdout=subprocess.DEVNULL)
    return data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, help="an existing data dir (default: generate ~40k spans)")
    ap.add_argument("--mb", type=float, default=300, help="MB of OTLP/JSON to generate (300 -> ~37k spans)")
    ap.add_argument("--root", type=Path, default=ROOT, help="the checkout whose `replay` runs (default: this one)")
    ap.add_argument("--python", default=None, help="its interpreter (default: ROOT/.venv/bin/python)")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--cases", default=",".join(c[0] for c in CASES),
                    help="comma-separated case names ('readme': the README's queries)")
    ap.add_argument("--grow", type=int, default=1, help="read a copy of the data dir with its spans this many times")
    args = ap.parse_args()
    python = args.python or str(args.root / ".venv" / "bin" / "python")
    with tempfile.TemporaryDirectory(prefix="bench-sql-") as tmp:
        data = args.data_dir or make_data_dir(python, args.mb, Path(tmp))
        if args.grow > 1:
            t = time.perf_counter()
            data = grow(data, args.grow, Path(tmp) / "grown")
            print(f"(spans x{args.grow}: {time.perf_counter() - t:.0f} s to write)")
        n = subprocess.run([python, "-m", "replay.cli", "--data-dir", str(data), "sql",
                            "select (select count(*) from spans) || ' spans, ' || (select count(*) from turns) || "
                            "' turns, ' || (select count(*) from sessions) || ' sessions'", "--format", "csv"],
                           cwd=args.root, check=True, capture_output=True, text=True).stdout.splitlines()[-1]
        parts = {t: len(list((data / "lake" / t).glob("*/*.parquet"))) for t in ("spans", "turns", "sessions")}
        print(f"data dir {data}: {n}; part files {parts}; code: {args.root}\n")
        print("| case | wall s | peak RSS MB | stdout MB | exit |")
        print("| --- | ---: | ---: | ---: | --- |")
        wanted = set(args.cases.split(","))
        if "readme" in wanted:
            wanted |= {c[0] for c in CASES if c[0].startswith("readme-")}
        for name, query, fmt in CASES:
            if name not in wanted:
                continue
            r = run_case(python, args.root, data, query, fmt, args.timeout, Path(tmp) / "out")
            status = f"killed at {args.timeout:.0f} s" if r["killed"] else str(r["rc"])
            if r["rc"] and not r["killed"]:
                status += f" ({' '.join(r['err'])[:80]})"
            print(f"| {name} | {r['seconds']:.1f} | {r['peak_mb']:,.0f} | {r['out_mb']:,.1f} | {status} |", flush=True)


if __name__ == "__main__":
    main()
