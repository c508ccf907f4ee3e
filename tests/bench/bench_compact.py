"""Compaction benchmark: a year of daily incremental ingests, the README's queries before and after.

Run on demand (pytest ignores tests/bench):

    uv run python tests/bench/bench_compact.py                     # 365 days of 1,000 sessions
    uv run python tests/bench/bench_compact.py --days 30 --sessions 200   # a quick look
    uv run python tests/bench/bench_compact.py --repeat 5          # more timings a query

1. Generates one OTLP/JSON lines file a day (a small generator here: OpenInference spans, an
   AGENT root, one LLM span and 0-2 TOOL spans a turn, short texts; ~3% of the tools fail;
   5% of a day's sessions are the previous day's sessions going on, so their turns and their
   session get new versions in the previous day's partition), and ingests the days one after
   another with the ingest stage in this process (``tasks.ingest.run_ingest``, IN_PROCESS: what
   ``replay ingest`` runs, without 365 interpreter start-ups), auto-compaction off
   (``REPLAY_COMPACT_MIN_FILES=0``). The ingested data dir is cached in
   ``.cache/bench/compact-<days>x<sessions>/`` (``--fresh`` makes it again).
2. Copies it three times: AS INGESTED; COMPACTED with ``replay compact`` (a child process: its
   wall time and the peak RSS of its process tree); SINGLE, the floor: one Parquet file a table
   (the folded turns and sessions, every span), written by DuckDB, the catalog and views as they are.
3. Times each README query on each copy through the connection ``replay sql`` uses
   (:func:`tasks.store.catalog.sql_reader`), ``--repeat`` times, interleaved, and prints the
   median (and the best) of each; checks that the three copies answer the same rows.
4. Prints the part files per partition of every lake table, before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "support"))

from otlp_days import write_day  # noqa: E402

# the README's analytics queries ("Questions it answers"); SESSION is filled in with a real id
QUERIES = {
    "tool failure rate (spans)": "select tool_name, count(*) calls, avg((status = 'error')::int) failure_rate "
                                 "from spans where kind = 'TOOL' group by tool_name "
                                 "order by failure_rate desc, tool_name",
    "tokens per day and model (turns)": "select started_at::date as day, model, sum(input_tokens) as input, "
                                        "sum(output_tokens) as output from turns group by all order by all",
    "sessions with an error (sessions)": "select session_id, user_id, turn_count, error_count, first_user_message "
                                         "from sessions where error_count > 0 and started_at > "
                                         "TIMESTAMP '{LAST}' - interval 1 day order by all",
    "one conversation (turns)": "select turn_index, user_message, unnest(tool_calls).name tool, assistant_message "
                                "from turns where session_id = '{SESSION}' order by turn_index, tool",
    "rejects (catalog)": "select reason, count(*) from rejects group by reason order by 2 desc, 1",
}


# --------------------------------------------------------------------------- the lake
def ingest_year(data: Path, days: int, sessions: int, seed: int, tmp: Path) -> dict:
    from models.settings import Settings
    from tasks.ingest import run_ingest

    settings = Settings(data_dir=data, compact_min_files=0)
    tmp.mkdir(parents=True, exist_ok=True)
    t0, times = time.perf_counter(), []
    for day in range(days):
        f = tmp / f"day-{day:03d}.jsonl"
        write_day(f, day, sessions, seed)
        t = time.perf_counter()
        run_ingest(settings, [f])
        times.append(time.perf_counter() - t)
        f.unlink()
        if day % 30 == 29 or day == days - 1:
            print(f"  day {day + 1}: {times[-1]:.2f} s this ingest, {time.perf_counter() - t0:.0f} s so far", flush=True)
    return {"ingest_s": round(sum(times), 1), "first_s": round(times[0], 2), "last_s": round(times[-1], 2)}


def files_per_partition(data: Path) -> dict[str, tuple[int, int, float, int]]:
    """{table: (partitions, files, files a partition on average, most files in one)}."""
    out = {}
    for t in ("spans", "turns", "sessions"):
        counts = [len(list(d.glob("*.parquet"))) for d in sorted((data / "lake" / t).glob("*"))
                  if d.name.startswith(("day=", "month=", "all"))]
        out[t] = (len(counts), sum(counts), sum(counts) / max(1, len(counts)), max(counts, default=0))
    return out


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


def run_compact_cli(data: Path) -> dict:
    """``replay compact --json`` as a child process: wall time, peak RSS of its tree, its output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPLAY_") and k != "PREFECT_API_URL"}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "replay.cli", "--data-dir", str(data), "--json", "compact"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=env)
    ps, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(ps))
        time.sleep(0.05)
    out, err = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"replay compact failed: {err.decode()[-500:]}")
    return {"seconds": time.perf_counter() - t0, "peak_mb": peak / 1e6, "info": json.loads(out)}


def make_single(src: Path, dest: Path) -> None:
    """``dest``: ``src``'s catalog with ONE Parquet file a lake table (spans as they are; turns and
    sessions folded: the latest version of each key, as the views read them), written by DuckDB."""
    import duckdb

    from tasks.store import catalog
    from tasks.store.compact import MERGE_ON_READ, fold_query

    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    shutil.copy2(src / "replay.duckdb", dest / "replay.duckdb")
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    folded = {d.name: d for d in MERGE_ON_READ}
    for table in ("spans", "turns", "sessions"):
        files = [str(p) for p in sorted((src / "lake" / table).glob("*/*.parquet"))]
        out = dest / "lake" / table / "all" / "part.parquet"
        out.parent.mkdir(parents=True)
        query = (fold_query(folded[table]) if table in folded
                 else "SELECT * FROM read_parquet($files, union_by_name = true) ORDER BY start_time")
        con.execute(f"COPY ({query}) TO {catalog.quote(str(out))} (FORMAT parquet, COMPRESSION zstd, "
                    f"ROW_GROUP_SIZE 122880)", {"files": files})
    con.close()


