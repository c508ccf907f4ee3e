"""Ingest benchmark: `replay ingest` against the parse floor, on generated OTLP/JSON lines.

Run on demand (pytest ignores tests/bench):

    uv run python tests/bench/bench_ingest.py                   # 500 MB
    uv run python tests/bench/bench_ingest.py --mb 50 --keep     # keep the data (cached) and the lake
    uv run python tests/bench/bench_ingest.py --scales 0.25,0.5,1   # does the time grow linearly?
    uv run python tests/bench/bench_ingest.py --no-ingest        # the parse floor only

For each scale it
1. generates ``mb * scale`` MB with ``gen_otlp.py`` (seeded) into a temp dir, or reuses the
   cached copy ``.cache/bench/<mb>mb-seed<seed>/`` when present (``--keep`` writes it there);
2. measures the PARSE FLOOR in the same run: the time to merely parse every line with
   ``json.loads`` and with ``orjson.loads`` (one Python thread), and with DuckDB
   ``SELECT count(*) FROM read_json(...)`` (all cores, schema detection included); also
   DuckDB unnesting down to the spans (so that every span is materialised), for information.
   floor = the faster of DuckDB read_json count(*) and json.loads;
3. runs ``uv run replay --data-dir <tmp> ingest DIR --json`` (``--ingest-cmd``) as a child process, measuring the
   wall time and the PEAK RSS of the child's process tree (psutil, every 50 ms, summing the RSS
   of the child and all its descendants) and the child's ``ru_maxrss`` (wait4: the largest
   single process of the tree); a failing command is reported with its stderr;
4. checks the catalog counts against what the generator wrote, and prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import duckdb
import orjson
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_otlp import MB, generate  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "bench"


# ----------------------------------------------------------------------------- data
def dataset_name(mb: float, seed: int, files: int) -> str:
    return f"{mb:g}mb-seed{seed}" + ("" if files == 8 else f"-f{files}")


def load_cached(name: str) -> dict[str, Any] | None:
    manifest = CACHE / f"{name}.manifest.json"
    if not manifest.exists():
        return None
    try:
        st = json.loads(manifest.read_text())
        data = CACHE / name
        paths = [data / Path(p).name for p in st["paths"]]
        if [p.stat().st_size for p in paths] != st["file_bytes"]:
            return None
    except (OSError, ValueError, KeyError):
        return None
    st["dir"], st["paths"], st["cached"] = str(data), [str(p) for p in paths], True
    return st


def get_dataset(mb: float, seed: int, files: int, keep: bool, tmp_root: Path) -> dict[str, Any]:
    name = dataset_name(mb, seed, files)
    st = load_cached(name)
    if st is not None:
        print(f"  data: reusing {st['dir']} ({st['bytes'] / MB:.1f} MB)", flush=True)
        return st
    if keep:
        CACHE.mkdir(parents=True, exist_ok=True)
        work = CACHE / f"{name}.tmp-{os.getpid()}"
    else:
        work = tmp_root / name
    print(f"  data: generating {mb:g} MB into {work} ...", flush=True)
    st = generate(work, mb, files, seed)
    print(f"  data: {st['bytes'] / MB:.1f} MB, {st['spans']:,} spans, {st['traces']:,} traces, "
          f"{st['sessions']:,} sessions in {st['seconds']:.1f} s ({st['bytes'] / MB / st['seconds']:.0f} MB/s)",
          flush=True)
    if keep:
        final = CACHE / name
        if final.exists():
            shutil.rmtree(final)
        work.rename(final)
        st["paths"] = [str(final / Path(p).name) for p in st["paths"]]
        (CACHE / f"{name}.manifest.json").write_text(json.dumps(st, indent=1))
        work = final
    st["dir"], st["cached"] = str(work), False
    return st


# ----------------------------------------------------------------------------- parse floor
def warm(paths: list[str]) -> None:
    """Read every file once so that all parsers start from the page cache."""
    for p in paths:
        with open(p, "rb", buffering=0) as f:
            while f.read(1 << 24):
                pass


def time_py(paths: list[str], loads: Callable[[bytes], Any]) -> tuple[float, int]:
    n = 0
    t = time.perf_counter()
    for p in paths:
        with open(p, "rb", buffering=1 << 20) as f:
            for line in f:
                loads(line)
                n += 1
    return time.perf_counter() - t, n


def time_duckdb(data_dir: str, max_line: int) -> dict[str, Any]:
    size = max(16 << 20, 1 << (2 * max_line).bit_length())
    src = (f"read_json('{data_dir}/*.jsonl', format='newline_delimited', "
           f"maximum_object_size={size})")
    out: dict[str, Any] = {"maximum_object_size": size}
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar=false")
        out["threads"] = con.execute("SELECT current_setting('threads')").fetchone()[0]
        t = time.perf_counter()
        out["lines"] = con.execute(f"SELECT count(*) FROM {src}").fetchone()[0]
        out["count_s"] = time.perf_counter() - t
        t = time.perf_counter()
        out["spans"] = con.execute(
            "SELECT sum(len(ss.spans)) FROM (SELECT unnest(rs.scopeSpans) AS ss FROM "
            f"(SELECT unnest(resourceSpans) AS rs FROM {src}))").fetchone()[0]
        out["spans_s"] = time.perf_counter() - t
    except duckdb.Error as exc:
        out["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    finally:
        con.close()
    return out


def parse_floor(st: dict[str, Any]) -> dict[str, Any]:
    paths = st["paths"]
    warm(paths)
    f: dict[str, Any] = {}
    f["json_s"], lines = time_py(paths, json.loads)
    print(f"  floor: json.loads   {f['json_s']:7.2f} s ({lines:,} lines)", flush=True)
    f["orjson_s"], _ = time_py(paths, orjson.loads)
    print(f"  floor: orjson.loads {f['orjson_s']:7.2f} s", flush=True)
    f["duckdb"] = time_duckdb(st["dir"], st.get("max_line_bytes") or (64 << 20))
    d = f["duckdb"]
    if "error" in d:
        print(f"  floor: duckdb read_json FAILED: {d['error']}", flush=True)
        f["duckdb_s"] = None
    else:
        f["duckdb_s"] = d["count_s"]
        print(f"  floor: duckdb read_json count(*) {d['count_s']:7.2f} s ({d['lines']:,} lines, "
              f"{d['threads']} threads); unnest to spans {d['spans_s']:.2f} s ({d['spans']:,} spans)", flush=True)
        if d["spans"] != st["spans"]:
            print(f"  WARNING: duckdb counted {d['spans']:,} spans, the generator wrote {st['spans']:,}")
    f["floor_s"] = min(x for x in (f["duckdb_s"], f["json_s"]) if x is not None)
    return f


# ----------------------------------------------------------------------------- ingest
def tree_rss(proc: psutil.Process) -> tuple[int, list[tuple[str, int]]]:
    """Summed RSS of a process and its descendants, and (command, RSS) of each."""
    total, each = 0, []
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0, []
    for p in procs:
        try:
            rss = p.memory_info().rss
            cmd = " ".join(Path(x).name if i == 0 else x for i, x in enumerate(p.cmdline()[:4]))
        except psutil.Error:
            continue
        total += rss
        each.append((cmd[:60], rss))
    return total, each


def run_ingest(template: str, data: str, out_dir: Path, timeout: float) -> dict[str, Any]:
    argv = [x.format(input=data, data_dir=out_dir) for x in shlex.split(template)]
    env = os.environ | {"REPLAY_DATA_DIR": str(out_dir)}
    print(f"  ingest: {shlex.join(argv)}", flush=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    log_out, log_err = out_dir.parent / f"{out_dir.name}.stdout", out_dir.parent / f"{out_dir.name}.stderr"
    res: dict[str, Any] = {"argv": argv}
    with open(log_out, "wb") as fo, open(log_err, "wb") as fe:
        t = time.perf_counter()
        try:
            child = subprocess.Popen(argv, cwd=ROOT, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL, env=env)
        except OSError as exc:
            return res | {"ok": False, "error": f"cannot start {argv[0]}: {exc}"}
        tree = psutil.Process(child.pid)
        peak, peak_procs, status, ru = 0, [], None, None
        while True:
            pid, status, ru = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            rss, procs = tree_rss(tree)
            if rss > peak:
                peak, peak_procs = rss, procs
            if time.perf_counter() - t > timeout:
                for p in [*tree.children(recursive=True), tree]:  # only the tree this bench started
                    try:
                        p.kill()
                    except psutil.Error:
                        pass
                _, status, ru = os.wait4(child.pid, 0)
                res["timed_out"] = True
                break
            time.sleep(0.05)
        wall = time.perf_counter() - t
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4 above
    stdout, stderr = log_out.read_text(errors="replace"), log_err.read_text(errors="replace")
    res.update(seconds=wall, returncode=child.returncode, peak_tree_rss=peak, peak_procs=peak_procs,
               child_maxrss=ru.ru_maxrss * 1024, stdout=stdout, stderr=stderr,
               ok=child.returncode == 0 and not res.get("timed_out"))
    if res["ok"]:
        try:
            res["json"] = json.loads(stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            res["json"] = None
    res["out_bytes"] = sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file())
    return res


def check_catalog(out_dir: Path, st: dict[str, Any]) -> list[str]:
    """Counts in the catalog against the generator's counts."""
    cat = out_dir / "replay.duckdb"
    if not cat.exists():
        return [f"no catalog at {cat}"]
    want = {"spans": st["unique_spans"], "turns": st["traces"],
            "sessions": st["sessions"]}
    lines = []
    try:
        con = duckdb.connect(str(cat), read_only=True)
        con.execute("SET enable_progress_bar=false")
        con.execute(f"SET file_search_path='{out_dir}'")
        for view, n in want.items():
            try:
                got = con.execute(f"SELECT count(*) FROM {view}").fetchone()[0]
                lines.append(f"{view}: {got:,} rows, expected {n:,} {'ok' if got == n else 'MISMATCH'}")
            except duckdb.Error as exc:
                lines.append(f"{view}: {str(exc).splitlines()[0][:200]}")
        con.close()
    except duckdb.Error as exc:
        lines.append(f"cannot open {cat}: {str(exc).splitlines()[0][:200]}")
    return lines


