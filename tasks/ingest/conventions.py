"""Semantic conventions: what a span says about the conversation, detected per span.

Pure functions over a RawSpan. Three conventions (a trace may mix them):
- OpenInference: ``openinference.span.kind``, flattened ``llm.input_messages.{i}.message.*``,
  ``tool.name``, ``input.value``/``output.value``, ``llm.token_count.*``, ``session.id``.
- OTel GenAI: ``gen_ai.operation.name``, ``gen_ai.input.messages``/``gen_ai.output.messages``
  as JSON with parts, ``execute_tool`` spans, ``gen_ai.usage.*``, ``gen_ai.conversation.id``;
  and the deprecated forms (span events ``gen_ai.user.message``/``gen_ai.choice``, and the
  flattened ``gen_ai.prompt.{i}.*``/``gen_ai.completion.{i}.*``).
- Future AGI traceAI: ``fi.span.kind``/``gen_ai.span.kind``, flattened
  ``gen_ai.input.messages.{i}.message.*``.

``span_facts`` returns the small facts the sessionizer needs, so that it never has to
re-read the (large) attributes.
"""

from __future__ import annotations

from typing import Any

from models.spans import RawSpan
from tasks.common.text import I64_MAX, json_bytes, json_value

SPAN_KINDS = {"LLM", "TOOL", "AGENT", "CHAIN", "RETRIEVER", "EMBEDDING", "RERANKER",
              "GUARDRAIL", "EVALUATOR", "PROMPT", "UNKNOWN"}
_GENAI_OPERATION_KINDS = {
    "chat": "LLM", "text_completion": "LLM", "generate_content": "LLM", "completion": "LLM",
    "execute_tool": "TOOL", "invoke_agent": "AGENT", "create_agent": "AGENT",
    "embeddings": "EMBEDDING", "embedding": "EMBEDDING", "retrieval": "RETRIEVER",
}
_FLAT_MESSAGE_PREFIXES = (
    # (prefix, direction)
    ("llm.input_messages.", "in"),
    ("llm.output_messages.", "out"),
    ("gen_ai.input.messages.", "in"),
    ("gen_ai.output.messages.", "out"),
    ("gen_ai.prompt.", "in"),
    ("gen_ai.completion.", "out"),
)
_SESSION_KEYS = ("session.id", "gen_ai.conversation.id", "conversation.id", "thread.id")
_USER_KEYS = ("user.id", "enduser.id", "gen_ai.user.id")


def _s(v: Any) -> str | None:
    """A value as text (JSON for structures), None for empty."""
    if v is None or v == "":
        return None
    if isinstance(v, str):
        return v
    return json_bytes(v).decode()


def _count(v: Any, what: str, notes: list[str]) -> int | None:
    """A token count: a whole number in 0..2^63-1 (a float is cut to its whole part). Anything
    else is None, with a note when the span said something (the attribute keeps it as it came)."""
    if v is None or isinstance(v, bool):
        return None
    try:
        n: int | None = int(v)
    except (TypeError, ValueError):
        try:
            n = int(float(v))
        except (TypeError, ValueError, OverflowError):
            n = None
    except OverflowError:  # int(float('inf'))
        n = None
    if n is not None and 0 <= n <= I64_MAX:
        return n
    notes.append(f"{what} {str(v)[:40]!r} is not a count in 0..2^63-1: left out (the attribute has it)")
    return None


# --------------------------------------------------------------------------- messages
def _nest_flat(flat: dict[str, Any]) -> Any:
    """{'0.message.role': 'user', ...} -> nested dicts/lists."""
    root: dict[str, Any] = {}
    for key, value in flat.items():
        node = root
        parts = key.split(".")
        for p in parts[:-1]:
            nxt = node.get(p)
            if not isinstance(nxt, dict):
                nxt = {}
                node[p] = nxt
            node = nxt
        node[parts[-1]] = value
    return root


def _indexed(d: Any) -> list[Any]:
    """A dict with numeric keys -> list ordered by index (other keys dropped)."""
    if isinstance(d, list):
        return d
    if not isinstance(d, dict):
        return []
    items = [(int(k), v) for k, v in d.items() if isinstance(k, str) and k.isdigit()]
    return [v for _, v in sorted(items, key=lambda kv: kv[0])]


