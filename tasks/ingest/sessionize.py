"""Sessionize: span facts -> turns (one per trace) -> sessions.

Pure functions first (``build_turn``, ``match_tool_calls``, ``index_turns``; ``build_sessions``:
the statement ``build_sessions.sql`` on a batch's turns, in an in-memory DuckDB), then the stage
``sessionize`` (incremental: only the sessions that new spans touch; its step is in ``stage.py``).

Rules (issue 2):
- one turn per trace; a trace belongs to a session if ANY of its spans carries a session id;
- turns of a session ordered by their root span's start; ``turn_index`` from 0;
- ``user_message``: the root's input when it is the user's text, else the last user message
  of the first model call; ``assistant_message``: the root's output when it is text, else
  the last text a model call answered;
- ``tool_calls``: every tool call in order; results matched to calls by id, then by order
  (per tool name) where ids are missing or repeat.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter, defaultdict, deque
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, Iterable, Iterator

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from models import tables
from models.ingest import Reject, SessionizeInfo
from tasks.common.clock import now
from tasks.common.text import I64_MAX, error_text, json_bytes
from tasks.ingest._pool import pmap
from tasks.ingest.extract import reject_id
from tasks.store import lake, remote

_EPOCH = datetime(1970, 1, 1)
_TEXT_KEYS = ("input", "query", "question", "message", "content", "text", "prompt", "user_input",
              "output", "answer", "response", "result")


def _loads(v: Any) -> Any:
    if isinstance(v, str):
        try:
            return orjson.loads(v)
        except orjson.JSONDecodeError:
            return None
    return v


def plain_text(value: str | None) -> str | None:
    """The text in an input/output value: plain text as is; JSON with one obvious text field."""
    if value is None:
        return None
    s = value.strip()
    if not s or s[0] not in "{[\"":
        return value if s else None
    data = _loads(s)
    if data is None:
        return value
    if isinstance(data, str):
        return data
    if isinstance(data, dict):
        for k in _TEXT_KEYS:
            v = data.get(k)
            if isinstance(v, str) and v:
                return v
        msgs = data.get("messages")
        if isinstance(msgs, list) and msgs and isinstance(msgs[-1], dict):
            c = msgs[-1].get("content")
            if isinstance(c, str):
                return c
    return None


def find_root(spans: list[dict]) -> dict:
    ids = {s["span_id"] for s in spans}
    roots = [s for s in spans if not s["parent_span_id"] or s["parent_span_id"] not in ids]
    return min(roots or spans, key=lambda s: (s["start_time"], s["parent_span_id"] is not None, s["span_id"]))


class _Open:
    """Items not taken yet, each query answered in their order in O(1) amortized (a trace of a
    million spans has half a million tool calls: scanning the list for each would be quadratic).

    ``by_id(x)``: the first open item whose id is ``x``; ``compatible(id, name)``: the first open
    item that has no id or whose id the query lacks (``not (id and item.id)``), and whose name
    agrees (either name missing, or equal)."""

    def __init__(self, items: list[dict], is_open: list[bool]):
        self.taken = [not o for o in is_open]
        self._all: deque[int] = deque()
        self._ids: dict[Any, deque[int]] = defaultdict(deque)
        self._names: dict[Any, deque[int]] = defaultdict(deque)
        self._unnamed: deque[int] = deque()
        self._noid: deque[int] = deque()
        self._noid_names: dict[Any, deque[int]] = defaultdict(deque)
        self._noid_unnamed: deque[int] = deque()
        for i, it in enumerate(items):
            if self.taken[i]:
                continue
            iid, name = it.get("id"), it.get("name")
            self._all.append(i)
            (self._names[name] if name else self._unnamed).append(i)
            if iid:
                self._ids[iid].append(i)
            else:
                self._noid.append(i)
                (self._noid_names[name] if name else self._noid_unnamed).append(i)

    def _head(self, q: deque[int] | None) -> int | None:
        while q and self.taken[q[0]]:
            q.popleft()
        return q[0] if q else None

    def _first(self, *queues: deque[int] | None) -> int | None:
        heads = [h for h in map(self._head, queues) if h is not None]
        return min(heads) if heads else None

    def by_id(self, iid: Any) -> int | None:
        return self._head(self._ids.get(iid))

    def compatible(self, iid: Any, name: Any) -> int | None:
        if iid:  # only items without an id
            return self._first(self._noid_names.get(name), self._noid_unnamed) if name else self._head(self._noid)
        return self._first(self._names.get(name), self._unnamed) if name else self._head(self._all)

    def take(self, i: int) -> None:
        self.taken[i] = True


def match_tool_calls(requested: list[dict], executed: list[dict]) -> list[dict]:
    """Pair tool results with the calls a model requested.

    ``requested``: [{id, name, arguments}] in the order the model asked;
    ``executed``: [{id, name, arguments, result, status}] in the order they ran.
    By id first (the first unmatched request with that id: ids are reused in real traces),
    then by order among the unmatched requests of the same name (or any name).
    Returns every call once, in execution order, requests never executed at the end.
    """
    open_ = _Open(requested, [True] * len(requested))
    out = []
    for ex in executed:
        j = open_.by_id(ex["id"]) if ex.get("id") else None
        if j is None:  # no open request has its id: one without an id (or any, when it has none)
            j = open_.compatible(ex.get("id"), ex.get("name"))
        call = dict(ex)
        if j is not None:
            open_.take(j)
            req = requested[j]
            call["id"] = call.get("id") or req.get("id")
            call["name"] = call.get("name") or req.get("name")
            call["arguments"] = call.get("arguments") or req.get("arguments")
        out.append(call)
    for i, r in enumerate(requested):
        if not open_.taken[i]:
            out.append({"id": r.get("id"), "name": r.get("name"), "arguments": r.get("arguments"),
                        "result": None, "status": "unset"})
    return out


def fill_results(executed: list[dict], received: list[dict]) -> None:
    """Tool spans that lack their result (the deprecated GenAI event form) take it from the
    tool messages the model received: by id, else by order among the same tool name."""
    open_ = _Open(executed, [e["result"] is None and e["status"] != "error" for e in executed])
    for r in received:
        if r.get("result") is None:
            continue
        j = open_.by_id(r["id"]) if r.get("id") else None
        if j is None:
            j = open_.compatible(r.get("id"), r.get("name"))
        if j is not None:
            open_.take(j)
            executed[j]["result"] = r["result"]


def _ms(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds() * 1000.0


def trace_session(spans: list[dict], root: dict) -> str | None:
    """The root's session id, else the most common among the spans that carry one
    (the same rule as tasks/sql/trace_sessions.sql)."""
    sids = [s["session_id"] for s in spans if _is_id(s["session_id"])]
    return root["session_id"] if _is_id(root["session_id"]) else (Counter(sids).most_common(1)[0][0] if sids else None)


def _is_id(v: str | None) -> bool:
    """A session id: not NULL, not empty, not only white space (as conventions.span_facts reads it)."""
    return bool(v) and not v.isspace()


def turn_tool_calls(llms: list[dict], tools: list[dict]) -> list[dict]:
    """A turn's tool calls: what its model calls requested, matched with what its tool spans ran
    (or, without tool spans, with the tool results later model calls received); every value text."""
    requested = []
    for s in llms:
        for c in _loads(s["tool_calls"]) or ():
            if isinstance(c, dict):
                requested.append(c)
    # tool results a later model call received (tool messages), once each
    received, seen = [], set()
    for s in llms:
        for r in _loads(s["tool_results"]) or ():
            key = (r.get("id"), r.get("name"), r.get("result")) if isinstance(r, dict) else None
            if key and key not in seen:
                seen.add(key)
                received.append({"id": r.get("id"), "name": r.get("name"), "arguments": None,
                                 "result": r.get("result"), "status": "ok"})
    if tools:
        executed = [{"id": t["tool_call_id"], "name": t["tool_name"], "arguments": t["tool_arguments"],
                     "result": t["tool_result"], "status": "error" if t["status"] == "error" else "ok"}
                    for t in tools]
        if received and any(e["result"] is None for e in executed):
            fill_results(executed, received)
    else:
        executed = received
    tool_calls = match_tool_calls(requested, executed)  # new dicts, keys in the TOOL_CALL order
    for c in tool_calls:
        for k in ("id", "name", "arguments", "result", "status"):
            v = c.get(k)
            if not (v is None or isinstance(v, str)):
                c[k] = json_bytes(v).decode()
    return tool_calls


_UNSET = object()


def build_turn(spans: list[dict], session_id: Any = _UNSET) -> dict[str, Any]:
    """One trace's spans (facts rows) -> its turn (turn_index decided later, per session).
    ``session_id`` when the caller already decided it in SQL."""
    spans = sorted(spans, key=lambda s: (s["start_time"], s["span_id"]))
    root = find_root(spans)
    llms = [s for s in spans if s["kind"] == "LLM"]
    tools = [s for s in spans if s["kind"] == "TOOL"]
    if session_id is _UNSET:
        session_id = trace_session(spans, root)
    system_prompt = next((s.get("system_prompt") for s in llms if s.get("system_prompt")), None)
    uids = [s["user_id"] for s in spans if s["user_id"]]
    user_id = root["user_id"] or (uids[0] if uids else None)

    user_message = plain_text(root["input_text"]) if root["kind"] != "LLM" else None
    if not user_message:
        first_llm_user = next((s["user_message"] for s in llms if s["user_message"]), None)
        user_message = first_llm_user or next((s["user_message"] for s in spans if s["user_message"]), None)
    assistant = plain_text(root["output_text"]) if root["kind"] != "LLM" else None
    if not assistant:
        by_end = sorted((s for s in spans if s["assistant_text"]), key=lambda s: (s["end_time"], s["start_time"]))
        assistant = by_end[-1]["assistant_text"] if by_end else None

    tool_calls = turn_tool_calls(llms, tools)

    # the turn failed when its root failed, or when it errored without an answer; a tool
    # that failed and that the agent recovered from is counted (error_count), not a failure
    errors = [s for s in spans if s["status"] == "error"]
    failed = root["status"] == "error" or (bool(errors) and not assistant)
    err = None
    if failed:
        first = root if root["status"] == "error" else errors[0]
        err = f"{first['name']}: {first['status_message'] or 'error'}"
    models = [s["model"] for s in llms if s["model"]]
    projects = Counter(s["project"] for s in spans if s["project"])
    return {
        "session_id": session_id,
        "turn_index": 0,
        "trace_id": root["trace_id"],
        "project": root["project"] or (projects.most_common(1)[0][0] if projects else None),
        "user_id": user_id,
        "started_at": root["start_time"],
        "ended_at": root["end_time"],
        "latency_ms": _ms(root["start_time"], root["end_time"]),
        "user_message": user_message,
        "assistant_message": assistant,
        "tool_calls": tool_calls,
        "llm_calls": len(llms),
        "input_tokens": min(sum(s["input_tokens"] or 0 for s in llms), I64_MAX),  # saturates
        "output_tokens": min(sum(s["output_tokens"] or 0 for s in llms), I64_MAX),
        "model": models[-1] if models else None,
        "status": "error" if failed else "ok",
        "error": err,
        "error_count": len(errors),
        "span_count": len(spans),
        "root_span_id": root["span_id"],
        "root_name": root["name"],
        "system_prompt": system_prompt,
        "conventions": ",".join(sorted({s["convention"] for s in spans if s["convention"] != "none"})) or None,
    }


def index_turns(turns: Iterable[dict]) -> list[dict]:
    """Set turn_index: 0-based by start within each session; a lone trace is turn 0."""
    by_session: dict[str | None, list[dict]] = defaultdict(list)
    out = []
    for t in turns:
        if t["session_id"] is None:
            t["turn_index"] = 0
            out.append(t)
        else:
            by_session[t["session_id"]].append(t)
    for ts in by_session.values():
        ts.sort(key=lambda t: (t["started_at"], t["trace_id"]))
        for i, t in enumerate(ts):
            t["turn_index"] = i
        out.extend(ts)
    return out


# this process's in-memory DuckDB, by pid: a forked child makes its own and must never drop the
# parent's copy (its destructor would wait for scheduler threads that do not exist in the child)
_MEMORY_DBS: dict[int, Any] = {}


def _memory_db():
    """A cursor (its own registered relations) on this process's in-memory DuckDB, connected
    once per process."""
    con = _MEMORY_DBS.get(os.getpid())
    if con is None:
        import duckdb

        con = duckdb.connect(config={"threads": 1})  # a worker process among others: one core each
        _MEMORY_DBS[os.getpid()] = con
    cur = con.cursor()
    cur.execute("SET enable_progress_bar = false")  # a session setting: per cursor
    return cur


def build_sessions(turns: pa.Table) -> pa.Table:
    """The sessions of a batch of whole sessions from its turns (``lake.TURNS`` columns): the
    statement ``build_sessions.sql`` in an in-memory DuckDB, one row per session id, sorted."""
    from tasks.store import catalog

    cur = _memory_db()
    try:
        cur.register("batch_turns", turns)
        return cur.sql(catalog.sql("build_sessions")).to_arrow_table()
    finally:
        cur.close()


def build_session(session_id: str, turns: list[dict]) -> dict[str, Any]:
    """A session's row from all its turns: ``build_sessions`` on this one session."""
    rows = [dict(t, session_id=session_id) for t in turns]
    (row,) = build_sessions(pa.Table.from_pylist(rows, schema=lake.TURNS)).to_pylist()
    return row