# ----------------------------------------------------------------------------- report
def fmt(x: float | None, nd: int = 2) -> str:
    return "n/a" if x is None else f"{x:,.{nd}f}"


def print_tables(rows: list[dict[str, Any]]) -> None:
    print("\n### Parse floor\n")
    print("| input MB | lines | spans | parser | seconds | MB/s |")
    print("|---:|---:|---:|---|---:|---:|")
    for r in rows:
        st, f = r["data"], r["floor"]
        mb = st["bytes"] / MB
        d = f["duckdb"]
        entries = [("json.loads (1 thread)", f["json_s"]), ("orjson.loads (1 thread)", f["orjson_s"]),
                   (f"duckdb read_json count(*) ({d.get('threads', '?')} threads)", f["duckdb_s"])]
        if "spans_s" in d:
            entries.append((f"duckdb read_json unnest to spans ({d.get('threads', '?')} threads)", d["spans_s"]))
        for parser, s in entries:
            speed = fmt(mb / s, 1) if s else ("failed" if "error" in d else "n/a")
            print(f"| {mb:,.1f} | {st['lines']:,} | {st['spans']:,} | {parser} | {fmt(s)} | {speed} |")
    print("\n### Ingest\n")
    print("| scale | input MB | spans | json.loads s | orjson s | duckdb s | floor s | ingest s "
          "| ingest/floor | peak RSS MB (tree) | max RSS MB (one process) | spans/s | MB/s | s per MB | out MB |")
    print("|---:" * 15 + "|")
    for r in rows:
        st, f, ing = r["data"], r["floor"], r.get("ingest")
        mb = st["bytes"] / MB
        cells = [f"{r['scale']:g}", f"{mb:,.1f}", f"{st['spans']:,}", fmt(f["json_s"]), fmt(f["orjson_s"]),
                 fmt(f["duckdb_s"]), fmt(f["floor_s"])]
        if ing is None:
            cells += ["not run"] + ["n/a"] * 7
        elif not ing["ok"]:
            cells += ["failed"] + ["n/a"] * 7
        else:
            s = ing["seconds"]
            cells += [fmt(s), fmt(s / f["floor_s"], 1), fmt(ing["peak_tree_rss"] / 2**20, 0),
                      fmt(ing["child_maxrss"] / 2**20, 0), f"{st['spans'] / s:,.0f}", fmt(mb / s, 1),
                      fmt(s / mb, 3), fmt(ing["out_bytes"] / MB, 1)]
        print("| " + " | ".join(cells) + " |")
    done = [r for r in rows if r.get("ingest") and r["ingest"]["ok"]]
    if len(done) > 1:
        per_mb = [r["ingest"]["seconds"] / (r["data"]["bytes"] / MB) for r in done]
        print("\nTime per MB from the smallest to the largest scale: "
              + " -> ".join(f"{x:.3f} s" for x in per_mb)
              + f" (x{per_mb[-1] / per_mb[0]:.2f})")
        xs = [r["data"]["bytes"] / MB for r in done]
        ys = [r["ingest"]["seconds"] for r in done]
        marginal = [(ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i]) for i in range(len(xs) - 1) if xs[i + 1] > xs[i]]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        sxx = sum((x - mx) ** 2 for x in xs)
        if sxx > 0:
            slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=False)) / sxx
            print(f"Least-squares fit: ingest s = {my - slope * mx:.2f} s fixed + {slope:.4f} s per MB; "
                  "marginal s per MB between scales: " + ", ".join(f"{m:.4f}" for m in marginal)
                  + " (constant marginal cost = linear growth)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--mb", type=float, default=500, help="input size at scale 1, MB (10^6 bytes)")
    ap.add_argument("--scales", default="1", help="comma-separated fractions of --mb, e.g. 0.25,0.5,1")
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true",
                    help="keep the generated data (in .cache/bench, reused by later runs) and the ingest output")
    ap.add_argument("--no-ingest", action="store_true", help="measure the parse floor only")
    ap.add_argument("--ingest-cmd", default="uv run replay --data-dir {data_dir} ingest {input} --json",
                    help="the ingest command; {input} is the data folder, {data_dir} a fresh data dir "
                         "(also passed as REPLAY_DATA_DIR); default: %(default)s")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds before the ingest is killed")
    ap.add_argument("--results", type=Path, help="also write all figures to this JSON file")
    a = ap.parse_args(argv)
    scales = sorted(float(x) for x in a.scales.split(",") if x.strip())
    tmp_root = Path(tempfile.mkdtemp(prefix="replay-bench-"))
    rows: list[dict[str, Any]] = []
    t_all = time.perf_counter()
    try:
        for scale in scales:
            mb = round(a.mb * scale, 3)
            print(f"\n== scale {scale:g}: {mb:g} MB", flush=True)
            st = get_dataset(mb, a.seed, a.files, a.keep, tmp_root)
            row: dict[str, Any] = {"scale": scale, "data": st, "floor": parse_floor(st)}
            if not a.no_ingest:
                out_dir = (CACHE if a.keep else tmp_root) / f"ingest-{dataset_name(mb, a.seed, a.files)}-{int(time.time())}"
                ing = run_ingest(a.ingest_cmd, st["dir"], out_dir, a.timeout)
                row["ingest"] = ing
                if ing["ok"]:
                    print(f"  ingest: {ing['seconds']:.2f} s, peak RSS {ing['peak_tree_rss'] / 2**20:.0f} MB (tree), "
                          f"{ing['child_maxrss'] / 2**20:.0f} MB (largest process)", flush=True)
                    print("  ingest: at the peak: " + "; ".join(f"{c} {r / 2**20:.0f} MB" for c, r in ing["peak_procs"]))
                    print(f"  ingest: stdout {ing['stdout'].strip()[:600]}")
                    for line in check_catalog(out_dir, st):
                        print(f"  check: {line}")
                else:
                    why = "timed out" if ing.get("timed_out") else f"exit code {ing.get('returncode')}"
                    print(f"  ingest FAILED ({why}) after {ing.get('seconds', 0):.1f} s; stderr:", flush=True)
                    print("    " + (ing.get("stderr") or ing.get("error") or "").strip()[-3000:].replace("\n", "\n    "))
                if a.keep:
                    print(f"  ingest output kept in {out_dir}")
            rows.append(row)
        print_tables(rows)
        print(f"\n(ru_maxrss of all children of this bench: "
              f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MB; "
              f"{os.cpu_count()} CPUs; DuckDB {duckdb.__version__}; Python {sys.version.split()[0]}; "
              f"bench took {time.perf_counter() - t_all:.0f} s)")
        if a.results:
            for r in rows:
                if r.get("ingest"):
                    r["ingest"]["stdout"] = r["ingest"]["stdout"][-4000:]
                    r["ingest"]["stderr"] = r["ingest"]["stderr"][-4000:]
            a.results.write_text(json.dumps(rows, indent=1, default=str))
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    failed = [r for r in rows if r.get("ingest") and not r["ingest"]["ok"]]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
