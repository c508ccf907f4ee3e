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
import random
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

BASE = datetime(2025, 1, 1, 8, tzinfo=timezone.utc)
TOOLS = ["lookup_order", "get_shipping_status", "search_knowledge_base", "issue_refund", "transfer_to_human"]
MODELS = ["gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06", "claude-3-5-haiku"]
WORDS = ("order delivery package refund invoice account address payment card customer tracking status delayed "
         "arrived damaged missing item return label exchange size colour replacement credit coupon").split()

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


# --------------------------------------------------------------------------- the generator
def _kv(key: str, value) -> dict:
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def _text(r: random.Random, n: int) -> str:
    return " ".join(r.choices(WORDS, k=n))


def _span(tid: str, sid: str, parent: str | None, name: str, start: int, end: int, attrs: list, error: bool) -> dict:
    sp = {"traceId": tid, "spanId": sid, "name": name, "kind": 1, "startTimeUnixNano": str(start),
          "endTimeUnixNano": str(end), "attributes": attrs, "status": {"code": 2, "message": "ToolError"} if error
          else {"code": 1}}
    if parent:
        sp["parentSpanId"] = parent
    return sp


def _turn(r: random.Random, session: str, user: str, at: int) -> list[dict]:
    """One trace: AGENT root, an LLM span, 0-2 TOOL spans."""
    tid, root, llm = f"{r.getrandbits(128):032x}", f"{r.getrandbits(64):016x}", f"{r.getrandbits(64):016x}"
    common = [_kv("session.id", session), _kv("user.id", user)]
    question, answer = _text(r, r.randint(5, 25)), _text(r, r.randint(10, 60))
    t = at + 5_000_000
    spans = []
    llm_end = t + r.randint(200, 2000) * 1_000_000
    spans.append(_span(tid, llm, root, "ChatCompletion", t, llm_end, [
        _kv("openinference.span.kind", "LLM"), _kv("llm.model_name", r.choice(MODELS)), *common,
        _kv("llm.input_messages.0.message.role", "user"), _kv("llm.input_messages.0.message.content", question),
        _kv("llm.output_messages.0.message.role", "assistant"), _kv("llm.output_messages.0.message.content", answer),
        _kv("llm.token_count.prompt", r.randint(200, 3000)), _kv("llm.token_count.completion", r.randint(20, 400))],
        False))
    t = llm_end
    for _ in range(r.choice((0, 1, 1, 2))):
        name, end = r.choice(TOOLS), t + r.randint(20, 900) * 1_000_000
        spans.append(_span(tid, f"{r.getrandbits(64):016x}", root, name, t, end, [
            _kv("openinference.span.kind", "TOOL"), _kv("tool.name", name), _kv("tool.id", f"call_{r.getrandbits(40):010x}"),
            *common, _kv("input.value", orjson.dumps({"order_id": f"A{r.randint(1000, 9999)}"}).decode()),
            _kv("output.value", _text(r, r.randint(5, 30)))], r.random() < 0.03))
        t = end
    spans.insert(0, _span(tid, root, None, "support_agent", at, t + 3_000_000, [
        _kv("openinference.span.kind", "AGENT"), *common, _kv("input.value", question), _kv("output.value", answer)],
        False))
    return spans


def write_day(path: Path, day: int, sessions: int, seed: int) -> list[str]:
    """The day's file: ``sessions`` sessions (5% of them yesterday's going on); returns its session ids."""
    r = random.Random(seed * 100_003 + day)
    start = int((BASE + timedelta(days=day)).timestamp() * 1e9)
    yesterday = random.Random(seed * 100_003 + day - 1)
    previous = [f"sess_{day - 1:03d}_{i:05d}" for i in range(sessions)] if day else []
    ids = [f"sess_{day:03d}_{i:05d}" for i in range(sessions)]
    go_on = yesterday.sample(previous, len(previous) // 20) if previous else []
    lines = []
    for k, sid in enumerate(ids[: sessions - len(go_on)] + go_on):
        at = start + int(k * 36e12 / sessions)  # spread over 10 hours
        user = f"user_{r.randrange(5000):04d}"
        spans = [sp for i in range(r.randint(1, 4)) for sp in _turn(r, sid, user, at + i * 60_000_000_000)]
        for i in range(0, len(spans), 40):
            lines.append(orjson.dumps({"resourceSpans": [{"resource": {"attributes": [
                _kv("service.name", "support-agent")]}, "scopeSpans": [{"scope": {"name": "bench"},
                                                                        "spans": spans[i:i + 40]}]}]}))
    path.write_bytes(b"\n".join(lines) + b"\n")
    return ids


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
        counts = [len(list(d.glob("*.parquet"))) for d in sorted((data / "lake" / t).glob("day=*"))]
        counts += [len(list(d.glob("*.parquet"))) for d in sorted((data / "lake" / t).glob("all"))]
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


def wait_for_cpu() -> None:
    while Path("/tmp/work/cpu-busy").exists():
        time.sleep(10)


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
    wait_for_cpu()
    if args.fresh or not (cache / "done.json").exists():
        shutil.rmtree(cache, ignore_errors=True)
        print(f"ingesting {args.days} days of {args.sessions} sessions into {cache} ...", flush=True)
        stats = ingest_year(cache / "data", args.days, args.sessions, args.seed, cache / "otlp")
        (cache / "done.json").write_text(json.dumps(stats))
    stats = json.loads((cache / "done.json").read_text())
    ingested, compacted, single = cache / "data", args.work / "compact-after", args.work / "compact-single"
    shutil.rmtree(compacted, ignore_errors=True)
    shutil.copytree(ingested, compacted)
    wait_for_cpu()
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
    wait_for_cpu()
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
