"""Extract: trace sources -> span rows in the lake (deduplicated), bad records -> rejects.

Pure stage functions first (``plan_chunks``, ``parse_chunk``, ``SpanBatch``), then the
stage (``extract_files`` / ``extract_spans``) that takes its dependencies as arguments (its
step, and its Prefect task, are in ``tasks/ingest/stage.py``).

Streaming: a file is read line by line and cut into ~64 MB chunks at line boundaries,
parsed by a small process pool; each worker flushes a part file every ``batch_rows``
spans or ``batch_bytes`` of attributes, so memory is bounded whatever the input size.
Deduplication (exporter retries, the same file twice, a renamed copy) happens once for
the whole run, on the (trace_id, span_id) keys only, before anything becomes visible.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import stat
import time
import uuid
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any, Iterable, Iterator

import orjson
import pyarrow as pa

from models.ingest import ExtractInfo, Reject
from models.spans import RawSpan
from tasks.common.errors import ReplayError
from tasks.common.processes import critical
from tasks.common.text import error_text, json_bytes
from tasks.ingest._pool import pmap, stop_workers, worker_pool
from tasks.ingest.conventions import span_facts
from tasks.ingest.sources.otlp import BadRecord, iter_request_spans
from tasks.store import lake

CHUNK_BYTES = 64 * 1024 * 1024
_FACT_COLUMNS = ("model", "input_tokens", "output_tokens", "input_text", "output_text",
                 "user_message", "assistant_text", "system_prompt", "tool_calls", "tool_results",
                 "tools", "tool_name", "tool_call_id", "tool_arguments", "tool_result")


class SourceError(ReplayError):
    """A source that cannot be read at all (missing path, dead server): one-line reason."""


# --------------------------------------------------------------------------- pure parts
def truncate_raw(raw: Any, limit: int) -> str:
    if isinstance(raw, bytes):
        text = raw.decode("utf-8", errors="replace")
    elif isinstance(raw, str):
        text = raw
    else:
        try:
            text = orjson.dumps(raw).decode()
        except TypeError:
            text = repr(raw)
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more chars]"


def reject_id(source: str, where: str, raw_text: str, reason: str) -> str:
    """Same bad record (same file content position, raw and reason) -> same id, so a re-ingest
    or a renamed copy adds no reject row twice."""
    h = hashlib.blake2b(digest_size=16)
    for part in (source, where, raw_text, reason):
        h.update(part.encode("utf-8", errors="replace"))
        h.update(b"\x00")
    return h.hexdigest()


@cache
def _day(days_since_epoch: int) -> str:
    return (date(1970, 1, 1) + timedelta(days=days_since_epoch)).isoformat()


class SpanBatch:
    """Column buffers for span rows; ``flush`` writes one part per day and empties them."""

    def __init__(self, out_dir: Path, prefix: str, batch_rows: int, batch_bytes: int):
        self.out_dir, self.prefix = out_dir, prefix
        self.batch_rows, self.batch_bytes = batch_rows, batch_bytes
        self.cols: dict[str, list] = {f.name: [] for f in lake.SPANS}
        self.days: list[str] = []
        self.nbytes = 0
        self.parts: list[tuple[str, str, int]] = []  # (path, day, rows)
        self._seq = 0

    def add(self, raw: RawSpan, project: str, source: str, ingested_us: int) -> None:
        """One span's row. The row is computed whole before any column takes it: a span that cannot
        be stored raises ``BadRecord`` (the caller's reject) and leaves the batch as it was."""
        try:
            row, day = self._row(raw, project, source, ingested_us)
        except Exception as exc:  # noqa: BLE001 - a value no rule foresaw: one reject, never an abort
            raise BadRecord(f"unusable span: {error_text(exc, 200)}") from exc
        c = self.cols
        for name, value in row.items():
            c[name].append(value)
        self.days.append(day)
        self.nbytes += len(row["attributes"])
        if len(self.days) >= self.batch_rows or self.nbytes >= self.batch_bytes:
            self.flush()

    @staticmethod
    def _row(raw: RawSpan, project: str, source: str, ingested_us: int) -> tuple[dict[str, Any], str]:
        facts = span_facts(raw)
        notes: list[str] = facts["notes"]
        attrs = json_bytes(raw["attributes"], notes, "attributes")
        row = {
            "trace_id": raw["trace_id"], "span_id": raw["span_id"], "parent_span_id": raw["parent_span_id"],
            "name": raw["name"], "kind": facts["kind"], "otel_kind": raw["otel_kind"],
            "start_time": raw["start_ns"] // 1000, "end_time": raw["end_ns"] // 1000,
            "duration_ms": (raw["end_ns"] - raw["start_ns"]) / 1e6,
            "status": raw["status_code"], "status_message": raw["status_message"],
            "session_id": facts["session_id"], "user_id": facts["user_id"], "project": project,
            "attributes": attrs, "resource": json_bytes(raw["resource"], notes, "resource"),
            "events": json_bytes(raw["events"], notes, "events") if raw["events"] else None,
            "scope_name": raw["scope"].get("name") or None, "convention": facts["convention"],
            "source": source, "location": raw["location"], "ingested_at": ingested_us,
            "notes": "; ".join(notes) if notes else None,
        }
        for name in _FACT_COLUMNS:
            row[name] = facts[name]
        return row, _day(raw["start_ns"] // 86_400_000_000_000)

    def flush(self) -> None:
        n = len(self.days)
        if not n:
            return
        table = pa.Table.from_pydict(self.cols, schema=lake.SPANS)
        days = self.days
        for day in sorted(set(days)):
            part = table if len(set(days)) == 1 else table.filter(pa.array([d == day for d in days]))
            path = self.out_dir / f"day={day}" / f"{self.prefix}-{self._seq:04d}.parquet"
            lake.write_atomic(part, path)
            self.parts.append((str(path), day, part.num_rows))
            self._seq += 1
        self.cols = {k: [] for k in self.cols}
        self.days = []
        self.nbytes = 0


def plan_chunks(path: Path, chunk_bytes: int = CHUNK_BYTES) -> list[tuple[int, int, int]]:
    """Cut a plain file into (start, end, first_line) ranges at line boundaries.
    A gzip file is one chunk (it cannot be entered in the middle): end -1; so is a pipe
    (``replay ingest <(zcat x.gz)``), read as a stream: end -2."""
    if not path.is_file():
        return [(0, STREAM, 1)]
    if path.suffix == ".gz":
        return [(0, GZIP, 1)]
    size = path.stat().st_size
    if size <= chunk_bytes:
        return [(0, size, 1)]
    bounds = [0]
    with open(path, "rb") as f:
        pos = chunk_bytes
        while pos < size:
            f.seek(pos)
            f.readline()
            nxt = f.tell()
            if nxt >= size:
                break
            bounds.append(nxt)
            pos = nxt + chunk_bytes
    bounds.append(size)
    # first line number of each chunk: count newlines (large reads, page cache)
    chunks, line = [], 1
    with open(path, "rb") as f:
        for start, end in zip(bounds, bounds[1:], strict=False):
            chunks.append((start, end, line))
            f.seek(start)
            left = end - start
            while left > 0:
                buf = f.read(min(left, 16 * 1024 * 1024))
                if not buf:
                    break
                line += buf.count(b"\n")
                left -= len(buf)
    return chunks


GZIP, STREAM = -1, -2


def _iter_lines(path: Path, start: int, end: int) -> Iterator[bytes]:
    if end == GZIP:
        with gzip.open(path, "rb") as f:
            yield from f
        return
    if end == STREAM:
        with open(path, "rb") as raw:
            f = io.BufferedReader(raw) if not isinstance(raw, io.BufferedReader) else raw
            if f.peek(2)[:2] == b"\x1f\x8b":
                with gzip.GzipFile(fileobj=f) as g:
                    yield from g
            else:
                yield from f
        return
    with open(path, "rb", buffering=0) as f:
        f.seek(start)
        yield from _lines_of_blocks(f, end - start)


READ_BLOCK = 8 * 1024 * 1024


def _lines_of_blocks(f, left: int) -> Iterator[bytes]:
    """The lines (with their newline) of the next ``left`` bytes of ``f``, read in blocks: LLM
    trace lines are long, and ``readline`` grows its buffer through each of them."""
    pending: list[bytes] = []
    while left > 0:
        block = f.read(min(left, READ_BLOCK))
        if not block:
            break
        left -= len(block)
        pos = 0
        while True:
            nl = block.find(b"\n", pos)
            if nl < 0:
                if pos < len(block):
                    pending.append(block[pos:])
                break
            if pending:
                pending.append(block[pos:nl + 1])
                yield b"".join(pending)
                pending = []
            else:
                yield block[pos:nl + 1]
            pos = nl + 1
    if pending:
        yield b"".join(pending)


@dataclass
class ChunkResult:
    parts: list[tuple[str, str, int]] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    read: int = 0
    spans: int = 0
    bytes: int = 0


def parse_chunk(path: str, start: int, end: int, first_line: int, stage_dir: str, prefix: str,
                project: str | None, source: str, ingested_us: int, batch_rows: int,
                batch_bytes: int, raw_chars: int) -> ChunkResult:
    """Parse one chunk of an OTLP/JSON lines file into staged part files (runs in a worker)."""
    res = ChunkResult()
    batch = SpanBatch(Path(stage_dir), prefix, batch_rows, batch_bytes)
    p = Path(path)
    lineno, line = first_line - 1, b""
    try:
        for lineno, line in enumerate(_iter_lines(p, start, end), start=first_line):
            res.bytes += len(line)
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                request = orjson.loads(line)
                spans = list(iter_request_spans(request, where))
            except (orjson.JSONDecodeError, BadRecord) as exc:
                reason = str(exc).splitlines()[0] if isinstance(exc, BadRecord) else _json_reason(line, exc)
                res.read += 1
                res.rejects.append(_reject(source, where, f"line {lineno}", line, reason, raw_chars))
                continue
            for raw, reason, span in spans:
                res.read += 1
                if raw is None:
                    res.rejects.append(_reject(source, where, f"line {lineno}", span, reason, raw_chars))
                    continue
                proj = project or _s(raw["resource"].get("service.name")) or "default"
                try:
                    batch.add(raw, proj, source, ingested_us)
                except BadRecord as exc:
                    res.rejects.append(_reject(source, where, f"line {lineno}", span, str(exc), raw_chars))
                    continue
                res.spans += 1
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        # a truncated or corrupt .gz: what was read is kept, the rest is one reject row at the
        # first line lost; its raw is the last line read (what tells two such files apart)
        where = f"{path}:{lineno + 1}"
        res.read += 1
        res.rejects.append(_reject(source, where, f"line {lineno + 1}", line[-raw_chars:],
                                   f"file cannot be read further: {exc}", raw_chars))
    batch.flush()
    res.parts = batch.parts
    return res


def _s(v: Any) -> str | None:
    return v if isinstance(v, str) and v else (str(v) if v not in (None, "") else None)


def _json_reason(line: bytes, exc: Exception) -> str:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8 text (binary data?)"
    msg = str(exc).splitlines()[0]
    return f"not valid JSON: {msg}"


def _reject(source: str, where: str, key: str, raw: Any, reason: str, raw_chars: int) -> dict[str, Any]:
    text = truncate_raw(raw, raw_chars)
    return {"source": source, "location": where, "reason": reason, "raw": text, "key": key}


# --------------------------------------------------------------------------- the stage
def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files, pipes and folders (walked) -> what to read, in a stable order. Fails with a
    one-line reason, before anything is written, on a path that cannot be read."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise SourceError(f"no such file or folder: {p}" + (" (a broken link)" if p.is_symlink() else ""))
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and _is_trace_file(f)))
        else:
            out.append(p)
    for f in out:
        mode = f.stat().st_mode
        if stat.S_ISFIFO(mode):
            continue  # a pipe: opening it now would block until its writer is there
        if not stat.S_ISREG(mode):
            raise SourceError(f"cannot read {f}: not a regular file or a pipe")
        try:
            with open(f, "rb"):
                pass
        except OSError as exc:
            raise SourceError(f"cannot read {f}: {exc.strerror or exc}") from None
    return out