# --------------------------------------------------------------------------- the queries
def time_queries(copies: dict[str, Path], repeat: int, fill: dict[str, str]) -> dict[str, dict[str, list[float]]]:
    """{query: {copy: [seconds...]}}; the rows of each copy must be the same."""
    from models.settings import Settings
    from tasks.store import catalog

    times: dict[str, dict[str, list[float]]] = {q: {c: [] for c in copies} for q in QUERIES}
    answers: dict[str, dict[str, list]] = {q: {} for q in QUERIES}
    for _ in range(repeat):
        for q, text in QUERIES.items():
            for name, data in copies.items():
                query = text.replace("{SESSION}", fill["SESSION"]).replace("{LAST}", fill["LAST"])
                with catalog.sql_reader(Settings(data_dir=data)) as con:
                    t = time.perf_counter()
                    _, rows = catalog.run_read_only(con, query)
                    times[q][name].append(time.perf_counter() - t)
                answers[q].setdefault(name, rows)
    for q, by_copy in answers.items():
        first = next(iter(by_copy.values()))
        for name, rows in by_copy.items():
            if rows != first:
                raise SystemExit(f"{q}: {name} answers differently ({len(rows)} rows against {len(first)})")
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--sessions", type=int, default=1000, help="sessions a day")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=5, help="timings a query and copy (median reported)")
    ap.add_argument("--fresh", action="store_true", help="ingest again even when the cache has the data dir")
    ap.add_argument("--work", type=Path, default=ROOT / ".cache" / "bench", help="where the copies go")
    args = ap.parse_args()
    cache = args.work / f"compact-{args.days}x{args.sessions}-seed{args.seed}"
    if args.fresh or not (cache / "done.json").exists():
        shutil.rmtree(cache, ignore_errors=True)
        print(f"ingesting {args.days} days of {args.sessions} sessions into {cache} ...", flush=True)
        stats = ingest_year(cache / "data", args.days, args.sessions, args.seed, cache / "otlp")
        (cache / "done.json").write_text(json.dumps(stats))
    stats = json.loads((cache / "done.json").read_text())
    ingested, compacted, single = cache / "data", args.work / "compact-after", args.work / "compact-single"
    shutil.rmtree(compacted, ignore_errors=True)
    shutil.copytree(ingested, compacted)
    comp = run_compact_cli(compacted)
    make_single(compacted, single)
    from models.settings import Settings
    from tasks.store import catalog

    with catalog.reader(Settings(data_dir=ingested)) as con:
        n = con.execute("select (select count(*) from spans), (select count(*) from turns), "
                        "(select count(*) from sessions), (select max(started_at) from sessions), "
                        "(select session_id from sessions where turn_count > 2 order by session_id limit 1)").fetchone()
    fill = {"LAST": str(n[3]), "SESSION": n[4]}
    print(f"\n{args.days} daily ingests of {args.sessions} sessions: {n[0]:,} spans, {n[1]:,} turns, {n[2]:,} sessions; "
          f"ingest {stats['ingest_s']:.0f} s in all (first day {stats['first_s']} s, last {stats['last_s']} s)")
    print(f"replay compact: {comp['seconds']:.1f} s wall, peak RSS of its process tree {comp['peak_mb']:,.0f} MB")
    for t in comp["info"]["tables"]:
        print(f"  {t['table']}: {t['compacted']} of {t['partitions']} partitions, files {t['files_before']:,} -> "
              f"{t['files_after']:,}, rows {t['rows_read']:,} -> {t['rows_written']:,}")
    print("\n| table | partitions | files before (a partition: mean, max) | after compact | single |")
    print("| --- | ---: | ---: | ---: | ---: |")
    fb, fa, fs = files_per_partition(ingested), files_per_partition(compacted), files_per_partition(single)
    for t in fb:
        print(f"| {t} | {fb[t][0]} | {fb[t][1]:,} ({fb[t][2]:.1f}, {fb[t][3]}) | {fa[t][1]:,} ({fa[t][2]:.1f}, "
              f"{fa[t][3]}) | {fs[t][1]} |")
    copies = {"ingested": ingested, "compacted": compacted, "single": single}
    times = time_queries(copies, args.repeat, fill)
    print(f"\nquery seconds, median of {args.repeat} (best), through replay sql's connection; ratio = median / single's")
    print("| query | single file a table (floor) | as ingested (old) | ratio | compacted (new) | ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for q, by in times.items():
        med = {c: statistics.median(v) for c, v in by.items()}
        best = {c: min(v) for c, v in by.items()}
        print(f"| {q} | {med['single']:.3f} ({best['single']:.3f}) | {med['ingested']:.3f} ({best['ingested']:.3f}) | "
              f"{med['ingested'] / med['single']:.2f}x | {med['compacted']:.3f} ({best['compacted']:.3f}) | "
              f"{med['compacted'] / med['single']:.2f}x |")
    total = {c: sum(statistics.median(by[c]) for by in times.values()) for c in copies}
    print(f"| all five | {total['single']:.3f} | {total['ingested']:.3f} | {total['ingested'] / total['single']:.2f}x | "
          f"{total['compacted']:.3f} | {total['compacted'] / total['single']:.2f}x |")


if __name__ == "__main__":
    main()
