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

A declaration is a text: a header (``grain``, ``home``, ``key``; optionally ``view``,
``view_first``, ``enforce_key``), a line ``---``, then one line per column:
``name  type[,flag...]  doc`` (see :func:`columns`).

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


# the types a declaration names, and the struct fields that hold JSON text (their views type them JSON)
TYPES: dict[str, pa.DataType] = {
    "str": STR, "i32": I32, "i64": I64, "f64": F64, "bool": BOOL, "ts": TS, "json": STR, "str[]": pa.list_(STR),
    "tool_calls": pa.list_(TOOL_CALL), "chat_tool_calls": pa.list_(CHAT_TOOL_CALL),
}
JSON_STRUCT_FIELDS = ("arguments",)
FLAGS = ("required", "internal")


def _column(line: str) -> Column:
    name, typ, doc = line.split(None, 2)
    kind, *flags = typ.split(",")
    if kind not in TYPES or any(f not in FLAGS for f in flags):
        raise ValueError(f"column {name}: unknown type or flag in {typ!r}")
    t = TYPES[kind]
    struct = t.value_type if pa.types.is_list(t) and pa.types.is_struct(t.value_type) else None
    json_fields = [f.name for f in struct if f.name in JSON_STRUCT_FIELDS] if struct is not None else []
    return Column(name, t, doc, nullable="required" not in flags, json=kind == "json", internal="internal" in flags,
                  view=list_of_structs_with_json(name, struct, *json_fields) if json_fields else None)


def columns(spec: str) -> tuple[Column, ...]:
    """Columns from a text table, one a line: ``name  type[,flag...]  doc``. Types: the keys of
    :data:`TYPES` (``json``: text holding a JSON document); flags: ``required`` (NOT NULL in
    the catalog), ``internal`` (lake bookkeeping, hidden from the view). A list of structs with
    JSON fields gets the view expression that types them JSON."""
    return tuple(_column(line) for line in spec.strip().splitlines())


def table(name: str, spec: str) -> Table:
    """A table from its declaration text (module doc): ``field: value`` header lines (an
    indented line continues the one before), ``---``, the columns."""
    header, _, body = spec.partition("\n    ---\n")
    fields: dict[str, str] = {}
    last = ""
    for line in header.strip("\n").splitlines():
        if line.startswith("        ") and last:
            fields[last] += " " + line.strip()
            continue
        last, _, value = line.strip().partition(":")
        fields[last] = value.strip()
    home = fields.pop("home")
    if home not in ("lake", "catalog"):
        raise ValueError(f"table {name}: home must be lake or catalog, not {home!r}")
    return Table(name, fields.pop("grain"), home, key=tuple(fields.pop("key").split()), columns=columns(body),
                 view_first=tuple(fields.pop("view_first", "").split()), view=fields.pop("view", None),
                 enforce_key=fields.pop("enforce_key", "true") == "true")


# --------------------------------------------------------------------------- the lake
SPANS = table("spans", """
    grain: one span (the lake holds each (trace_id, span_id) once: extract deduplicates)
    home: lake
    key: trace_id span_id
    view_first: trace_id span_id parent_span_id name kind start_time end_time duration_ms status
        status_message session_id user_id project attributes resource source ingested_at otel_kind
        events scope_name convention location
    ---
    trace_id        str   32 lowercase hex
    span_id         str   16 lowercase hex
    parent_span_id  str   NULL for a root
    name            str   the span's name
    kind            str   LLM, TOOL, AGENT, CHAIN, ... as the span says; UNKNOWN when it says nothing
    otel_kind       str   INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER, UNSPECIFIED
    start_time      ts    UTC
    end_time        ts    UTC
    duration_ms     f64   end_time - start_time
    status          str   ok, error, unset
    status_message  str   the status description
    session_id      str   the session id the span carries (attribute or resource)
    user_id         str   the user id the span carries
    project         str   the project it was ingested into
    attributes      json  every attribute, flat dotted keys
    resource        json  the resource's attributes
    events          json  the span's events; NULL when none
    scope_name      str   the instrumentation scope
    convention      str   openinference, genai, traceai, ... or none
    source          str   otlp_file, phoenix, ...
    location        str   file:line or URL#cursor
    ingested_at     ts    when extract wrote it
    model           str   LLM span: the model
    input_tokens    i64   LLM span: prompt tokens
    output_tokens   i64   LLM span: completion tokens
    input_text      str   the span's input value
    output_text     str   the span's output value
    user_message    str   LLM span: the last user message it received
    assistant_text  str   LLM span: the last text it answered
    system_prompt   str   LLM span: its system prompt
    tool_calls      json  LLM span: the tool calls it requested
    tool_results    json  LLM span: the tool results it received
    tools           json  LLM span: the tools it was offered
    tool_name       str   TOOL span: the tool
    tool_call_id    str   TOOL span: the call's id
    tool_arguments  str   TOOL span: the call's arguments (text)
    tool_result     str   TOOL span: the call's result (text)
    notes           str   what a column could not hold as the span said it (an integer beyond 64 bits written as is, a token count out of range left out), one line; NULL when nothing
""")