def _is_trace_file(f: Path) -> bool:
    name = f.name.lower()
    return not name.startswith(".") and name.endswith((".json", ".jsonl", ".ndjson", ".json.gz",
                                                       ".jsonl.gz", ".ndjson.gz"))


@dataclass
class StagedRun:
    """Parsed, not yet visible: part files under lake/_staging/<pid>@<host>-<run_id>/."""

    run_id: str
    source: str
    stage: Path
    results: list[ChunkResult]
    files: int
    started: float


def stage_files(settings, paths: list[Path], project: str | None = None,
                source: str = "otlp_file", pool: ProcessPoolExecutor | None = None) -> StagedRun:
    """Parse OTLP/JSON files into staged part files (no catalog needed: run before opening it)."""
    t0 = time.perf_counter()
    run_id = uuid.uuid4().hex[:12]
    ingested_us = int(datetime.now(timezone.utc).timestamp() * 1e6)
    stage = lake.staging_dir(settings.work_dir, run_id)
    jobs = []
    for fi, path in enumerate(paths):
        for ci, (start, end, first_line) in enumerate(plan_chunks(path)):
            jobs.append(dict(path=str(path), start=start, end=end, first_line=first_line,
                             stage_dir=str(stage), prefix=f"part-{fi:05d}-{ci:04d}",
                             project=project, source=source, ingested_us=ingested_us,
                             batch_rows=settings.batch_rows, batch_bytes=settings.batch_bytes,
                             raw_chars=settings.reject_raw_chars))
    try:
        # pipes are read here (a worker process may not share the pipe), files in the pool
        streams = [j for j in jobs if j["end"] == STREAM]
        results = [parse_chunk(**j) for j in streams] + pmap(pool, parse_chunk, [j for j in jobs if j["end"] != STREAM])
    except BaseException:
        if pool is not None:
            stop_workers(pool)  # first: a worker still parsing would write into the staging dir again
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return StagedRun(run_id, source, stage, results, len(paths), t0)