def build_turns(fact_rows: Iterable[dict], decided: dict[str, str | None] | None = None) -> list[dict]:
    """Facts rows of whole traces -> indexed turns. ``decided``: {trace_id: session_id} from
    SQL (so that batches never split a session); without it, decided here from the facts."""
    by_trace: dict[str, list[dict]] = defaultdict(list)
    for r in fact_rows:
        by_trace[r["trace_id"]].append(r)
    if decided is None:
        return index_turns(build_turn(spans) for spans in by_trace.values())
    return index_turns(build_turn(spans, decided[t]) for t, spans in by_trace.items())


def batches_by_session(trace_sessions: list[tuple[str, str | None]], size: int) -> list[list[str]]:
    """Trace ids in batches of about ``size`` that never split a session."""
    by_session: dict[str | None, list[str]] = defaultdict(list)
    for trace, session in trace_sessions:
        by_session[session].append(trace)
    groups = [[t] for t in by_session.pop(None, [])] + [ts for _, ts in sorted(by_session.items())]
    out: list[list[str]] = []
    cur: list[str] = []
    for g in groups:
        if cur and len(cur) + len(g) > size:
            out.append(cur)
            cur = []
        cur.extend(g)
    if cur:
        out.append(cur)
    return out


# --------------------------------------------------------------------------- the stage
def _write(turns: pa.Table, sessions: pa.Table, lake_dir: Path, name: str) -> None:
    lake.write_partitioned(turns, lake_dir, "turns", "started_at", name)
    lake.write_partitioned(sessions, lake_dir, "sessions", "started_at", name)