def _text_of_content(content: Any) -> str | None:
    if content is None:
        return None
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts / GenAI parts
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict):
                t = part.get("text") if "text" in part else part.get("content")
                if isinstance(t, str) and part.get("type", "text") in ("text", "input_text", "output_text"):
                    texts.append(t)
        return "\n".join(texts) if texts else None
    return _s(content)


def _norm_tool_call(tc: Any) -> dict[str, Any] | None:
    if not isinstance(tc, dict):
        return None
    tc = tc.get("tool_call", tc)
    fn = tc.get("function") if isinstance(tc.get("function"), dict) else {}
    name = fn.get("name") or tc.get("name")
    args = fn.get("arguments") if "arguments" in fn else tc.get("arguments")
    return {"id": _s(tc.get("id")), "name": _s(name), "arguments": _s(args)}


def _norm_flat_message(m: Any) -> dict[str, Any] | None:
    """One message of the flattened OpenInference / traceAI / OpenLLMetry forms."""
    if not isinstance(m, dict):
        return None
    m = m.get("message", m)
    if not isinstance(m, dict):
        return None
    content = m.get("content")
    if content is None and "contents" in m:
        texts = []
        for c in _indexed(m["contents"]):
            c = c.get("message_content", c) if isinstance(c, dict) else c
            if isinstance(c, dict) and c.get("text") is not None and c.get("type", "text") == "text":
                texts.append(str(c["text"]))
        content = "\n".join(texts) if texts else None
    tool_calls = [t for t in (_norm_tool_call(x) for x in _indexed(m.get("tool_calls"))) if t]
    return {
        "role": _s(m.get("role")) or "",
        "content": _text_of_content(content),
        "tool_calls": tool_calls,
        "tool_call_id": _s(m.get("tool_call_id")),
        "name": _s(m.get("name")),
    }


def _parts_message(m: dict[str, Any], role: str) -> dict[str, Any]:
    """A GenAI message with ``parts`` (text, tool_call, tool_call_response)."""
    texts, calls, tool_call_id, result = [], [], None, None
    for part in m["parts"]:
        if not isinstance(part, dict):
            continue
        ptype = part.get("type")
        if ptype == "text" or (ptype is None and "content" in part):
            if part.get("content") is not None:
                texts.append(_s(part.get("content")) or "")
        elif ptype == "tool_call":
            calls.append({"id": _s(part.get("id")), "name": _s(part.get("name")),
                          "arguments": _s(part.get("arguments"))})
        elif ptype == "tool_call_response":
            tool_call_id = _s(part.get("id"))
            result = part.get("response", part.get("result"))
    if role == "tool" and result is not None:
        texts.append(_s(result) or "")
    return {"role": role, "content": "\n".join(texts) if texts else None, "tool_calls": calls,
            "tool_call_id": tool_call_id, "name": _s(m.get("name"))}


def _openai_message(m: dict[str, Any], role: str) -> dict[str, Any]:
    """An OpenAI-style message (content, tool_calls, tool_call_id)."""
    calls = [t for t in (_norm_tool_call(x) for x in m.get("tool_calls") or ()) if t]
    return {"role": role, "content": _text_of_content(m.get("content")), "tool_calls": calls,
            "tool_call_id": _s(m.get("tool_call_id")), "name": _s(m.get("name"))}


def _norm_json_messages(value: Any) -> list[dict[str, Any]]:
    """GenAI JSON messages (with ``parts``) or OpenAI-style JSON messages."""
    data = json_value(value)
    if isinstance(data, dict):
        data = data.get("messages") or [data]
    if not isinstance(data, list):
        return []
    out = []
    for m in data:
        if not isinstance(m, dict):
            continue
        if isinstance(m.get("message"), dict):  # a GenAI choice {index, message, finish_reason}
            m = m["message"]
        role = _s(m.get("role")) or ""
        out.append(_parts_message(m, role) if isinstance(m.get("parts"), list) else _openai_message(m, role))
    return out


_EVENT_ROLES = {"gen_ai.system.message": "system", "gen_ai.user.message": "user",
                "gen_ai.assistant.message": "assistant", "gen_ai.tool.message": "tool"}