def commit_files(con, settings, staged: StagedRun, pool: ProcessPoolExecutor | None = None) -> ExtractInfo:
    """Deduplicate and publish a staged run; record it."""
    try:
        return commit_staged(con, settings, staged.stage, staged.run_id, staged.results, staged.source,
                             staged.started, pool, files=staged.files)
    finally:
        shutil.rmtree(staged.stage, ignore_errors=True)


def extract_files(settings, paths: list[Path], project: str | None = None,
                  source: str = "otlp_file") -> ExtractInfo:
    """The whole extract stage for files: parse (before the catalog opens), then commit."""
    from tasks.store import catalog

    with catalog.write_lock(settings, sweep_parts=True):
        staged = None
        try:
            with worker_pool(settings) as pool:
                staged = stage_files(settings, paths, project, source, pool)
                with catalog.open_catalog(settings) as con:
                    return commit_files(con, settings, staged, pool)
        finally:  # once the pool has stopped its workers (none writes into it any more)
            if staged is not None:
                shutil.rmtree(staged.stage, ignore_errors=True)


def drop_rows(path: str, rows: set[int]) -> int:
    """Rewrite a staged part without the given row numbers; returns the rows left."""
    table = lake.read_part(path, schema=lake.SPANS)
    table = table.filter(pa.array([i not in rows for i in range(table.num_rows)]))
    if table.num_rows:
        lake.write_atomic(table, Path(path))
    else:
        Path(path).unlink()
    return table.num_rows


