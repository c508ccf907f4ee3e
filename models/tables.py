"""Every table of Replay, declared once: its name, grain, home, key and columns.

Two homes:
- ``lake``: Parquet part files under ``lake/<table>/`` read through a view of the same name in
  the catalog (``tasks/store/sql/view_<table>.sql`` holds the view's logic, this file its columns);
- ``catalog``: a DuckDB table of the catalog (bookkeeping, replay sessions, scenarios, runs).

What derives from a declaration (tasks/store): the Parquet schema (``lake.SPANS``, ...), the typed
empty relation a view reads while the lake has no file, the column list of the view, the row of
a tombstone, the ``CREATE TABLE`` of a catalog table and the ``ALTER TABLE ... ADD COLUMN`` that
brings an older catalog up to date. Adding a column is one line here (plus whatever computes its
value).

Types are pyarrow types (the catalog maps them to DuckDB's). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import pyarrow as pa

TS = pa.timestamp("us")  # a UTC time without zone, microseconds
STR, I32, I64, F64, BOOL = pa.string(), pa.int32(), pa.int64(), pa.float64(), pa.bool_()

TOOL_CALL = pa.struct([("id", STR), ("name", STR), ("arguments", STR), ("result", STR), ("status", STR)])
CHAT_TOOL_CALL = pa.struct([("id", STR), ("name", STR), ("arguments", STR), ("result", STR), ("status", STR),
                            ("source", STR), ("matched_turn", I32)])


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    doc: str
    nullable: bool = True  # catalog: NOT NULL when False; the lake's Parquet columns are all nullable
    json: bool = False  # a JSON document: text in the lake, exposed as JSON by its view; a JSON catalog column
    internal: bool = False  # lake bookkeeping (merge-on-read version, tombstone flag): hidden from the view
    view: str | None = None  # the view's SQL expression for it (over the stored columns) when not the column


@dataclass(frozen=True)
class Table:
    name: str
    grain: str  # one line: what one row is
    home: Literal["lake", "catalog"]
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    # the view's first columns, as the view has always shown them; every other visible column
    # follows in declaration order (so a new column shows up last in the view)
    view_first: tuple[str, ...] = ()
    view: str | None = None  # the view over it (a lake table's view has its name; None: no view)
    enforce_key: bool = True  # catalog: PRIMARY KEY (key)
    names: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = tuple(c.name for c in self.columns)
        object.__setattr__(self, "names", names)
        if self.home == "lake" and self.view is None:
            object.__setattr__(self, "view", self.name)
        problems = _problems(self)
        if problems:
            raise ValueError(f"table {self.name}: " + "; ".join(problems))

    def column(self, name: str) -> Column:
        return self.columns[self.names.index(name)]

    def visible(self) -> tuple[Column, ...]:
        """The columns its view shows, in the view's order (internal ones left out)."""
        first = [self.column(n) for n in self.view_first]
        rest = [c for c in self.columns if c.name not in self.view_first and not c.internal]
        return tuple(first + rest)

    def schema(self) -> pa.Schema:
        """The Parquet (Arrow) schema, in declaration order."""
        return pa.schema([pa.field(c.name, c.type, nullable=c.nullable) for c in self.columns])

    def with_column(self, column: Column) -> Table:
        """A copy with one more column, last."""
        return replace(self, columns=self.columns + (column,))


def _problems(t: Table) -> list[str]:
    names = t.names
    out = [f"column {n} declared twice" for n in sorted({n for n in names if names.count(n) > 1})]
    out += [f"key column {k} is not a column" for k in t.key if k not in names]
    out += [f"view_first names {n}, not a visible column" for n in t.view_first
            if n not in names or t.column(n).internal]
    for c in t.columns:
        if c.json and c.type != STR:
            out.append(f"{c.name}: a JSON column is text")
        if t.home == "lake" and not c.nullable:
            out.append(f"{c.name}: lake columns are nullable (Parquet enforces nothing here)")
        if t.home == "catalog" and (c.internal or c.view):
            out.append(f"{c.name}: internal/view are lake flags")
        if t.home == "catalog" and t.enforce_key and c.name in t.key and c.nullable:
            out.append(f"{c.name}: a key column is NOT NULL")
    return out


