"""Example agents for the bundled support-shop sample.

- ``oracle``: answers exactly what production answered, turn by turn, and makes exactly the
  tool calls production made (answered by Replay's recorded tools). It looks production up by
  ``metadata["origin_id"]`` in the catalog. A replay against it must match production 100%.
- ``agent``: a small rule-based "development build" of the support agent: it reads the
  user's message, calls the shop's tools through ``input.tools`` and writes its own answer;
  ``agent_v2``: the same build after a prompt change (see ``PROMPTS``).

Both take Future AGI's chat-simulation callback shape: an input with ``messages``,
``new_message``, ``turn_index``, ``metadata`` and ``tools``; they return an answer (a str or
an ``AgentResponse``).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from models.simulate import AgentResponse


@lru_cache(maxsize=8)
def _production(data_dir: str) -> dict[str, list[dict[str, Any]]]:
    """{origin id (session or trace): production turns in order} from the catalog (read-only)."""
    from models.settings import load_settings
    from tasks.store import catalog

    with catalog.reader(load_settings(data_dir=data_dir)) as con:
        rows = con.execute("select session_id, trace_id, turn_index, assistant_message, "
                           "to_json(tool_calls)::varchar from turns order by session_id, turn_index").fetchall()
    out: dict[str, list[dict[str, Any]]] = {}
    for session_id, trace_id, _i, answer, calls in rows:
        turn = {"answer": answer, "tool_calls": json.loads(calls) if calls else []}
        out.setdefault(trace_id, []).append(turn)
        if session_id:
            out.setdefault(session_id, []).append(turn)
    return out


async def oracle(input) -> AgentResponse:
    turns = _production(input.metadata["replay_data_dir"]).get(input.metadata["origin_id"], [])
    if input.turn_index >= len(turns):
        return AgentResponse(content=None)
    turn = turns[input.turn_index]
    calls, responses = [], []
    for c in turn["tool_calls"]:
        args = c.get("arguments")
        result = await input.tools.call(c["name"], args) if input.tools is not None else None
        calls.append({"id": c.get("id"), "name": c["name"], "arguments": args})
        responses.append({"id": c.get("id"), "name": c["name"], "result": result})
    return AgentResponse(content=turn["answer"], tool_calls=calls, tool_responses=responses)


# --------------------------------------------------------------------------- the dev build
_ORDER = re.compile(r"\bA\d{4}\b")


def _call_args(text: str) -> dict[str, Any]:
    m = _ORDER.search(text)
    return {"order_id": m.group(0)} if m else {}


# The dev build's "system prompt": the rules it follows. The demo replays v1, then v2 — a
# prompt change that fixes one production failure (refunds asked for were only offered, now
# they are issued) and breaks another behaviour (it stops handing over to a human).
PROMPTS = {
    "v1": {"issue_refunds": False, "hand_over": True},
    "v2": {"issue_refunds": True, "hand_over": False},
}


def make_agent(prompt: dict[str, bool]):
    async def support_agent(input) -> AgentResponse:
        return await _answer(input, prompt)

    return support_agent


async def _answer(input, prompt: dict[str, bool]) -> AgentResponse:
    """A rule-based support agent: the shop's tools, answers in its own words."""
    text = (input.new_message.get("content") or "").strip()
    low = text.lower()
    tools = input.tools
    calls: list[dict[str, Any]] = []

    async def use(name: str, args: dict[str, Any]) -> Any:
        result = await tools.call(name, args) if tools is not None else {"error": "no tools"}
        calls.append({"name": name, "arguments": args, "result": result})
        return result

    order = _call_args(text)
    # the order this conversation is about, when this message names none (a refund asked for later)
    earlier = next((found for m in reversed(input.messages) if m.get("role") == "user"
                    for found in [_call_args(m.get("content") or "")] if found), {})
    wants_human = any(w in low for w in ("human", "agent", "person", "manager", "someone"))
    if wants_human and prompt["hand_over"]:
        await use("transfer_to_human", {"reason": text[:120]})
        answer = "I've passed this to a colleague from our support team; they will contact you shortly."
    elif any(w in low for w in ("refund", "money back", "charged")) and (order or earlier):
        order = order or earlier
        info = await use("lookup_order", order)
        if prompt["issue_refunds"]:
            total = info.get("total") if isinstance(info, dict) else None
            done = await use("issue_refund", {**order, **({"amount": total} if total is not None else {})})
            answer = f"Done: I've issued the refund for order {order['order_id']} ({_short(done)})."
        else:
            policy = await use("get_refund_policy", {})
            answer = (f"I've checked order {order['order_id']}. Under our policy ({_short(policy)}) "
                      "you can get a refund; shall I start it for you?")
    elif order:
        info = await use("lookup_order", order)
        answer = f"Here is what I found for order {order['order_id']}: {_short(info)}."
    elif wants_human:
        answer = "I can sort this out myself — what exactly do you need?"
    elif any(w in low for w in ("return", "policy", "exchange")):
        policy = await use("get_refund_policy", {})
        answer = f"Our return policy: {_short(policy)}."
    elif any(w in low for w in ("looking for", "do you have", "recommend", "search")):
        found = await use("search_products", {"query": text[:80]})
        answer = f"These might suit you: {_short(found)}."
    elif any(w in low for w in ("thank", "thx", "great", "perfect", "bye")):
        answer = "You're welcome! Anything else I can help with?"
    else:
        answer = "Could you tell me a bit more, for example your order number?"
    return AgentResponse(content=answer, tool_calls=[{"name": c["name"], "arguments": c["arguments"]} for c in calls],
                         tool_responses=[{"name": c["name"], "result": c["result"]} for c in calls],
                         metadata={"usage": {"input_tokens": len(text.split()) * 2, "output_tokens": len(answer.split())}})


agent = make_agent(PROMPTS["v1"])  # the dev build
agent_v2 = make_agent(PROMPTS["v2"])  # the same build with the changed prompt


def _short(value: Any, limit: int = 400) -> str:
    """A tool's answer in words: ``{"status": "shipped", "eta": "2026-11-22"}`` -> "status
    shipped, eta 2026-11-22" (lists and nested objects likewise), cut at ``limit``."""
    text = _words(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _words(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    if isinstance(value, dict):
        return ", ".join(f"{k.replace('_', ' ')} {_words(v)}" for k, v in value.items() if v not in (None, "", []))
    if isinstance(value, list):
        return "; ".join(f"({_words(v)})" if isinstance(v, dict) else _words(v) for v in value)
    return str(value).lower() if isinstance(value, bool) else str(value)
