"""OTLP/JSON lines of a day of a small support agent's sessions (OpenInference), one file a day.

Small spans, so that a year of daily files is quick to write and to ingest: an AGENT root, one
LLM span and 0-2 TOOL spans a turn (~3% of the tools fail), 1-4 turns a session; 5% of a day's
sessions are the previous day's sessions going on (their turns and sessions get new versions in
the previous day's partition). Deterministic for a (day, seed). Used by
tests/bench/bench_compact.py and the compaction tests.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

BASE = datetime(2025, 1, 1, 8, tzinfo=timezone.utc)
TOOLS = ["lookup_order", "get_shipping_status", "search_knowledge_base", "issue_refund", "transfer_to_human"]
MODELS = ["gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06", "claude-3-5-haiku"]
WORDS = ("order delivery package refund invoice account address payment card customer tracking status delayed "
         "arrived damaged missing item return label exchange size colour replacement credit coupon").split()


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