def list_of_structs_with_json(column: str, struct: pa.StructType, *json_fields: str) -> str:
    """The view expression of a list of structs whose ``json_fields`` hold JSON text: the same
    list with those fields typed JSON (derived from the struct, so a new field follows)."""
    fields = ", ".join(f"{f.name} := t.{f.name}" + ("::JSON" if f.name in json_fields else "") for f in struct)
    return f"list_transform({column}, lambda t: struct_pack({fields}))"


_c = Column  # short, for the declarations below


# --------------------------------------------------------------------------- the lake
SPANS = Table(
    "spans", "one span (the lake holds each (trace_id, span_id) once: extract deduplicates)", "lake",
    key=("trace_id", "span_id"),
    columns=(
        _c("trace_id", STR, "32 lowercase hex"),
        _c("span_id", STR, "16 lowercase hex"),
        _c("parent_span_id", STR, "NULL for a root"),
        _c("name", STR, "the span's name"),
        _c("kind", STR, "LLM, TOOL, AGENT, CHAIN, ... as the span says; UNKNOWN when it says nothing"),
        _c("otel_kind", STR, "INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER, UNSPECIFIED"),
        _c("start_time", TS, "UTC"),
        _c("end_time", TS, "UTC"),
        _c("duration_ms", F64, "end_time - start_time"),
        _c("status", STR, "ok, error, unset"),
        _c("status_message", STR, "the status description"),
        _c("session_id", STR, "the session id the span carries (attribute or resource)"),
        _c("user_id", STR, "the user id the span carries"),
        _c("project", STR, "the project it was ingested into"),
        _c("attributes", STR, "every attribute, flat dotted keys", json=True),
        _c("resource", STR, "the resource's attributes", json=True),
        _c("events", STR, "the span's events; NULL when none", json=True),
        _c("scope_name", STR, "the instrumentation scope"),
        _c("convention", STR, "openinference, genai, traceai, ... or none"),
        _c("source", STR, "otlp_file, phoenix, ..."),
        _c("location", STR, "file:line or URL#cursor"),
        _c("ingested_at", TS, "when extract wrote it"),
        # conversation facts, derived once at extract so sessionize never re-reads attributes
        _c("model", STR, "LLM span: the model"),
        _c("input_tokens", I64, "LLM span: prompt tokens"),
        _c("output_tokens", I64, "LLM span: completion tokens"),
        _c("input_text", STR, "the span's input value"),
        _c("output_text", STR, "the span's output value"),
        _c("user_message", STR, "LLM span: the last user message it received"),
        _c("assistant_text", STR, "LLM span: the last text it answered"),
        _c("system_prompt", STR, "LLM span: its system prompt"),
        _c("tool_calls", STR, "LLM span: the tool calls it requested", json=True),
        _c("tool_results", STR, "LLM span: the tool results it received", json=True),
        _c("tools", STR, "LLM span: the tools it was offered", json=True),
        _c("tool_name", STR, "TOOL span: the tool"),
        _c("tool_call_id", STR, "TOOL span: the call's id"),
        _c("tool_arguments", STR, "TOOL span: the call's arguments (text)"),
        _c("tool_result", STR, "TOOL span: the call's result (text)"),
    ),
    view_first=("trace_id", "span_id", "parent_span_id", "name", "kind", "start_time", "end_time", "duration_ms",
                "status", "status_message", "session_id", "user_id", "project", "attributes", "resource",
                "source", "ingested_at", "otel_kind", "events", "scope_name", "convention", "location"),
)