def _event_messages(events: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The deprecated GenAI event form: gen_ai.*.message events in, gen_ai.choice out."""
    ins, outs = [], []
    for ev in events:
        name = ev.get("name")
        if name not in _EVENT_ROLES and name != "gen_ai.choice":
            continue
        a = ev.get("attributes") or {}
        body = json_value(a.get("gen_ai.event.content") or a.get("event.body") or a.get("body"))
        if not isinstance(body, dict):
            body = {}
        if name == "gen_ai.choice":
            msg = body.get("message") if isinstance(body.get("message"), dict) else json_value(a.get("message"))
            if not isinstance(msg, dict):
                msg = {"content": a.get("message.content", a.get("content", body.get("content"))),
                       "tool_calls": json_value(a.get("tool_calls")) or body.get("tool_calls")}
            calls = [t for t in (_norm_tool_call(x) for x in msg.get("tool_calls") or ()) if t]
            outs.append({"role": "assistant", "content": _text_of_content(msg.get("content")),
                         "tool_calls": calls, "tool_call_id": None, "name": None})
        else:
            content = a.get("content", body.get("content"))
            calls_raw = json_value(a.get("tool_calls")) or body.get("tool_calls") or ()
            calls = [t for t in (_norm_tool_call(x) for x in calls_raw) if t]
            ins.append({"role": _EVENT_ROLES[name], "content": _text_of_content(json_value(content) if isinstance(content, str) and content[:1] == "[" else content),
                        "tool_calls": calls, "tool_call_id": _s(a.get("id", body.get("id"))),
                        "name": None})
    return ins, outs


def _flat_groups(attrs: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """One pass over the keys: {prefix: {index: {sub key: value}}} for the flattened forms."""
    groups: dict[str, dict[str, dict[str, Any]]] = {}
    for key, value in attrs.items():
        if key.startswith(("llm.", "gen_ai.")):
            for prefix, _direction in _FLAT_MESSAGE_PREFIXES:
                if key.startswith(prefix):
                    idx, _, sub = key[len(prefix):].partition(".")
                    groups.setdefault(prefix, {}).setdefault(idx, {})[sub] = value
                    break
    return groups


def _role(g: dict[str, Any]) -> str:
    r = g.get("message.role", g.get("role"))
    return r if isinstance(r, str) else ""


def _flat_messages(by_index: dict[str, dict[str, Any]], full: bool) -> list[dict]:
    """Messages of one flattened prefix. Unless ``full``, only what the facts need: system
    messages, the last user message and what follows it (a long history is skipped)."""
    order = sorted((int(i), i) for i in by_index if i.isdigit())
    if not full:
        roles = [_role(by_index[i]) for _, i in order]
        last_user = max((n for n, r in enumerate(roles) if r == "user"), default=-1)
        order = [o for n, o in enumerate(order)
                 if n >= last_user or roles[n] in ("system", "developer")]
    out = []
    for _, i in order:
        m = _norm_flat_message(_nest_flat(by_index[i]))
        if m:
            out.append(m)
    return out


def _probe_message(attrs: dict[str, Any], base: str) -> dict[str, Any]:
    """One flattened message read by direct key look-ups (``base`` ends with 'message.')."""
    content = attrs.get(base + "content")
    if content is None and (base + "contents.0.message_content.text") in attrs:
        texts, k = [], 0
        while (base + f"contents.{k}.message_content.text") in attrs or \
                (base + f"contents.{k}.message_content.type") in attrs:
            t = attrs.get(base + f"contents.{k}.message_content.text")
            if t is not None and attrs.get(base + f"contents.{k}.message_content.type", "text") == "text":
                texts.append(str(t))
            k += 1
        content = "\n".join(texts) if texts else None
    calls, j = [], 0
    while True:
        tb = base + f"tool_calls.{j}.tool_call."
        name = attrs.get(tb + "function.name")
        cid = attrs.get(tb + "id")
        if name is None and cid is None:
            break
        calls.append({"id": _s(cid), "name": _s(name), "arguments": _s(attrs.get(tb + "function.arguments"))})
        j += 1
    return {"role": _s(attrs.get(base + "role")) or "", "content": _text_of_content(content),
            "tool_calls": calls, "tool_call_id": _s(attrs.get(base + "tool_call_id")),
            "name": _s(attrs.get(base + "name"))}


def _probe_messages(attrs: dict[str, Any], prefix: str, full: bool) -> list[dict] | None:
    """Fast path for the OpenInference/traceAI form (contiguous indices from 0, every message
    with a role): look keys up instead of scanning them all. None when the form differs."""
    roles = []
    while True:
        r = attrs.get(f"{prefix}{len(roles)}.message.role")
        if r is None:
            break
        roles.append(r if isinstance(r, str) else "")
    if not roles:
        return None
    n = len(roles)
    if full:
        wanted = range(n)
    else:
        last_user = max((i for i, r in enumerate(roles) if r == "user"), default=-1)
        wanted = [i for i in range(n) if i >= last_user or roles[i] in ("system", "developer")]
    return [_probe_message(attrs, f"{prefix}{i}.message.") for i in wanted]


def extract_messages(attrs: dict[str, Any], events: list[Any], full: bool = True) -> tuple[list[dict], list[dict]]:
    """(input messages, output messages) of a model call, whatever the convention.
    With ``full=False`` the input keeps only system messages and the current turn's part."""
    ins: list[dict] = []
    outs: list[dict] = []
    missed = []
    for prefix, direction in _FLAT_MESSAGE_PREFIXES:
        msgs = _probe_messages(attrs, prefix, full or direction == "out")
        if msgs is None:
            missed.append(prefix)
        else:
            (ins if direction == "in" else outs).extend(msgs)
    # the slow path (a key scan) only when a prefix the probe missed is there in another form
    missed_t = tuple(missed)
    if missed_t and any(k.startswith(missed_t) for k in attrs):
        groups = _flat_groups(attrs)
        for prefix, direction in _FLAT_MESSAGE_PREFIXES:
            if prefix in missed and prefix in groups:
                (ins if direction == "in" else outs).extend(_flat_messages(groups[prefix], full or direction == "out"))
    if not ins and "gen_ai.input.messages" in attrs:
        ins = _norm_json_messages(attrs["gen_ai.input.messages"])
    if not outs and "gen_ai.output.messages" in attrs:
        outs = _norm_json_messages(attrs["gen_ai.output.messages"])
    if (not ins or not outs) and events:
        e_in, e_out = _event_messages(events)
        ins = ins or e_in
        outs = outs or e_out
    return ins, outs


def _system_prompt(attrs: dict[str, Any], ins: list[dict]) -> str | None:
    si = attrs.get("gen_ai.system_instructions")
    if si is not None:
        data = json_value(si)
        if isinstance(data, list):
            return _text_of_content(data)
        return _s(si)
    parts = [m["content"] for m in ins if m["role"] in ("system", "developer") and m["content"]]
    return "\n".join(parts) if parts else None


def _declared_tools(attrs: dict[str, Any]) -> list[Any] | None:
    """The tools a model call declared (OpenInference ``llm.tools.{i}.tool.json_schema``,
    GenAI ``gen_ai.tool.definitions``)."""
    tools = []
    while True:
        schema = attrs.get(f"llm.tools.{len(tools)}.tool.json_schema")
        if schema is None:
            break
        tools.append(json_value(schema) if isinstance(schema, str) else schema)
    for key in ("gen_ai.tool.definitions", "llm.tools", "gen_ai.request.tools"):
        if not tools and key in attrs:
            data = json_value(attrs[key])
            if isinstance(data, list):
                tools = data
    return tools or None


# --------------------------------------------------------------------------- facts
def span_kind(attrs: dict[str, Any], name: str) -> tuple[str, str]:
    """(kind, convention) as the span says."""
    k = attrs.get("openinference.span.kind")
    if isinstance(k, str) and k:
        return k.upper(), "openinference"
    for key in ("fi.span.kind", "gen_ai.span.kind"):
        k = attrs.get(key)
        if isinstance(k, str) and k:
            return k.upper(), "traceai"
    op = attrs.get("gen_ai.operation.name")
    if isinstance(op, str) and op:
        return _GENAI_OPERATION_KINDS.get(op.lower(), op.upper()), "genai"
    if "llm.input_messages.0.message.role" in attrs or "llm.model_name" in attrs:
        return "LLM", "openinference"
    if "gen_ai.request.model" in attrs or "gen_ai.system" in attrs or "gen_ai.prompt.0.role" in attrs:
        return "LLM", "genai"
    if "tool.name" in attrs:
        return "TOOL", "openinference"
    return "UNKNOWN", "none"


def _first_id(attrs: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    """The first of ``keys`` that holds an id: an empty or whitespace-only value is none (a
    session id of spaces is not a session), and the next key is looked at."""
    for k in keys:
        v = _s(attrs.get(k))
        if v is not None and not v.isspace():
            return v
    return None


def _first(attrs: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for k in keys:
        v = attrs.get(k)
        if v is not None and v != "":
            return v
    return None


def span_facts(span: RawSpan) -> dict[str, Any]:
    """The conversation facts of one span (all small, all JSON-able); ``notes``: what the span
    said that a fact could not hold (a token count out of range), one line each."""
    attrs = span["attributes"]
    kind, convention = span_kind(attrs, span["name"])
    facts: dict[str, Any] = {
        "kind": kind,
        "convention": convention,
        "session_id": _first_id(attrs, _SESSION_KEYS),
        "user_id": _first_id(attrs, _USER_KEYS),
        "input_text": _s(attrs.get("input.value")),
        "output_text": _s(attrs.get("output.value")),
        "model": None, "input_tokens": None, "output_tokens": None,
        "user_message": None, "assistant_text": None, "system_prompt": None,
        "tool_calls": None, "tool_results": None, "tools": None,
        "tool_name": None, "tool_call_id": None, "tool_arguments": None, "tool_result": None,
        "notes": [],
    }
    if facts["session_id"] is None:
        facts["session_id"] = _first_id(span["resource"], _SESSION_KEYS)
    if kind == "LLM" or (convention == "genai" and kind == "AGENT"):
        ins, outs = extract_messages(attrs, span["events"], full=False)
        user_msgs = [i for i, m in enumerate(ins) if m["role"] == "user"]
        last_user = user_msgs[-1] if user_msgs else -1
        if last_user >= 0:
            facts["user_message"] = ins[last_user]["content"]
        # tool results of this turn: tool messages after the last user message
        results = [{"id": m["tool_call_id"], "name": m["name"], "result": m["content"]}
                   for m in ins[last_user + 1:] if m["role"] == "tool"]
        if kind == "LLM":
            facts["model"] = _s(_first(attrs, ("llm.model_name", "gen_ai.response.model",
                                               "gen_ai.request.model")))
            facts["input_tokens"] = _count(_first(attrs, ("llm.token_count.prompt", "gen_ai.usage.input_tokens",
                                                          "gen_ai.usage.prompt_tokens")), "input_tokens",
                                           facts["notes"])
            facts["output_tokens"] = _count(_first(attrs, ("llm.token_count.completion",
                                                           "gen_ai.usage.output_tokens",
                                                           "gen_ai.usage.completion_tokens")), "output_tokens",
                                            facts["notes"])
            facts["system_prompt"] = _system_prompt(attrs, ins)
            facts["tools"] = _s(_declared_tools(attrs))
            calls = [c for m in outs for c in m["tool_calls"]]
            facts["tool_calls"] = _s(calls) if calls else None
            facts["tool_results"] = _s(results) if results else None
        texts = [m["content"] for m in outs if m["role"] in ("assistant", "model", "") and m["content"]]
        facts["assistant_text"] = texts[-1] if texts else None
        if kind == "AGENT":
            facts["input_text"] = facts["input_text"] or facts["user_message"]
            facts["output_text"] = facts["output_text"] or facts["assistant_text"]
    elif kind == "TOOL":
        facts["tool_name"] = _s(_first(attrs, ("tool.name", "gen_ai.tool.name"))) or span["name"]
        facts["tool_call_id"] = _s(_first(attrs, ("tool_call.id", "tool.call.id", "gen_ai.tool.call.id",
                                                  "tool.id")))
        # (OpenInference's tool.parameters is the tool's schema, not the call's arguments)
        facts["tool_arguments"] = _s(_first(attrs, ("gen_ai.tool.call.arguments", "input.value")))
        facts["tool_result"] = _s(_first(attrs, ("gen_ai.tool.call.result", "output.value")))
    return facts