TURNS = table("turns", """
    grain: one version of a trace's turn (the view keeps the latest version, tombstones hidden)
    home: lake
    key: trace_id
    view_first: session_id turn_index trace_id project started_at ended_at latency_ms user_message
        assistant_message tool_calls llm_calls input_tokens output_tokens model status error
    ---
    session_id         str            NULL for a trace outside any session
    turn_index         i32            0-based, by start within the session; 0 for a lone trace
    trace_id           str            the trace this turn is
    project            str            the root span's project, else the most common
    user_id            str            the root's user id, else the first one
    started_at         ts             the root span's start
    ended_at           ts             the root span's end
    latency_ms         f64            ended_at - started_at
    user_message       str            what the user said
    assistant_message  str            what the agent answered
    tool_calls         tool_calls     every tool call in order, arguments as JSON
    llm_calls          i32            model calls
    input_tokens       i64            prompt tokens of its model calls
    output_tokens      i64            completion tokens of its model calls
    model              str            the last model called
    status             str            ok or error
    error              str            the failed span and its message, when the turn failed
    error_count        i32            failed spans (a recovered tool failure included)
    span_count         i32            spans of the trace
    root_span_id       str            the root span
    root_name          str            the root span's name
    system_prompt      str            the first model call's system prompt
    conventions        str            the conventions of its spans, comma separated
    version            i64,internal   merge-on-read: the latest version wins
    sessionized_at     ts             when sessionize wrote this version
    deleted            bool,internal  a tombstone
""")

SESSIONS = table("sessions", """
    grain: one version of a session (the view keeps the latest version, tombstones hidden)
    home: lake
    key: session_id
    view_first: session_id project user_id started_at ended_at turn_count input_tokens output_tokens
        tool_call_count error_count first_user_message last_assistant_message
    ---
    session_id              str            the session
    project                 str            the most common project of its turns
    user_id                 str            the first user id of its turns
    started_at              ts             its first turn's start
    ended_at                ts             its last turn's end
    duration_ms             f64            ended_at - started_at
    turn_count              i32            turns
    input_tokens            i64            prompt tokens of its turns
    output_tokens           i64            completion tokens of its turns
    tool_call_count         i32            tool calls of its turns
    error_count             i32            failed spans of its turns (a recovered tool failure included)
    first_user_message      str            the first thing the user said
    last_assistant_message  str            the last thing the agent answered
    version                 i64,internal   merge-on-read: the latest version wins
    sessionized_at          ts             when sessionize wrote this version
    deleted                 bool,internal  a tombstone: every trace has left the session
""")

CHATS = table("chats", """
    grain: one replayed conversation (a call execution)
    home: lake
    key: chat_id
    ---
    chat_id          str  the conversation
    execution_id     str  the execution it ran in
    scenario_id      str  the scenario
    row_index        i32  the scenario row
    repetition       i32  0-based, --repeat
    origin_id        str  the production session or trace of the row
    status           str  completed or failed
    ended_reason     str  script_done, user_ended, max_turns, error, timeout, off_script, context_overflow, tool_loop, bad_tool_call
    divergence_turn  i32  the first turn whose answer diverged from production's
    turn_count       i32  turns
    input_tokens     i64  prompt tokens
    output_tokens    i64  completion tokens
    avg_latency_ms   f64  mean turn latency
    error            str  why it failed
    started_at       ts   UTC
    ended_at         ts   UTC
""")