TURNS = Table(
    "turns", "one version of a trace's turn (the view keeps the latest version, tombstones hidden)", "lake",
    key=("trace_id",),
    columns=(
        _c("session_id", STR, "NULL for a trace outside any session"),
        _c("turn_index", I32, "0-based, by start within the session; 0 for a lone trace"),
        _c("trace_id", STR, "the trace this turn is"),
        _c("project", STR, "the root span's project, else the most common"),
        _c("user_id", STR, "the root's user id, else the first one"),
        _c("started_at", TS, "the root span's start"),
        _c("ended_at", TS, "the root span's end"),
        _c("latency_ms", F64, "ended_at - started_at"),
        _c("user_message", STR, "what the user said"),
        _c("assistant_message", STR, "what the agent answered"),
        _c("tool_calls", pa.list_(TOOL_CALL), "every tool call in order, arguments as JSON",
           view=list_of_structs_with_json("tool_calls", TOOL_CALL, "arguments")),
        _c("llm_calls", I32, "model calls"),
        _c("input_tokens", I64, "prompt tokens of its model calls"),
        _c("output_tokens", I64, "completion tokens of its model calls"),
        _c("model", STR, "the last model called"),
        _c("status", STR, "ok or error"),
        _c("error", STR, "the failed span and its message, when the turn failed"),
        _c("error_count", I32, "failed spans (a recovered tool failure included)"),
        _c("span_count", I32, "spans of the trace"),
        _c("root_span_id", STR, "the root span"),
        _c("root_name", STR, "the root span's name"),
        _c("system_prompt", STR, "the first model call's system prompt"),
        _c("conventions", STR, "the conventions of its spans, comma separated"),
        _c("version", I64, "merge-on-read: the latest version wins", internal=True),
        _c("sessionized_at", TS, "when sessionize wrote this version"),
        _c("deleted", BOOL, "a tombstone", internal=True),
    ),
    view_first=("session_id", "turn_index", "trace_id", "project", "started_at", "ended_at", "latency_ms",
                "user_message", "assistant_message", "tool_calls", "llm_calls", "input_tokens", "output_tokens",
                "model", "status", "error"),
)

SESSIONS = Table(
    "sessions", "one version of a session (the view keeps the latest version, tombstones hidden)", "lake",
    key=("session_id",),
    columns=(
        _c("session_id", STR, "the session"),
        _c("project", STR, "the most common project of its turns"),
        _c("user_id", STR, "the first user id of its turns"),
        _c("started_at", TS, "its first turn's start"),
        _c("ended_at", TS, "its last turn's end"),
        _c("duration_ms", F64, "ended_at - started_at"),
        _c("turn_count", I32, "turns"),
        _c("input_tokens", I64, "prompt tokens of its turns"),
        _c("output_tokens", I64, "completion tokens of its turns"),
        _c("tool_call_count", I32, "tool calls of its turns"),
        _c("error_count", I32, "failed spans of its turns (a recovered tool failure included)"),
        _c("first_user_message", STR, "the first thing the user said"),
        _c("last_assistant_message", STR, "the last thing the agent answered"),
        _c("version", I64, "merge-on-read: the latest version wins", internal=True),
        _c("sessionized_at", TS, "when sessionize wrote this version"),
        _c("deleted", BOOL, "a tombstone: every trace has left the session", internal=True),
    ),
    view_first=("session_id", "project", "user_id", "started_at", "ended_at", "turn_count", "input_tokens",
                "output_tokens", "tool_call_count", "error_count", "first_user_message", "last_assistant_message"),
)