# columns whose values repeat from span to span (one trace, a few kinds, models, parents): one
# Python string each per trace instead of one per span
_SHARED = frozenset({"trace_id", "parent_span_id", "kind", "status", "session_id", "user_id", "project",
                     "convention", "model", "name", "tool_name", "system_prompt"})


class _FactRow(tuple):
    """One span's facts read by column name, as the dict it stands for (``row["kind"]``,
    ``row.get(...)``): a tuple takes a third of a dict's memory, and a trace of a million spans
    is held whole while its turn is built."""

    __slots__ = ()
    index: ClassVar[dict[str, int]] = {}

    def __getitem__(self, key):  # type: ignore[override]
        return tuple.__getitem__(self, self.index[key])

    def get(self, key: str, default: Any = None) -> Any:
        i = self.index.get(key)
        return default if i is None else tuple.__getitem__(self, i)


@cache
def _row_type(names: tuple[str, ...]) -> type[_FactRow]:
    return type("FactRow", (_FactRow,), {"__slots__": (), "index": {n: i for i, n in enumerate(names)}})


def _fact_rows(table: pa.Table) -> list[_FactRow]:
    """One trace's facts table as rows (repeated values shared)."""
    row_type = _row_type(tuple(table.column_names))
    shared: dict[Any, Any] = {}
    rows: list[_FactRow] = []
    for batch in table.to_batches(max_chunksize=65_536):  # the column lists of a slice at a time
        cols = []
        for name in table.column_names:
            values = batch.column(name).to_pylist()
            if name in _SHARED:
                values = [v if v is None else shared.setdefault(v, v) for v in values]
            cols.append(values)
        rows.extend(map(row_type, zip(*cols, strict=True)))
    return rows