CHAT_TURNS = table("chat_turns", """
    grain: one turn of a replayed conversation, with production's answer beside it
    home: lake
    key: chat_id turn_index
    view_first: chat_id turn_index user_message assistant_message tool_calls latency_ms input_tokens
        output_tokens original_assistant_message original_tool_calls user_source similarity attempts
        error
    ---
    chat_id                     str              the conversation
    execution_id                str              the execution
    turn_index                  i32              0-based
    user_message                str              what the (original or simulated) user said
    assistant_message           str              what the agent answered
    tool_calls                  chat_tool_calls  the agent's tool calls and where each answer came from
    latency_ms                  f64              the agent's time
    input_tokens                i64              prompt tokens
    output_tokens               i64              completion tokens
    original_assistant_message  str              production's answer
    original_tool_calls         tool_calls       production's tool calls
    user_source                 str              original or simulated
    similarity                  f64              the answer against production's, 0..1
    attempts                    i32              calls of the agent (retries included)
    error                       str              why the turn failed
""")

EVAL_SCORES = table("eval_scores", """
    grain: one (chat, turn or NULL, evaluator) score of the latest evaluation of an execution
    home: lake
    key: execution_id chat_id turn_index evaluator
    view_first: chat_id turn_index evaluator evaluator_version value label passed reason source error
        execution_id
    ---
    execution_id       str   the execution
    chat_id            str   the conversation
    turn_index         i32   NULL for a chat-level score
    evaluator          str   the evaluator's name
    evaluator_version  str   its version
    value              f64   on the evaluator's own scale
    label              str   a label, when it gives one
    passed             bool  NULL when pass/fail does not apply
    reason             str   why
    source             str   heuristic, llm:<model>, metric, custom
    error              str   the evaluator failed here: a failure row
    evaluated_at       ts    UTC
    detail             json  what the evaluator saw (similarity, facts, tool calls, ...)
""")

# --------------------------------------------------------------------------- the catalog
REJECTS_LOG = table("rejects_log", """
    grain: one rejected input record (reject_id = hash of source, position, raw, reason)
    home: catalog
    key: reject_id
    view: rejects
    view_first: source location reason raw rejected_at
    ---
    reject_id    str,required  the same bad record gets the same id
    source       str,required  otlp_file, phoenix, ...
    location     str,required  file:line or URL#cursor
    reason       str,required  one line
    raw          str           the record, truncated
    rejected_at  ts,required   UTC
""")

STAGE_RUNS = table("stage_runs", """
    grain: one stage run (extract, sessionize, phoenix pull): what it did, as JSON
    home: catalog
    key: run_id
    enforce_key: false
    ---
    run_id       str,required  the run
    stage        str,required  the stage
    finished_at  ts,required   UTC
    info         json          its counts
""")

WATERMARKS = table("watermarks", """
    grain: one (source, key): where the next incremental pull or sessionize starts
    home: catalog
    key: source key
    ---
    source      str,required  phoenix, sessionize, ...
    key         str,required  the URL and project, or what the value measures
    value       str           the cursor or time
    updated_at  ts,required   UTC
""")

REPLAY_SESSIONS = table("replay_sessions", """
    grain: one replay session (what to replay, and where it is in its life)
    home: catalog
    key: replay_id
    ---
    replay_id      str,required    the replay session
    project        str,required    the project replayed
    replay_type    str,required    session or trace
    ids            str[],required  the selected session or trace ids
    select_all     bool,required   --all
    where_sql      str             the --where predicate, when used
    state          str,required    INIT, GENERATING, COMPLETED, FAILED
    state_reason   str             why FAILED
    transitions    json,required   [{"state": ..., "at": ...}, ...]
    agent_name     str             the agent definition
    scenario_name  str             the scenario
    suggestions    json            suggested names and descriptions
    created_at     ts,required     UTC
    updated_at     ts,required     UTC
    run_test_id    str             the run test made from it
""")

AGENT_DEFINITIONS = table("agent_definitions", """
    grain: one agent definition version (a new version only when something changed)
    home: catalog
    key: agent_name version
    ---
    agent_name     str,required  the agent
    version        i32,required  1, 2, ...
    project        str           the project it came from
    description    str           what it does
    system_prompt  str           its system prompt
    tools          json          its tools, OpenAI function format
    model          str           its model
    agent_type     str,required  text, ...
    created_at     ts,required   UTC
""")