CHATS = Table(
    "chats", "one replayed conversation (a call execution)", "lake",
    key=("chat_id",),
    columns=(
        _c("chat_id", STR, "the conversation"),
        _c("execution_id", STR, "the execution it ran in"),
        _c("scenario_id", STR, "the scenario"),
        _c("row_index", I32, "the scenario row"),
        _c("repetition", I32, "0-based, --repeat"),
        _c("origin_id", STR, "the production session or trace of the row"),
        _c("status", STR, "completed or failed"),
        _c("ended_reason", STR, "script_done, user_ended, max_turns, error, timeout, off_script"),
        _c("divergence_turn", I32, "the first turn whose answer diverged from production's"),
        _c("turn_count", I32, "turns"),
        _c("input_tokens", I64, "prompt tokens"),
        _c("output_tokens", I64, "completion tokens"),
        _c("avg_latency_ms", F64, "mean turn latency"),
        _c("error", STR, "why it failed"),
        _c("started_at", TS, "UTC"),
        _c("ended_at", TS, "UTC"),
    ),
)

CHAT_TURNS = Table(
    "chat_turns", "one turn of a replayed conversation, with production's answer beside it", "lake",
    key=("chat_id", "turn_index"),
    columns=(
        _c("chat_id", STR, "the conversation"),
        _c("execution_id", STR, "the execution"),
        _c("turn_index", I32, "0-based"),
        _c("user_message", STR, "what the (original or simulated) user said"),
        _c("assistant_message", STR, "what the agent answered"),
        _c("tool_calls", pa.list_(CHAT_TOOL_CALL), "the agent's tool calls and where each answer came from",
           view=list_of_structs_with_json("tool_calls", CHAT_TOOL_CALL, "arguments")),
        _c("latency_ms", F64, "the agent's time"),
        _c("input_tokens", I64, "prompt tokens"),
        _c("output_tokens", I64, "completion tokens"),
        _c("original_assistant_message", STR, "production's answer"),
        _c("original_tool_calls", pa.list_(TOOL_CALL), "production's tool calls",
           view=list_of_structs_with_json("original_tool_calls", TOOL_CALL, "arguments")),
        _c("user_source", STR, "original or simulated"),
        _c("similarity", F64, "the answer against production's, 0..1"),
        _c("attempts", I32, "calls of the agent (retries included)"),
        _c("error", STR, "why the turn failed"),
    ),
    view_first=("chat_id", "turn_index", "user_message", "assistant_message", "tool_calls", "latency_ms",
                "input_tokens", "output_tokens", "original_assistant_message", "original_tool_calls",
                "user_source", "similarity", "attempts", "error"),
)

EVAL_SCORES = Table(
    "eval_scores", "one (chat, turn or NULL, evaluator) score of the latest evaluation of an execution", "lake",
    key=("execution_id", "chat_id", "turn_index", "evaluator"),
    columns=(
        _c("execution_id", STR, "the execution"),
        _c("chat_id", STR, "the conversation"),
        _c("turn_index", I32, "NULL for a chat-level score"),
        _c("evaluator", STR, "the evaluator's name"),
        _c("evaluator_version", STR, "its version"),
        _c("value", F64, "on the evaluator's own scale"),
        _c("label", STR, "a label, when it gives one"),
        _c("passed", BOOL, "NULL when pass/fail does not apply"),
        _c("reason", STR, "why"),
        _c("source", STR, "heuristic, llm:<model>, metric, custom"),
        _c("error", STR, "the evaluator failed here: a failure row"),
        _c("evaluated_at", TS, "UTC"),
    ),
    view_first=("chat_id", "turn_index", "evaluator", "evaluator_version", "value", "label", "passed", "reason",
                "source", "error", "execution_id"),
)

# --------------------------------------------------------------------------- the catalog
REJECTS_LOG = Table(
    "rejects_log", "one rejected input record (reject_id = hash of source, position, raw, reason)", "catalog",
    key=("reject_id",), view="rejects",
    columns=(
        _c("reject_id", STR, "the same bad record gets the same id", nullable=False),
        _c("source", STR, "otlp_file, phoenix, ...", nullable=False),
        _c("location", STR, "file:line or URL#cursor", nullable=False),
        _c("reason", STR, "one line", nullable=False),
        _c("raw", STR, "the record, truncated"),
        _c("rejected_at", TS, "UTC", nullable=False),
    ),
    view_first=("source", "location", "reason", "raw", "rejected_at"),
)

