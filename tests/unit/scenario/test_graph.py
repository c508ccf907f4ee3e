"""Scenario graph: built from the sample's 16 transcripts, paths, and user-supplied graphs."""

import json
import sys
from pathlib import Path

import pytest

from models.scenario import ConversationNotes, Graph, Persona
from tasks.scenario.graph import (
    branch_path,
    build_graph,
    load_graph,
    path_for_supplied_graph,
    shortest_path,
    validate_graph,
    validate_path,
)
from tasks.scenario.writer_offline import describe

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_scenario_text import SAMPLE  # noqa: E402  (the sample transcripts, built from expected.json)

NOTES = {k: describe(t) for k, t in SAMPLE.items()}
GRAPH = build_graph(list(NOTES.values()))


def _notes(*steps: str) -> ConversationNotes:
    return ConversationNotes(intents=["x"], situation="s" * 30, outcome="It ran. It ended.",
                             persona=Persona(name="A"), steps=list(steps), branch_category=steps[-1].split(":")[1])


def test_graph_shape():
    types = {n.id: n.type for n in GRAPH.nodes}
    assert len(types) == len(GRAPH.nodes)  # unique ids
    assert [i for i, t in types.items() if t == "start"] == ["start"]
    assert {i for i, t in types.items() if t == "end"} == {"outcome:resolved", "outcome:escalated", "outcome:failed"}
    assert {"intent:order_status", "tool:lookup_order", "tool_error:issue_refund"} <= set(types)
    assert all(e.from_ in types and e.to in types for e in GRAPH.edges)
    assert all(n.prompt for n in GRAPH.nodes)
    assert len({(e.from_, e.to) for e in GRAPH.edges}) == len(GRAPH.edges)
    validate_graph(GRAPH.model_dump(by_alias=True))  # a built graph passes the supplied-graph checks


@pytest.mark.parametrize("key", sorted(SAMPLE))
def test_every_row_branch_is_a_path_in_the_graph(key):
    path = branch_path(GRAPH, NOTES[key].steps)
    assert validate_path(GRAPH, path)
    assert path[0] == "start" and path[-1] == f"outcome:{NOTES[key].branch_category}"
    assert [p for p in path if not p.startswith("branch:") and p != "start"] == NOTES[key].steps


def test_example_path_of_failed_then_retried_refund():
    assert " -> ".join(branch_path(GRAPH, NOTES["S04"].steps)) == (
        "start -> intent:refund_request -> branch:intent:refund_request -> tool:lookup_order"
        " -> tool_error:issue_refund -> intent:refund_request -> branch:intent:refund_request -> tool:issue_refund"
        " -> outcome:resolved")


def test_condition_nodes_only_where_paths_split():
    branches = {n.id: n for n in GRAPH.nodes if n.type == "condition"}
    for bid in branches:
        assert len([e for e in GRAPH.edges if e.from_ == bid]) >= 2
        assert all(e.condition for e in GRAPH.edges if e.from_ == bid)
    assert "branch:intent:general_question" not in branches  # only ever followed by one step


def test_tool_success_question():
    g = build_graph([_notes("intent:refund_request", "tool:issue_refund", "outcome:resolved"),
                     _notes("intent:refund_request", "tool_error:issue_refund", "outcome:tool_error")])
    branch = next(n for n in g.nodes if n.type == "condition")
    assert branch.id == "branch:intent:refund_request" and branch.prompt.startswith("Did the tool succeed?")


def test_build_graph_is_deterministic_and_roundtrips():
    again = build_graph(list(NOTES.values()))
    assert again == GRAPH
    assert Graph.model_validate(json.loads(GRAPH.model_dump_json(by_alias=True))) == GRAPH


def test_validate_path_rejects_bad_paths():
    good = branch_path(GRAPH, NOTES["L04"].steps)
    assert validate_path(GRAPH, good)
    assert not validate_path(GRAPH, good[:-1])  # does not end at an end node
    assert not validate_path(GRAPH, good[1:])  # does not begin at start
    assert not validate_path(GRAPH, ["start", "outcome:resolved"])  # no such edge
    assert not validate_path(GRAPH, ["start", "intent:nope", "outcome:resolved"])
    assert not validate_path(GRAPH, [])


def test_branch_path_refuses_unknown_steps():
    with pytest.raises(ValueError, match="not an edge"):
        branch_path(GRAPH, ["intent:order_status", "tool:nope", "outcome:resolved"])


