"""What a real model server does to an HTTP agent run, each ending ONE chat with its own reason,
never the run: a tool call that cannot be made (bad_tool_call), tool calls forever (tool_loop), a
conversation past the model's context window (context_overflow), a reply slower than
--turn-timeout (timeout). A scripted OpenAI-compatible server on loopback plays the agent's model
(tests against the real local model: tests/e2e/llm)."""

import json
import threading
from collections import Counter

from cli_helpers import replay, sample_scenario
from llm_stub import StubResponse, llm_stub

OVERFLOW = ("This model's maximum context length is 2048 tokens. However, you requested 2610 tokens "
            "(2210 in the messages, 400 in the completion). Please reduce the length of the messages or completion.")
BEHAVIOURS = ["bad_tool_call", "tool_loop", "context_overflow", "timeout"]


def _model():
    """The script: the first four conversations it sees (by their first user message) misbehave,
    one way each; the others answer."""
    seen: dict[str, str] = {}
    lock = threading.Lock()

    def script(req):
        first = next(m["content"] for m in req["messages"] if m["role"] == "user")
        with lock:
            how = seen.setdefault(first, BEHAVIOURS[len(seen)] if len(seen) < len(BEHAVIOURS) else "ok")
        if how == "bad_tool_call":
            return {"tool_calls": [{"id": "c1", "type": "function",
                                    "function": {"name": "lookup_order", "arguments": "{order_id: A1"}}]}
        if how == "tool_loop":
            return {"tool_calls": [{"name": "lookup_order", "arguments": {"order_id": "A1"}}]}
        if how == "context_overflow":
            return StubResponse(400, {"error": {"message": OVERFLOW, "type": "invalid_request_error"}})
        if how == "timeout":
            return ("sleep", 10.0)
        return {"content": "Your order A1 is on its way."}

    return script, seen


def test_each_misbehaviour_ends_one_chat_with_its_reason(tmp_path):
    d = tmp_path / "d"
    sid = sample_scenario(d)["scenario_id"]
    script, seen = _model()
    with llm_stub(script) as server:
        r = replay(d, "--json", "run", "--scenario", sid, "--agent", server.base_url, "--model", "m",
                   "--turn-timeout", "3", "--retries", "0", "--off-script", "nearest", "--max-failure-rate", "1",
                   timeout=120)
        assert r.returncode == 0, r.stderr
        ex = json.loads(r.stdout)
        assert ex["status"] == "completed" and ex["total_chats"] == 12
        # llama.cpp ignores the tools of a request that does not say tool_choice: it is said
        assert all(q.json.get("tool_choice") == "auto" for q in server.chat_requests)
    rows = json.loads(replay(d, "sql", f"select ended_reason, status, error from chats where execution_id = "
                                       f"'{ex['execution_id']}'", "--format", "json").stdout)
    ended = Counter(r["ended_reason"] for r in rows)
    assert ended == Counter(BEHAVIOURS + ["script_done"] * 8), ended
    by = {r["ended_reason"]: r for r in rows}
    assert "arguments that are not JSON" in by["bad_tool_call"]["error"]
    assert "still asked for tools (lookup_order) after 8 rounds" in by["tool_loop"]["error"]
    assert "maximum context length is 2048" in by["context_overflow"]["error"]
    assert all(by[b]["status"] == "failed" and "\n" not in by[b]["error"] for b in BEHAVIOURS)
