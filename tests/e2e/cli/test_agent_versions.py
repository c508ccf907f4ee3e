"""An agent definition gets a new version only when its system prompt, tools or model change
(issue 12): three nights that replay 1, 2 and 3 sessions of the same agent — the suggested
description counting them differs every night — keep v1; a changed system prompt makes v2.
Through the real entry point: ingest, `replays create`, `scenarios generate`."""

from __future__ import annotations

import json

from cli_helpers import replay
from otlp_helpers import make_line, make_span

T0 = 1_795_000_000_000_000_000  # 2026-11-21, ns
PROJECT = "versions-svc"
PROMPT = "You are Ava, the support assistant of a small shop. Be concise."
TOOL = json.dumps({"type": "function", "function": {"name": "lookup_order", "description": "an order by id",
                                                     "parameters": {"type": "object",
                                                                    "properties": {"order_id": {"type": "string"}}}}})


def turn(trace: int, session: str, prompt: str) -> list[dict]:
    """One OpenInference turn of ``session``: a CHAIN root and the LLM call (prompt, model, tool)."""
    start = T0 + trace * 10_000_000_000
    root, llm = trace * 100 + 1, trace * 100 + 2
    question, answer = f"where is order A{1200 + trace}?", f"order A{1200 + trace} ships tomorrow"
    return [
        make_span(trace, root, None, "agent", start, start + 3_000_000,
                  {"openinference.span.kind": "CHAIN", "input.value": question, "output.value": answer,
                   "session.id": session}),
        make_span(trace, llm, root, "llm", start + 1_000, start + 2_000_000,
                  {"openinference.span.kind": "LLM", "llm.model_name": "gpt-test", "session.id": session,
                   "llm.input_messages.0.message.role": "system", "llm.input_messages.0.message.content": prompt,
                   "llm.input_messages.1.message.role": "user", "llm.input_messages.1.message.content": question,
                   "llm.output_messages.0.message.role": "assistant",
                   "llm.output_messages.0.message.content": answer, "llm.tools.0.tool.json_schema": TOOL}),
    ]


def generate(d, ids: list[str], night: int) -> dict:
    rs = json.loads(replay(d, "--json", "replays", "create", "--project", PROJECT, "--type", "session",
                           "--ids", ",".join(ids)).stdout)
    r = replay(d, "--json", "scenarios", "generate", rs["replay_id"], "--agent-name", "ava",
               "--scenario-name", f"night {night}", "--rows", str(len(ids)))
    assert r.returncode == 0, r.stderr
    return {**json.loads(r.stdout), "suggested": rs["suggestions"]["agent_description"]}


def test_a_new_version_only_when_the_prompt_tools_or_model_change(tmp_path):
    sessions = {f"s{i}": (PROMPT if i < 4 else PROMPT + " Never promise refunds.") for i in range(1, 5)}
    lines = [make_line({"service.name": PROJECT}, turn(i * 10 + k, sid, prompt))
             for i, (sid, prompt) in enumerate(sessions.items(), start=1) for k in range(2)]
    (tmp_path / "spans.jsonl").write_text("\n".join(lines) + "\n")
    d = tmp_path / "d"
    assert replay(d, "ingest", tmp_path / "spans.jsonl").returncode == 0

    nights = [generate(d, ["s1"], 1), generate(d, ["s1", "s2"], 2), generate(d, ["s1", "s2", "s3"], 3)]
    assert len({n["suggested"] for n in nights}) == 3  # "... rebuilt from 1 session", "2 sessions", ...
    assert [n["agent_version"] for n in nights] == [1, 1, 1]

    changed = generate(d, ["s4"], 4)  # the same tools and model, another system prompt
    assert changed["agent_version"] == 2
    rows = json.loads(replay(d, "sql", "select version, system_prompt from agent_definitions where agent_name = 'ava' "
                                       "order by version", "--format", "json").stdout)
    assert [(r["version"], r["system_prompt"]) for r in rows] == [(1, PROMPT), (2, sessions["s4"])]
