"""The Parquet lake: table schemas, atomic part files, Hive day partitions.

Layout: ``$REPLAY_DATA_DIR/lake/<table>/day=YYYY-MM-DD/part-*.parquet``.
A part file is written under a hidden temporary name, fsync'ed, then renamed: a reader
(or a crash) never sees half a file. Readers glob ``*.parquet`` only.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

TS = pa.timestamp("us")

SPANS = pa.schema([
    ("trace_id", pa.string()), ("span_id", pa.string()), ("parent_span_id", pa.string()),
    ("name", pa.string()), ("kind", pa.string()), ("otel_kind", pa.string()),
    ("start_time", TS), ("end_time", TS), ("duration_ms", pa.float64()),
    ("status", pa.string()), ("status_message", pa.string()),
    ("session_id", pa.string()), ("user_id", pa.string()), ("project", pa.string()),
    ("attributes", pa.string()), ("resource", pa.string()), ("events", pa.string()),
    ("scope_name", pa.string()), ("convention", pa.string()),
    ("source", pa.string()), ("location", pa.string()), ("ingested_at", TS),
    # conversation facts, derived once at extract so sessionize never re-reads attributes
    ("model", pa.string()), ("input_tokens", pa.int64()), ("output_tokens", pa.int64()),
    ("input_text", pa.string()), ("output_text", pa.string()),
    ("user_message", pa.string()), ("assistant_text", pa.string()), ("system_prompt", pa.string()),
    ("tool_calls", pa.string()), ("tool_results", pa.string()), ("tools", pa.string()),
    ("tool_name", pa.string()), ("tool_call_id", pa.string()),
    ("tool_arguments", pa.string()), ("tool_result", pa.string()),
])

TOOL_CALL = pa.struct([("id", pa.string()), ("name", pa.string()), ("arguments", pa.string()),
                       ("result", pa.string()), ("status", pa.string())])

TURNS = pa.schema([
    ("session_id", pa.string()), ("turn_index", pa.int32()), ("trace_id", pa.string()),
    ("project", pa.string()), ("user_id", pa.string()),
    ("started_at", TS), ("ended_at", TS), ("latency_ms", pa.float64()),
    ("user_message", pa.string()), ("assistant_message", pa.string()),
    ("tool_calls", pa.list_(TOOL_CALL)), ("llm_calls", pa.int32()),
    ("input_tokens", pa.int64()), ("output_tokens", pa.int64()), ("model", pa.string()),
    ("status", pa.string()), ("error", pa.string()), ("error_count", pa.int32()),
    ("span_count", pa.int32()), ("root_span_id", pa.string()), ("root_name", pa.string()),
    ("system_prompt", pa.string()), ("conventions", pa.string()),
    ("version", pa.int64()), ("sessionized_at", TS), ("deleted", pa.bool_()),
])

SESSIONS = pa.schema([
    ("session_id", pa.string()), ("project", pa.string()), ("user_id", pa.string()),
    ("started_at", TS), ("ended_at", TS), ("duration_ms", pa.float64()),
    ("turn_count", pa.int32()), ("input_tokens", pa.int64()), ("output_tokens", pa.int64()),
    ("tool_call_count", pa.int32()), ("error_count", pa.int32()),
    ("first_user_message", pa.string()), ("last_assistant_message", pa.string()),
    ("version", pa.int64()), ("sessionized_at", TS), ("deleted", pa.bool_()),
])

CHAT_TOOL_CALL = pa.struct([("id", pa.string()), ("name", pa.string()), ("arguments", pa.string()),
                            ("result", pa.string()), ("status", pa.string()), ("source", pa.string()),
                            ("matched_turn", pa.int32())])

CHATS = pa.schema([
    ("chat_id", pa.string()), ("execution_id", pa.string()), ("scenario_id", pa.string()),
    ("row_index", pa.int32()), ("repetition", pa.int32()), ("origin_id", pa.string()),
    ("status", pa.string()), ("ended_reason", pa.string()), ("divergence_turn", pa.int32()),
    ("turn_count", pa.int32()), ("input_tokens", pa.int64()), ("output_tokens", pa.int64()),
    ("avg_latency_ms", pa.float64()), ("error", pa.string()), ("started_at", TS), ("ended_at", TS),
])

CHAT_TURNS = pa.schema([
    ("chat_id", pa.string()), ("execution_id", pa.string()), ("turn_index", pa.int32()),
    ("user_message", pa.string()), ("assistant_message", pa.string()),
    ("tool_calls", pa.list_(CHAT_TOOL_CALL)), ("latency_ms", pa.float64()),
    ("input_tokens", pa.int64()), ("output_tokens", pa.int64()),
    ("original_assistant_message", pa.string()), ("original_tool_calls", pa.list_(TOOL_CALL)),
    ("user_source", pa.string()), ("similarity", pa.float64()), ("attempts", pa.int32()), ("error", pa.string()),
])

EVAL_SCORES = pa.schema([
    ("execution_id", pa.string()), ("chat_id", pa.string()), ("turn_index", pa.int32()),
    ("evaluator", pa.string()), ("evaluator_version", pa.string()), ("value", pa.float64()),
    ("label", pa.string()), ("passed", pa.bool_()), ("reason", pa.string()), ("source", pa.string()),
    ("error", pa.string()), ("evaluated_at", TS),
])

TABLES = {"spans": SPANS, "turns": TURNS, "sessions": SESSIONS, "chats": CHATS, "chat_turns": CHAT_TURNS,
          "eval_scores": EVAL_SCORES}


def table_dir(lake: Path, table: str) -> Path:
    return lake / table


def table_glob(lake: Path, table: str) -> str:
    return str(table_dir(lake, table) / "*" / "*.parquet")


def has_files(lake: Path, table: str) -> bool:
    d = table_dir(lake, table)
    return d.is_dir() and any(d.glob("*/*.parquet"))


def list_files(lake: Path, table: str) -> list[Path]:
    return sorted(table_dir(lake, table).glob("*/*.parquet"))


def write_atomic(table: pa.Table, path: Path, compression: str = "zstd") -> Path:
    """Write ``table`` to ``path`` so that no reader ever sees a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        pq.write_table(table, tmp, compression=compression, row_group_size=32_768)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def publish(staged: Path, lake: Path, table: str, day: str, name: str) -> Path:
    """Move a staged (already complete) part into the lake with one atomic rename."""
    dest = table_dir(lake, table) / f"day={day}" / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, dest)
    return dest


def write_partitioned(rows: pa.Table, lake: Path, table: str, day_column: str, name: str) -> list[Path]:
    """Write ``rows`` into the day partitions of ``table``, one atomic part per day."""
    if rows.num_rows == 0:
        return []
    days = rows.column(day_column).cast(pa.date32())
    out = []
    for day in sorted({d for d in days.to_pylist() if d is not None}):
        mask = pc.equal(days, pa.scalar(day, pa.date32()))
        part = rows.filter(mask)
        out.append(write_atomic(part, table_dir(lake, table) / f"day={day.isoformat()}" / name))
    return out