def commit_staged(con, settings, stage: Path, run_id: str, results: list[ChunkResult],
                  source: str, t0: float, pool: ProcessPoolExecutor | None = None, files: int = 0) -> ExtractInfo:
    """Drop duplicate spans (inside the run and against the lake), then publish parts, store
    rejects and record the run: together (a stop signal waits for the end of that)."""
    from tasks.store import catalog

    parts = [p for r in results for p in r.parts]
    drops = catalog.duplicate_rows(con, settings.lake_dir, [p for p, _, _ in parts])
    left = dict(zip(sorted(drops), pmap(pool, drop_rows, [{"path": p, "rows": drops[p]} for p in sorted(drops)]), strict=False))
    rejects = [Reject(source=r["source"], location=r["location"], reason=r["reason"], raw=r["raw"],
                      reject_id=reject_id(r["source"], r["key"], r["raw"], r["reason"]))
               for res in results for r in res.rejects]
    ingested = sum(left.get(path, rows) for path, _, rows in parts)
    info = ExtractInfo(run_id=run_id, source=source, read=sum(r.read for r in results), ingested=ingested,
                       rejected=len(rejects), duplicates=sum(r.spans for r in results) - ingested,
                       bytes=sum(r.bytes for r in results), files=files)
    with critical():
        for path, day, rows in parts:
            if left.get(path, rows):
                lake.publish(Path(path), settings.lake_dir, "spans", day, f"{run_id}-{Path(path).name}")
        catalog.add_rejects(con, rejects)
        if ingested:
            catalog.refresh_views(con, settings.lake_dir)
        info.seconds = round(time.perf_counter() - t0, 3)
        catalog_record(con, run_id, info)
    return info


def extract_spans(con, settings, spans: Iterable[RawSpan], rejects: Iterable[dict[str, str]],
                  source: str, project: str | None = None) -> ExtractInfo:
    """The same stage for sources that hand over RawSpans (Phoenix): stage, dedup, publish.
    ``rejects``: records the source could not convert ({location, reason, raw})."""
    t0 = time.perf_counter()
    run_id = uuid.uuid4().hex[:12]
    ingested_us = int(datetime.now(timezone.utc).timestamp() * 1e6)
    stage = lake.staging_dir(settings.work_dir, run_id)
    res = ChunkResult()
    batch = SpanBatch(stage, "part-00000-0000", settings.batch_rows, settings.batch_bytes)
    try:
        for r in rejects:
            res.read += 1
            res.rejects.append(_reject(source, r["location"], r["location"], r["raw"], r["reason"],
                                       settings.reject_raw_chars))
        for raw in spans:
            res.read += 1
            proj = project or _s(raw["resource"].get("service.name")) or "default"
            try:
                batch.add(raw, proj, source, ingested_us)
            except BadRecord as exc:
                res.rejects.append(_reject(source, raw["location"], raw["location"], raw, str(exc),
                                           settings.reject_raw_chars))
                continue
            res.spans += 1
        batch.flush()
        res.parts = batch.parts
        return commit_staged(con, settings, stage, run_id, [res], source, t0)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def catalog_record(con, run_id: str, info: ExtractInfo) -> None:
    from tasks.store import catalog

    catalog.record_run(con, "extract", run_id, info.model_dump_json())