SCENARIOS = table("scenarios", """
    grain: one scenario
    home: catalog
    key: scenario_id
    ---
    scenario_id    str,required  the scenario
    scenario_name  str,required  its name
    replay_id      str           the replay session it came from
    project        str           the project
    agent_name     str,required  the agent definition
    agent_version  i32,required  its version
    source         str,required  session_replay, trace_replay, import
    graph          json          the conversation graph
    row_count      i32,required  rows
    writer         str           offline or llm:<model>
    redactions     json          {"email": n, ...} when --redact
    failures       json          transcripts no row could be written for, with reasons
    created_at     ts,required   UTC
    derived_from   str           the scenario it was imported from as a new one (scenarios import --as-new)
""")

SCENARIO_ROWS = table("scenario_rows", """
    grain: one scenario row
    home: catalog
    key: scenario_id row_index
    ---
    scenario_id          str,required    the scenario
    row_index            i32,required    0-based
    origin_id            str,required    the production session or trace
    persona              json,required   the simulated user
    situation            str,required    the user's situation
    outcome              str,required    the expected outcome
    conversation_branch  str,required    the graph branch
    branch_category      str,required    its category
    user_turns           str[],required  the user's turns, verbatim
    expected_turns       json,required   the original answers and tool calls
    custom               json            custom columns
""")

RUN_TESTS = table("run_tests", """
    grain: one run test (a scenario against an agent, with its options)
    home: catalog
    key: run_test_id
    ---
    run_test_id    str,required   the run test
    name           str,required   its name
    scenario_id    str,required   the scenario
    agent_name     str            the agent definition
    agent_version  i32            its version
    mode           str,required   replay, simulate, hybrid
    tool_mode      str,required   recorded, live
    agent_ref      str,required   module:function or http(s)://...
    replay_id      str            the replay session
    options        json,required  the run options
    created_at     ts,required    UTC
""")

EXECUTIONS = table("executions", """
    grain: one execution of a run test
    home: catalog
    key: execution_id
    ---
    execution_id     str,required  the execution
    run_test_id      str,required  the run test
    agent_ref        str,required  module:function or http(s)://...
    started_at       ts,required   UTC
    ended_at         ts            UTC
    status           str,required  running, completed, failed, interrupted
    total_chats      i32,required  chats to run
    completed_chats  i32,required  chats completed
    failed_chats     i32,required  chats failed
    error            str           why it failed
    owner_pid        i64           the process that runs it (while running): its pid
    owner_host       str           ... its host
    owner_start      i64           ... its start time (clock ticks since boot: a reused pid is another process)
    evaluator_refs   str[]         the custom evaluators (module:Class) it was last scored with
""")

EVALUATORS = table("evaluators", """
    grain: one evaluator as it last described itself (how its scores become a metric)
    home: catalog
    key: name
    ---
    name        str,required   the evaluator (eval_scores.evaluator)
    version     str,required   its version
    spec        json,required  its metric: level, aggregation, unit, direction, threshold, minimum effect (MetricSpec)
    updated_at  ts,required    UTC
""")

EXECUTION_METRICS = table("execution_metrics", """
    grain: one evaluated execution; one more column per metric (avg_<evaluator>, passk_<evaluator> with repetitions; added as met, by tasks/evaluate/stage.py)
    home: catalog
    key: execution_id
    ---
    execution_id         str,required  the execution
    total_chats          i32           chats
    completed_chats      i32           chats completed
    completion_pct       f64           0..100: share of the chats completed
    failed_pct           f64           0..100: share of the chats failed
    avg_output_tokens    f64           per chat
    avg_chat_latency_ms  f64           per chat
    avg_turn_count       f64           per chat
    avg_csat             f64           1..10
    evaluated_at         ts            UTC
""")

LAKE: tuple[Table, ...] = (SPANS, TURNS, SESSIONS, CHATS, CHAT_TURNS, EVAL_SCORES)
CATALOG: tuple[Table, ...] = (REJECTS_LOG, STAGE_RUNS, WATERMARKS, REPLAY_SESSIONS, AGENT_DEFINITIONS, SCENARIOS,
                              SCENARIO_ROWS, RUN_TESTS, EXECUTIONS, EVALUATORS, EXECUTION_METRICS)
ALL: dict[str, Table] = {t.name: t for t in LAKE + CATALOG}