def trace_groups(facts: pa.Table | Iterable[dict]) -> Iterator[list]:
    """The facts rows of each trace, one trace at a time: a table (what a batch reads) is cut
    by trace and turned into rows a window of whole traces at a time (``_WINDOW_ROWS`` spans, or
    one trace larger than that), so that only a window is held as Python objects; dict rows
    (tests) are grouped as they are."""
    if not isinstance(facts, pa.Table):
        by_trace: dict[str, list[dict]] = defaultdict(list)
        for r in facts:
            by_trace[r["trace_id"]].append(r)
        yield from by_trace.values()
        return
    n = facts.num_rows
    if not n:
        return
    tids = facts.column("trace_id")
    if n > 1 and not pc.all(pc.less_equal(tids.slice(0, n - 1), tids.slice(1))).as_py():
        facts = facts.sort_by("trace_id")  # (a copy: skipped when sorted, as one trace is)
        tids = facts.column("trace_id")
    starts = [0, *(i + 1 for i in pc.indices_nonzero(pc.not_equal(tids.slice(1), tids.slice(0, n - 1))).to_pylist()), n]
    # traces are turned into rows a window of whole traces at a time (one column conversion per
    # window, not per trace); a trace larger than a window is a window of its own
    i = 0
    while i < len(starts) - 1:
        j = i + 1
        while j < len(starts) - 1 and starts[j + 1] - starts[i] <= _WINDOW_ROWS:
            j += 1
        a = starts[i]
        rows = _fact_rows(facts.slice(a, starts[j] - a))
        for k in range(i, j):
            yield rows[starts[k] - a:starts[k + 1] - a]
        del rows
        i = j