STAGE_RUNS = Table(
    "stage_runs", "one stage run (extract, sessionize, phoenix pull): what it did, as JSON", "catalog",
    key=("run_id",), enforce_key=False,
    columns=(
        _c("run_id", STR, "the run", nullable=False),
        _c("stage", STR, "the stage", nullable=False),
        _c("finished_at", TS, "UTC", nullable=False),
        _c("info", STR, "its counts", json=True),
    ),
)

WATERMARKS = Table(
    "watermarks", "one (source, key): where the next incremental pull or sessionize starts", "catalog",
    key=("source", "key"),
    columns=(
        _c("source", STR, "phoenix, sessionize, ...", nullable=False),
        _c("key", STR, "the URL and project, or what the value measures", nullable=False),
        _c("value", STR, "the cursor or time"),
        _c("updated_at", TS, "UTC", nullable=False),
    ),
)

REPLAY_SESSIONS = Table(
    "replay_sessions", "one replay session (what to replay, and where it is in its life)", "catalog",
    key=("replay_id",),
    columns=(
        _c("replay_id", STR, "the replay session", nullable=False),
        _c("project", STR, "the project replayed", nullable=False),
        _c("replay_type", STR, "session or trace", nullable=False),
        _c("ids", pa.list_(STR), "the selected session or trace ids", nullable=False),
        _c("select_all", BOOL, "--all", nullable=False),
        _c("where_sql", STR, "the --where predicate, when used"),
        _c("state", STR, "INIT, GENERATING, COMPLETED, FAILED", nullable=False),
        _c("state_reason", STR, "why FAILED"),
        _c("transitions", STR, '[{"state": ..., "at": ...}, ...]', nullable=False, json=True),
        _c("agent_name", STR, "the agent definition"),
        _c("scenario_name", STR, "the scenario"),
        _c("suggestions", STR, "suggested names and descriptions", json=True),
        _c("created_at", TS, "UTC", nullable=False),
        _c("updated_at", TS, "UTC", nullable=False),
        _c("run_test_id", STR, "the run test made from it"),
    ),
)

AGENT_DEFINITIONS = Table(
    "agent_definitions", "one agent definition version (a new version only when something changed)", "catalog",
    key=("agent_name", "version"),
    columns=(
        _c("agent_name", STR, "the agent", nullable=False),
        _c("version", I32, "1, 2, ...", nullable=False),
        _c("project", STR, "the project it came from"),
        _c("description", STR, "what it does"),
        _c("system_prompt", STR, "its system prompt"),
        _c("tools", STR, "its tools, OpenAI function format", json=True),
        _c("model", STR, "its model"),
        _c("agent_type", STR, "text, ...", nullable=False),
        _c("created_at", TS, "UTC", nullable=False),
    ),
)

SCENARIOS = Table(
    "scenarios", "one scenario", "catalog",
    key=("scenario_id",),
    columns=(
        _c("scenario_id", STR, "the scenario", nullable=False),
        _c("scenario_name", STR, "its name", nullable=False),
        _c("replay_id", STR, "the replay session it came from"),
        _c("project", STR, "the project"),
        _c("agent_name", STR, "the agent definition", nullable=False),
        _c("agent_version", I32, "its version", nullable=False),
        _c("source", STR, "session_replay, trace_replay, import", nullable=False),
        _c("graph", STR, "the conversation graph", json=True),
        _c("row_count", I32, "rows", nullable=False),
        _c("writer", STR, "offline or llm:<model>"),
        _c("redactions", STR, '{"email": n, ...} when --redact', json=True),
        _c("failures", STR, "transcripts no row could be written for, with reasons", json=True),
        _c("created_at", TS, "UTC", nullable=False),
    ),
)

