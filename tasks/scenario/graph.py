"""The conversation graph of a scenario: built from the rows' steps, or supplied by the user.

Pure functions. ``build_graph`` merges the step paths of all rows (``ConversationNotes.steps``:
"intent:x", "tool:x", "tool_error:x", "outcome:x") into one graph:

- one ``start`` node; one ``message`` node per distinct intent and per distinct tool step
  (the node id is the step label); one ``end`` node per outcome ("outcome:resolved", ...);
- an edge for every pair of consecutive steps seen in some row (start -> first step);
- where an intent node was followed by several different steps, a ``condition`` node
  "branch:<label>" sits between it and them ("Did the tool succeed?" when both a success
  and a failure of the same tool follow, else "Which way did the conversation go?"), and
  its edges carry the condition of each way; the other edges carry a condition too
  ("the agent calls x and it succeeds", "the conversation ends resolved", ...);
- nodes and edges in first-seen order, so the same notes give the same graph.

``branch_path`` maps one row's steps onto the graph (inserting the condition nodes), and
``validate_path`` checks a path: starts at the start node, ends at an end node, every
consecutive pair joined by an edge. ``load_graph``/``validate_graph`` check a user-supplied
graph, ``path_for_supplied_graph`` maps a row onto it best-effort.
"""

from __future__ import annotations

import json
import re
from collections import deque
from pathlib import Path
from typing import Any

from models.scenario import ConversationNotes, Graph, GraphEdge, GraphNode
from tasks.scenario.writer_offline import GOALS

START = "start"
BRANCH = "branch:"
OUTCOME_PROMPTS = {
    "resolved": "The agent resolved the user's request and the conversation ended.",
    "escalated": "The agent handed the conversation over to a human.",
    "failed": "A turn failed with an error (no answer from the agent).",
    "abandoned": "The user's last message got no answer.",
    "tool_error": "A tool call failed and the request stayed unresolved.",
}
MAX_PATHS = 20_000  # simple paths tried on a supplied graph before giving up on the best match


def _words(label: str) -> str:
    return label.split(":", 1)[-1].replace("_", " ")


def node_prompt(label: str) -> str:
    kind, _, name = label.partition(":")
    if kind == "intent":
        goal = GOALS.get(name, f"needs help that involves {_words(name.removeprefix('use_'))}")
        return "The user " + goal.format(order="an order", topic="store's") + "."
    if kind == "tool":
        return f"The agent calls {name} and uses its result."
    if kind == "tool_error":
        return f"The agent calls {name} and the call fails; the agent has to recover or explain."
    if kind == "outcome":
        return OUTCOME_PROMPTS.get(name, f"The conversation ended: {_words(name)}.")
    return "The user opens the conversation." if label == START else label


def edge_condition(label: str, after_start: bool = False) -> str:
    kind, _, name = label.partition(":")
    return {
        "intent": f"the user {'opens with' if after_start else 'moves on to'} {_words(name)}",
        "tool": f"the agent calls {name} and it succeeds",
        "tool_error": f"the {name} call fails",
        "outcome": f"the conversation ends {_words(name)}",
    }.get(kind, label)


def _type(label: str) -> str:
    return "start" if label == START else "end" if label.startswith("outcome:") else "message"


def build_graph(notes: list[ConversationNotes]) -> Graph:
    successors: dict[str, list[str]] = {START: []}
    for n in notes:
        path = [START, *n.steps]
        for a, b in zip(path, path[1:], strict=False):
            successors.setdefault(a, [])
            successors.setdefault(b, [])
            if b not in successors[a]:
                successors[a].append(b)
    nodes = [GraphNode(id=label, type=_type(label), prompt=node_prompt(label)) for label in successors]
    edges: list[GraphEdge] = []
    for label, nexts in successors.items():
        if not label.startswith("intent:") or len(nexts) < 2:
            edges += [GraphEdge(from_=label, to=b, condition=edge_condition(b, label == START)) for b in nexts]
            continue
        branch = BRANCH + label
        tools = {b.split(":", 1)[1] for b in nexts if b.startswith("tool:")}
        tool_question = any(b.startswith("tool_error:") and b.split(":", 1)[1] in tools for b in nexts)
        question = "Did the tool succeed?" if tool_question else "Which way did the conversation go?"
        nodes.append(GraphNode(id=branch, type="condition", prompt=f"{question} (after {label})"))
        edges.append(GraphEdge(from_=label, to=branch))
        edges += [GraphEdge(from_=branch, to=b, condition=edge_condition(b)) for b in nexts]
    return Graph(nodes=nodes, edges=edges)


def _edges(graph: Graph) -> set[tuple[str, str]]:
    return {(e.from_, e.to) for e in graph.edges}


def branch_path(graph: Graph, steps: list[str]) -> list[str]:
    """Node ids of one row's path in a graph built by ``build_graph`` (ValueError if it is not there)."""
    edges = _edges(graph)
    path = [START]
    for step in steps:
        a = path[-1]
        if (a, step) in edges:
            path.append(step)
        elif (a, BRANCH + a) in edges and (BRANCH + a, step) in edges:
            path += [BRANCH + a, step]
        else:
            raise ValueError(f"step {step!r} after {a!r} is not an edge of the graph")
    return path


def validate_path(graph: Graph, path: list[str]) -> bool:
    types = {n.id: n.type for n in graph.nodes}
    edges = _edges(graph)
    return (len(path) >= 2 and types.get(path[0]) == "start" and types.get(path[-1]) == "end"
            and all(p in types for p in path) and all(pair in edges for pair in zip(path, path[1:], strict=False)))


