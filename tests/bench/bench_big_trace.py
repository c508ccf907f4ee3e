"""Memory of one huge trace: peak RSS of `replay ingest` for ONE trace of N spans.

    uv run python tests/bench/bench_big_trace.py                      # 100k, 300k, 1M spans
    uv run python tests/bench/bench_big_trace.py --spans 100000,300000 --workers 2

Run on demand (pytest ignores tests/bench). For each N it writes one OTLP/JSON lines file
holding a single trace (an agent loop: an AGENT root, then LLM calls and the TOOL calls they
request, each with a session id, in export batches of 1,000 spans), runs
``replay --data-dir D ingest FILE --json`` as a child process and reports the wall time, the
largest single process of its tree (``ru_maxrss``, wait4), the peak of the summed RSS of the
tree (psutil, every 50 ms) and the peak of each process (main / workers); then it checks that
the trace is one turn with N spans. Memory should not grow with N: it is what a worker holds
for one batch of sessions, and one trace is one batch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import orjson
import psutil

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_795_000_000_000_000_000
MB = 1024 * 1024


def sv(v: str) -> dict:
    return {"stringValue": v}


def kv(k: str, v) -> dict:
    return {"key": k, "value": v if isinstance(v, dict) else sv(str(v))}


def span(trace: str, sid: int, parent: int | None, name: str, start: int, attrs: list[dict]) -> dict:
    out = {"traceId": trace, "spanId": f"{sid:016x}", "name": name, "kind": 1,
           "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 900_000), "attributes": attrs}
    if parent:
        out["parentSpanId"] = f"{parent:016x}"
    return out


def write_trace(path: Path, n: int, batch: int = 1000, shape: str = "tools") -> int:
    """One trace of ``n`` spans: the root, then (LLM call, TOOL call) pairs (``tools``), or
    LLM calls only, without tool calls (``llm``)."""
    trace = "ab" * 16
    res = {"attributes": [kv("service.name", "big-trace")]}
    root_attrs = [kv("openinference.span.kind", "AGENT"), kv("session.id", "big-session"),
                  kv("input.value", "please reconcile every invoice"), kv("output.value", "done: all reconciled")]
    spans = [span(trace, 1, None, "agent", T0, root_attrs)]
    with open(path, "wb") as f:
        for i in range(2, n + 1):
            start = T0 + i * 1_000_000
            if shape == "llm":
                attrs = [kv("openinference.span.kind", "LLM"), kv("session.id", "big-session"),
                         kv("llm.model_name", "gpt-test"),
                         kv("llm.token_count.prompt", {"intValue": str(100 + i % 50)}),
                         kv("llm.input_messages.0.message.role", "user"),
                         kv("llm.input_messages.0.message.content", f"step {i}: check invoice {i}"),
                         kv("llm.output_messages.0.message.role", "assistant"),
                         kv("llm.output_messages.0.message.content", f"invoice {i} is fine")]
                spans.append(span(trace, i, 1, "llm", start, attrs))
            elif i % 2 == 0:
                attrs = [kv("openinference.span.kind", "LLM"), kv("session.id", "big-session"),
                         kv("llm.model_name", "gpt-test"),
                         kv("llm.token_count.prompt", {"intValue": str(100 + i % 50)}),
                         kv("llm.token_count.completion", {"intValue": "12"}),
                         kv("llm.input_messages.0.message.role", "user"),
                         kv("llm.input_messages.0.message.content", f"step {i}: check invoice {i}"),
                         kv("llm.output_messages.0.message.role", "assistant"),
                         kv("llm.output_messages.0.message.tool_calls.0.tool_call.id", f"call_{i}"),
                         kv("llm.output_messages.0.message.tool_calls.0.tool_call.function.name", "check_invoice"),
                         kv("llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments",
                            f'{{"invoice": {i}}}')]
                spans.append(span(trace, i, 1, "llm", start, attrs))
            else:
                attrs = [kv("openinference.span.kind", "TOOL"), kv("tool.name", "check_invoice"),
                         kv("tool_call.id", f"call_{i - 1}"), kv("input.value", f'{{"invoice": {i - 1}}}'),
                         kv("output.value", f'{{"invoice": {i - 1}, "status": "ok"}}')]
                spans.append(span(trace, i, 1, "check_invoice", start, attrs))
            if len(spans) >= batch:
                f.write(orjson.dumps({"resourceSpans": [{"resource": res, "scopeSpans": [{"spans": spans}]}]}) + b"\n")
                spans = []
        if spans:
            f.write(orjson.dumps({"resourceSpans": [{"resource": res, "scopeSpans": [{"spans": spans}]}]}) + b"\n")
    return path.stat().st_size


def ingest(data_dir: Path, path: Path, workers: int) -> dict:
    argv = [sys.executable, "-m", "replay.cli", "--data-dir", str(data_dir), "--json", "ingest", str(path)]
    env = os.environ | {"REPLAY_WORKERS": str(workers)}
    env.pop("PREFECT_API_URL", None)
    t = time.perf_counter()
    child = psutil.Popen(argv, cwd=ROOT, env=env, stdout=open(data_dir.parent / "out.json", "wb"),
                         stderr=open(data_dir.parent / "err.txt", "wb"))
    peak_tree, peak_by_pid, status, ru = 0, {}, None, None
    while True:
        pid, status, ru = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        total = 0
        try:
            procs = [child, *child.children(recursive=True)]
        except psutil.Error:
            procs = [child]
        for p in procs:
            try:
                rss = p.memory_info().rss
            except psutil.Error:
                continue
            total += rss
            role = "main" if p.pid == child.pid else "worker"
            peak_by_pid[p.pid] = (role, max(rss, peak_by_pid.get(p.pid, (role, 0))[1]))
        peak_tree = max(peak_tree, total)
        time.sleep(0.05)
    wall = time.perf_counter() - t
    rc = os.waitstatus_to_exitcode(status)
    if rc != 0:
        raise SystemExit(f"ingest failed ({rc}): {(data_dir.parent / 'err.txt').read_text()[-2000:]}")
    workers_peak = max((r for role, r in peak_by_pid.values() if role == "worker"), default=0)
    main_peak = max((r for role, r in peak_by_pid.values() if role == "main"), default=0)
    return {"seconds": wall, "maxrss": ru.ru_maxrss * 1024, "tree": peak_tree, "main": main_peak,
            "worker": workers_peak, "info": json.loads((data_dir.parent / "out.json").read_text())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spans", default="100000,300000,1000000")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--shape", choices=["tools", "llm"], default="tools",
                    help="tools: LLM and TOOL spans in pairs (a tool call each); llm: LLM spans only")
    ap.add_argument("--tmp", default=None, help="where to write the input and the data dirs")
    args = ap.parse_args(argv)
    rows = []
    for n in [int(x) for x in args.spans.split(",")]:
        with tempfile.TemporaryDirectory(dir=args.tmp, prefix="big-trace-") as tmp:
            tmp_p = Path(tmp)
            path = tmp_p / "trace.jsonl"
            size = write_trace(path, n, shape=args.shape)
            data_dir = tmp_p / "data"
            r = ingest(data_dir, path, args.workers)
            con = duckdb.connect(str(data_dir / "replay.duckdb"), read_only=True)
            turn = con.execute("select span_count, llm_calls, len(tool_calls) from turns").fetchall()
            con.close()
            llms = n - 1 if args.shape == "llm" else n // 2
            assert turn == [(n, llms, 0 if args.shape == "llm" else n // 2)], turn
            rows.append((n, size, r))
            print(f"{n:>9,} spans  {size / MB:7.0f} MB  {r['seconds']:7.1f} s  largest process "
                  f"{r['maxrss'] / MB:6.0f} MB  main {r['main'] / MB:6.0f} MB  worker {r['worker'] / MB:6.0f} MB  "
                  f"tree {r['tree'] / MB:6.0f} MB", flush=True)
    print("\n| spans | input MB | seconds | largest process MB | main MB | worker MB | tree MB |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n, size, r in rows:
        print(f"| {n:,} | {size / MB:.0f} | {r['seconds']:.1f} | {r['maxrss'] / MB:.0f} | {r['main'] / MB:.0f} | "
              f"{r['worker'] / MB:.0f} | {r['tree'] / MB:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