# ---------------------------------------------------------------- user-supplied graphs
SUPPLIED = {
    "nodes": [
        {"id": "start", "type": "start", "prompt": "Customer opens the chat"},
        {"id": "ask_order", "type": "message", "prompt": "Customer asks where an order is (order status)"},
        {"id": "lookup", "type": "message", "prompt": "Agent runs lookup_order"},
        {"id": "ask_refund", "type": "message", "prompt": "Customer wants a refund"},
        {"id": "refund", "type": "message", "prompt": "Agent runs issue_refund"},
        {"id": "done", "type": "end", "prompt": "Resolved"},
        {"id": "human", "type": "end", "prompt": "Escalated to a human"},
    ],
    "edges": [
        {"from": "start", "to": "ask_order"}, {"from": "start", "to": "ask_refund"},
        {"from": "ask_order", "to": "lookup"}, {"from": "lookup", "to": "done"},
        {"from": "ask_refund", "to": "lookup"}, {"from": "lookup", "to": "refund", "condition": "refund wanted"},
        {"from": "refund", "to": "done"}, {"from": "refund", "to": "human"}, {"from": "ask_order", "to": "human"},
    ],
}


def test_load_graph(tmp_path):
    f = tmp_path / "g.json"
    f.write_text(json.dumps(SUPPLIED))
    g = load_graph(f)
    assert len(g.nodes) == 7 and g.edges[5].condition == "refund wanted"
    assert shortest_path(g) == ["start", "ask_order", "human"]


@pytest.mark.parametrize("mutate, reason", [
    (lambda d: d.pop("nodes"), 'lists "nodes" and "edges"'),
    (lambda d: d["nodes"].append({"id": "done", "type": "end"}), "duplicate node id 'done'"),
    (lambda d: d["nodes"].append({"id": "x", "type": "weird"}), "type must be"),
    (lambda d: d["nodes"].append({"type": "end"}), "node 7 needs a non-empty string id"),
    (lambda d: d["edges"].append({"from": "done", "to": "nowhere"}), "unknown node 'nowhere'"),
    (lambda d: d["edges"].append({"from": "done"}), 'edge 9 needs string "from" and "to"'),
    (lambda d: d["nodes"].append({"id": "s2", "type": "start"}), "exactly one start node, found 2"),
    (lambda d: d["nodes"].__setitem__(0, {"id": "start", "type": "message"}), "exactly one start node, found 0"),
    (lambda d: d.__setitem__("edges", []), "no end node is reachable"),
])
def test_supplied_graph_errors_are_one_line(mutate, reason):
    data = json.loads(json.dumps(SUPPLIED))
    mutate(data)
    with pytest.raises(ValueError) as err:
        validate_graph(data)
    assert reason in str(err.value) and "\n" not in str(err.value)


def test_load_graph_file_errors(tmp_path):
    with pytest.raises(ValueError, match="cannot read graph file"):
        load_graph(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{nodes: ")
    with pytest.raises(ValueError, match="is not JSON"):
        load_graph(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(ValueError, match="JSON object"):
        load_graph(tmp_path / "list.json")


def test_rows_map_onto_a_supplied_graph():
    g = validate_graph(SUPPLIED)
    s04 = path_for_supplied_graph(g, NOTES["S04"].steps)  # refund, lookup, refund failed, refund, resolved
    assert s04 == ["start", "ask_refund", "lookup", "refund", "done"]
    assert path_for_supplied_graph(g, NOTES["L04"].steps) == ["start", "ask_order", "lookup", "done"]
    # nothing matches: the shortest start -> end path
    assert path_for_supplied_graph(g, ["intent:weather", "outcome:abandoned"]) == ["start", "ask_order", "human"]
    for notes in NOTES.values():
        assert validate_path(g, path_for_supplied_graph(g, notes.steps))


def test_supplied_graph_with_cycle():
    data = {"nodes": [{"id": "start", "type": "start"}, {"id": "intent:a", "type": "message"},
                      {"id": "tool:t", "type": "message"}, {"id": "outcome:resolved", "type": "end"}],
            "edges": [{"from": "start", "to": "intent:a"}, {"from": "intent:a", "to": "tool:t"},
                      {"from": "tool:t", "to": "intent:a"}, {"from": "tool:t", "to": "outcome:resolved"}]}
    g = validate_graph(data)
    path = path_for_supplied_graph(g, ["intent:a", "tool:t", "intent:a", "tool:t", "outcome:resolved"])
    assert path == ["start", "intent:a", "tool:t", "outcome:resolved"] and validate_path(g, path)