# ---------------------------------------------------------------- user-supplied graphs
def _check_shape(data: Any) -> None:
    """Nodes and edges of the right types (ValueError naming the first bad one)."""
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list) or not isinstance(data.get("edges"), list):
        raise ValueError('graph must be a JSON object with lists "nodes" and "edges"')
    for i, n in enumerate(data["nodes"]):
        if not isinstance(n, dict) or not isinstance(n.get("id"), str) or not n["id"]:
            raise ValueError(f"node {i} needs a non-empty string id")
        if n.get("type") not in ("start", "message", "condition", "end"):
            raise ValueError(f"node {n['id']!r}: type must be start, message, condition or end, not {n.get('type')!r}")
    for i, e in enumerate(data["edges"]):
        if not isinstance(e, dict) or not isinstance(e.get("from"), str) or not isinstance(e.get("to"), str):
            raise ValueError(f'edge {i} needs string "from" and "to"')


def validate_graph(data: Any) -> Graph:
    """A user-supplied graph, checked; ValueError with a one-line reason otherwise."""
    _check_shape(data)
    ids = [n["id"] for n in data["nodes"]]
    if dup := sorted({i for i in ids if ids.count(i) > 1}):
        raise ValueError(f"duplicate node id {dup[0]!r}")
    for e in data["edges"]:
        for end in ("from", "to"):
            if e[end] not in ids:
                raise ValueError(f"edge {e['from']!r} -> {e['to']!r} references unknown node {e[end]!r}")
    starts = [n["id"] for n in data["nodes"] if n["type"] == "start"]
    if len(starts) != 1:
        raise ValueError(f"graph needs exactly one start node, found {len(starts)}")
    graph = Graph.model_validate({"nodes": data["nodes"], "edges": [
        {"from": e["from"], "to": e["to"], "condition": str(e.get("condition") or "")} for e in data["edges"]]})
    if shortest_path(graph) is None:
        raise ValueError("no end node is reachable from the start node")
    return graph


def load_graph(path: str | Path) -> Graph:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read graph file {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"graph file {path} is not JSON: {exc.msg} at line {exc.lineno}") from None
    return validate_graph(data)


def _adjacency(graph: Graph) -> dict[str, list[str]]:
    adj: dict[str, list[str]] = {n.id: [] for n in graph.nodes}
    for e in graph.edges:
        adj[e.from_].append(e.to)
    return adj


def shortest_path(graph: Graph) -> list[str] | None:
    """Breadth-first: the shortest path from the start node to any end node."""
    types = {n.id: n.type for n in graph.nodes}
    start = next(n.id for n in graph.nodes if n.type == "start")
    adj, prev, queue = _adjacency(graph), {start: None}, deque([start])
    while queue:
        node = queue.popleft()
        if types[node] == "end":
            path = [node]
            while prev[path[-1]] is not None:
                path.append(prev[path[-1]])
            return path[::-1]
        for nxt in adj[node]:
            if nxt not in prev:
                prev[nxt] = node
                queue.append(nxt)
    return None


GENERIC_WORDS = {"request", "question", "issue", "problem", "use", "general"}


def _norm(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def step_matches(node: GraphNode, step: str) -> bool:
    """Does a supplied node stand for this step? Its id is the step; or its id/prompt names the
    tool (tool steps), has the intent's words (intent steps; "request", "question", ... not
    needed), or it is an end node naming the outcome (outcome steps)."""
    if node.id == step:
        return True
    kind, _, term = step.partition(":")
    text, phrase = _norm(f"{node.id} {node.prompt}"), _norm(term)
    if kind == "outcome":
        return node.type == "end" and phrase in text
    if node.type == "end" or not phrase:
        return False
    if kind == "intent":
        words = set(phrase.split()) - GENERIC_WORDS or set(phrase.split())
        return words <= set(text.split())
    return f" {phrase} " in f" {text} "


def _matched(path: list[str], nodes: dict[str, GraphNode], steps: list[str]) -> int:
    """How many steps the path matches in order (longest common subsequence)."""
    row = [0] * (len(steps) + 1)
    for node_id in path:
        prev_diag, node = 0, nodes[node_id]
        for j, step in enumerate(steps, 1):
            keep = row[j]
            row[j] = prev_diag + 1 if step_matches(node, step) else max(row[j], row[j - 1])
            prev_diag = keep
    return row[-1]


def path_for_supplied_graph(graph: Graph, steps: list[str]) -> list[str]:
    """The start -> end path of a supplied graph that matches the most steps in order (the
    shorter one on ties); when nothing matches, the shortest start -> end path."""
    nodes = {n.id: n for n in graph.nodes}
    adj = _adjacency(graph)
    start = next(n.id for n in graph.nodes if n.type == "start")
    best: tuple[int, int] = (0, 0)
    best_path: list[str] | None = None
    tried = 0
    stack: list[list[str]] = [[start]]
    while stack and tried < MAX_PATHS:
        path = stack.pop()
        if nodes[path[-1]].type == "end":
            tried += 1
            score = (_matched(path, nodes, steps), -len(path))
            if score[0] > 0 and (best_path is None or score > best):
                best, best_path = score, path
            continue
        stack += [path + [n] for n in reversed(adj[path[-1]]) if n not in path]
    return best_path or shortest_path(graph) or [start]