_WINDOW_ROWS = 16_384


def _tables(turns: list[dict], version: int, at: datetime) -> tuple[pa.Table, pa.Table]:
    for r in turns:
        r.update(version=version, sessionized_at=at, deleted=False)
    turns_table = pa.Table.from_pylist(turns, schema=lake.TURNS)
    sessions = lake.conform(build_sessions(turns_table), lake.SESSIONS,
                            version=version, sessionized_at=at, deleted=False)
    return turns_table, sessions


def _reject(what: str, key: str, decided: dict[str, str | None], exc: Exception) -> dict[str, str]:
    traces = sorted(t for t, s in decided.items() if (s if what == "session" else t) == key)
    return {"location": f"{what} {key}", "reason": f"cannot rebuild the {what}: {error_text(exc, 200)}",
            "raw": orjson.dumps({what: key, "traces": traces[:100]}).decode()}


def rebuild_sessions(facts: pa.Table | Iterable[dict], decided: dict[str, str | None], version: int,
                     at: datetime) -> tuple[pa.Table, pa.Table, list[dict[str, str]]]:
    """The turns and sessions of a batch of whole sessions, and a reject for each session (or
    lone trace) that cannot be rebuilt: one bad session never stops the others (its turns are
    left out, so that it keeps its last version whole). Turns are built trace by trace; the
    tables are built for the batch, and only when that fails session by session, to tell which.
    A reject: {location ("session ID" or "trace ID"), reason (one line), raw (its trace ids)}."""
    turns: list[dict] = []
    rejects: dict[tuple[str, str], dict[str, str]] = {}
    for spans in trace_groups(facts):
        tid = spans[0]["trace_id"]
        sid = decided[tid]
        try:
            turns.append(build_turn(spans, sid))
        except Exception as exc:  # noqa: BLE001 - this session is a reject, the batch goes on
            key = ("session", sid) if sid is not None else ("trace", tid)
            rejects.setdefault(key, _reject(*key, decided, exc))
        del spans
    if rejects:
        turns = [t for t in turns if ("session", t["session_id"]) not in rejects]
    turns = index_turns(turns)
    try:
        return (*_tables(turns, version, at), list(rejects.values()))
    except Exception:  # noqa: BLE001 - which session? built one by one below
        pass
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for t in turns:
        groups[("session", t["session_id"]) if t["session_id"] is not None else ("trace", t["trace_id"])].append(t)
    tables = []
    for key, group in sorted(groups.items()):
        try:
            tables.append(_tables(group, version, at))
        except Exception as exc:  # noqa: BLE001 - this session is a reject, the batch goes on
            rejects[key] = _reject(*key, decided, exc)
    return (pa.concat_tables([lake.TURNS.empty_table(), *(t for t, _ in tables)]),
            pa.concat_tables([lake.SESSIONS.empty_table(), *(s for _, s in tables)]), list(rejects.values()))


def rebuild_batch(lake_dir: str, facts_dir: str, decided: dict[str, str | None],
                  version: int, at: datetime, name: str) -> tuple[int, list[str], list[dict[str, str]]]:
    """Rebuild the turns and sessions of a batch of whole sessions from its facts folder
    and write them as lake parts (runs in a worker process); the sessions it could not
    rebuild come back as rejects."""
    import pyarrow.dataset as ds

    facts = ds.dataset(facts_dir, format="parquet").to_table()
    turns_table, sessions, rejects = rebuild_sessions(facts, decided, version, at)
    if turns_table.num_rows or sessions.num_rows:
        _write(turns_table, sessions, remote.as_path(lake_dir), name)
    return turns_table.num_rows, sessions.column("session_id").to_pylist(), rejects