SCENARIO_ROWS = Table(
    "scenario_rows", "one scenario row", "catalog",
    key=("scenario_id", "row_index"),
    columns=(
        _c("scenario_id", STR, "the scenario", nullable=False),
        _c("row_index", I32, "0-based", nullable=False),
        _c("origin_id", STR, "the production session or trace", nullable=False),
        _c("persona", STR, "the simulated user", nullable=False, json=True),
        _c("situation", STR, "the user's situation", nullable=False),
        _c("outcome", STR, "the expected outcome", nullable=False),
        _c("conversation_branch", STR, "the graph branch", nullable=False),
        _c("branch_category", STR, "its category", nullable=False),
        _c("user_turns", pa.list_(STR), "the user's turns, verbatim", nullable=False),
        _c("expected_turns", STR, "the original answers and tool calls", nullable=False, json=True),
        _c("custom", STR, "custom columns", json=True),
    ),
)

RUN_TESTS = Table(
    "run_tests", "one run test (a scenario against an agent, with its options)", "catalog",
    key=("run_test_id",),
    columns=(
        _c("run_test_id", STR, "the run test", nullable=False),
        _c("name", STR, "its name", nullable=False),
        _c("scenario_id", STR, "the scenario", nullable=False),
        _c("agent_name", STR, "the agent definition"),
        _c("agent_version", I32, "its version"),
        _c("mode", STR, "replay, simulate, hybrid", nullable=False),
        _c("tool_mode", STR, "recorded, live", nullable=False),
        _c("agent_ref", STR, "module:function or http(s)://...", nullable=False),
        _c("replay_id", STR, "the replay session"),
        _c("options", STR, "the run options", nullable=False, json=True),
        _c("created_at", TS, "UTC", nullable=False),
    ),
)

EXECUTIONS = Table(
    "executions", "one execution of a run test", "catalog",
    key=("execution_id",),
    columns=(
        _c("execution_id", STR, "the execution", nullable=False),
        _c("run_test_id", STR, "the run test", nullable=False),
        _c("agent_ref", STR, "module:function or http(s)://...", nullable=False),
        _c("started_at", TS, "UTC", nullable=False),
        _c("ended_at", TS, "UTC"),
        _c("status", STR, "running, completed, failed, interrupted", nullable=False),
        _c("total_chats", I32, "chats to run", nullable=False),
        _c("completed_chats", I32, "chats completed", nullable=False),
        _c("failed_chats", I32, "chats failed", nullable=False),
        _c("error", STR, "why it failed"),
    ),
)

EXECUTION_METRICS = Table(
    "execution_metrics", "one evaluated execution; one more avg_<evaluator> column per evaluator (added as met, "
    "by tasks/evaluate/stage.py)", "catalog",
    key=("execution_id",),
    columns=(
        _c("execution_id", STR, "the execution", nullable=False),
        _c("total_chats", I32, "chats"),
        _c("completed_chats", I32, "chats completed"),
        _c("completion_pct", F64, "0..100"),
        _c("avg_output_tokens", F64, "per chat"),
        _c("avg_chat_latency_ms", F64, "per chat"),
        _c("avg_turn_count", F64, "per chat"),
        _c("avg_csat", F64, "1..10"),
        _c("evaluated_at", TS, "UTC"),
    ),
)

LAKE: tuple[Table, ...] = (SPANS, TURNS, SESSIONS, CHATS, CHAT_TURNS, EVAL_SCORES)
CATALOG: tuple[Table, ...] = (REJECTS_LOG, STAGE_RUNS, WATERMARKS, REPLAY_SESSIONS, AGENT_DEFINITIONS, SCENARIOS,
                              SCENARIO_ROWS, RUN_TESTS, EXECUTIONS, EXECUTION_METRICS)
ALL: dict[str, Table] = {t.name: t for t in LAKE + CATALOG}