def sessionize(con, settings, pool=None) -> SessionizeInfo:
    """Rebuild the turns and sessions that spans ingested since the last watermark touch."""
    from tasks.store import catalog

    t0 = time.perf_counter()
    wm_text = catalog.get_watermark(con, "sessionize", "ingested_at")
    wm = datetime.fromisoformat(wm_text) if wm_text else _EPOCH
    latest = catalog.scalar(con, "max_ingested_at")
    if latest is None or latest <= wm:
        return SessionizeInfo(seconds=round(time.perf_counter() - t0, 3))
    new = con.execute(catalog.sql("new_traces"), {"watermark": wm}).fetchall()
    new_traces = {t for t, _ in new}
    sessions = {s for _, s in new if s}
    # sessions these traces belonged to before (a trace may move), and all their traces
    con.register("wanted_traces", pa.table({"trace_id": pa.array(sorted(new_traces), pa.string())}))
    sessions |= {s for (s,) in con.execute(catalog.sql("sessions_of_traces")).fetchall() if s}
    con.register("wanted_sessions", pa.table({"session_id": pa.array(sorted(sessions), pa.string())}))
    traces = new_traces | {t for (t,) in con.execute(catalog.sql("traces_of_sessions")).fetchall()}
    con.register("wanted_traces", pa.table({"trace_id": pa.array(sorted(traces), pa.string())}))
    decided = dict(con.execute(catalog.sql("trace_sessions")).fetchall())
    con.unregister("wanted_sessions")
    version = int(time.time() * 1e6)
    at = now()
    files = [str(p) for p in lake.list_files(settings.lake_dir, "spans")]
    # batches of whole sessions: ~4 so that the workers share the work, at most sessionize_batch traces
    size = max(200, min(settings.sessionize_batch, -(-len(decided) // 4)))
    batches = batches_by_session(list(decided.items()), size)
    con.register("wanted_batches", pa.table({
        "trace_id": pa.array([t for b in batches for t in b], pa.string()),
        "batch": pa.array([i for i, b in enumerate(batches) for _ in b], pa.int32())}))
    stage = lake.staging_dir(settings.work_dir, f"sessionize-{version}")
    try:
        # the parts that hold a wanted trace (their trace_id column read), then one pass over
        # them writes every batch's facts; each worker then reads only its own
        files = [f for (f,) in con.execute(catalog.sql("files_of_traces"), {"files": files}).fetchall()] if files else []
        if files:
            con.execute(catalog.sql("facts_by_batch").replace("{out}", catalog.quote(str(stage))), {"files": files})
        con.unregister("wanted_batches")
        jobs = [{"lake_dir": str(settings.lake_dir), "facts_dir": str(stage / f"batch={i}"),
                 "decided": {t: decided[t] for t in b}, "version": version, "at": at,
                 "name": f"v{version}-{i:04d}.parquet"}
                for i, b in enumerate(batches) if (stage / f"batch={i}").exists()]
        results = pmap(pool, rebuild_batch, jobs)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    n_turns = sum(n for n, _, _ in results)
    seen_sessions = {sid for _, sids, _ in results for sid in sids}
    n_sessions = len(seen_sessions)
    rejects = [r for _, _, rs in results for r in rs]
    con.unregister("wanted_traces")
    name = f"v{version}"
    # a session every trace has left: a tombstone (a session that could not be rebuilt keeps its
    # last version, and is a reject)
    failed = {r["location"].removeprefix("session ") for r in rejects if r["location"].startswith("session ")}
    gone = sorted(sessions - seen_sessions - failed)
    if gone:
        tomb = [lake.tombstone(tables.SESSIONS, {"session_id": sid}, at, version=version) for sid in gone]
        lake.write_partitioned(pa.Table.from_pylist(tomb, schema=lake.SESSIONS), settings.lake_dir, "sessions",
                               "started_at", f"{name}-tombstones.parquet")
        n_sessions += len(tomb)
    catalog.add_rejects(con, [Reject(source="sessionize", reject_id=reject_id("sessionize", r["location"], r["raw"],
                                                                            r["reason"]), **r)
                              for r in rejects])
    catalog.refresh_views(con, settings.lake_dir)
    catalog.set_watermark(con, "sessionize", "ingested_at", latest.isoformat())
    return SessionizeInfo(traces=len(traces), turns_written=n_turns, sessions_written=n_sessions,
                          sessions_rejected=len(rejects),
                          sessions_touched=sorted(sessions)[:1000],
                          seconds=round(time.perf_counter() - t0, 3))
