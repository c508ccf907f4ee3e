"""Contracts of the replay-session and scenario stages (issue 3). No I/O here.

Field names follow Future AGI's Replay where its users know them (persona fields,
situation, outcome, conversation_branch, branch_category, agent_name, scenario_name).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from models.common import ConversationTurn, Record

ReplayType = Literal["session", "trace"]
ReplayState = Literal["INIT", "GENERATING", "COMPLETED", "FAILED"]
# allowed transitions of a replay session; anything else is refused
TRANSITIONS: dict[str, set[str]] = {
    "INIT": {"GENERATING", "FAILED"},
    "GENERATING": {"COMPLETED", "FAILED", "GENERATING"},  # GENERATING again: a re-generation
    "COMPLETED": set(),
    "FAILED": set(),
}
Level = Literal["none", "low", "medium", "high"]


class Persona(BaseModel):
    """Who the simulated user is and how they write."""

    persona_id: str | None = None  # set when taken from the persona library (data/personas.json)
    name: str
    age_group: str = "unknown"  # e.g. "18-24", "25-34", "35-44", "45-54", "55+", "unknown"
    occupation: str = "unknown"
    location: str = "unknown"
    personality: str = ""  # a few words: "patient, detail-oriented"
    communication_style: str = ""  # "formal", "casual", "terse", ...
    languages: list[str] = Field(default_factory=lambda: ["en"])
    tone: str = "neutral"  # "polite", "frustrated", "friendly", "neutral", ...
    verbosity: Level = "medium"
    typos: Level = "none"
    emoji_usage: Level = "none"
    slang_usage: Level = "none"


class ToolCall(BaseModel):
    id: str | None = None
    name: str | None = None
    arguments: Any = None  # parsed JSON when it parses, else the text
    result: str | None = None
    status: str | None = None


class Turn(ConversationTurn):
    """One production turn, as the warehouse rebuilt it (a row of the `turns` view)."""

    trace_id: str
    tool_calls: list[ToolCall] = Field(default_factory=list)
    started_at: datetime | None = None
    model: str | None = None
    status: str = "ok"


class Transcript(BaseModel):
    """One conversation to turn into scenario rows: a session, or a single trace."""

    origin_id: str  # the session id (type session) or trace id (type trace)
    project: str | None = None
    user_id: str | None = None
    turns: list[Turn]
    system_prompt: str | None = None
    model: str | None = None


class ConversationNotes(BaseModel):
    """What a writer (offline extraction or a model) says about one transcript."""

    intents: list[str]  # one short snake_case intent per user turn, e.g. "order_status"
    situation: str = Field(min_length=30, max_length=400)  # who the user is and what they want
    outcome: str  # 2-4 sentences, past tense: what the agent did in production
    persona: Persona
    steps: list[str]  # the path through the graph: node labels in order (intent:, tool:, outcome:)
    branch_category: str  # e.g. "resolved", "escalated", "tool_error", "unresolved"
    writer: str = "offline"  # "offline" or "llm:<model>"


class GraphNode(BaseModel):
    id: str
    type: Literal["start", "message", "condition", "end"]
    prompt: str = ""  # what happens at this node (a description for the simulator)


class GraphEdge(BaseModel):
    from_: str = Field(alias="from")
    to: str
    condition: str = ""

    model_config = {"populate_by_name": True}


class Graph(BaseModel):
    nodes: list[GraphNode]
    edges: list[GraphEdge]


class AgentDefinition(BaseModel):
    agent_name: str
    version: int
    description: str = ""
    system_prompt: str | None = None
    tools: list[dict[str, Any]] = Field(default_factory=list)  # OpenAI-style function tools
    model: str | None = None
    agent_type: Literal["text"] = "text"
    created_at: datetime | None = None


class ScenarioRow(BaseModel):
    row_index: int
    origin_id: str
    persona: Persona
    situation: str
    outcome: str
    conversation_branch: str  # node ids of the graph path, joined with " -> "
    branch_category: str
    user_turns: list[str]
    expected_turns: list[Turn]
    custom: dict[str, Any] = Field(default_factory=dict)


class GenerationFailure(BaseModel):
    """A transcript a writer could not describe (kept as a row, never dropped silently)."""

    origin_id: str
    writer: str
    reason: str
    raw: str | None = None


class ReplaySession(Record):
    """A row of ``replay_sessions``: what to replay, and where it is in its life."""

    replay_id: str
    project: str
    replay_type: ReplayType
    ids: list[str]
    select_all: bool = False
    where_sql: str | None = None
    state: ReplayState
    state_reason: str | None = None
    transitions: list[dict[str, Any]] = Field(default_factory=list)  # [{"state", "at", "reason"?}]
    agent_name: str | None = None
    scenario_name: str | None = None
    suggestions: dict[str, Any] = Field(default_factory=dict)  # agent_name, scenario_name, agent_description, existing_agent
    created_at: datetime
    updated_at: datetime
    run_test_id: str | None = None


class ScenarioInfo(Record):
    """What scenario generation made (``replay scenarios generate --json``)."""

    replay_id: str
    scenario_id: str
    scenario_name: str
    agent_name: str
    agent_version: int
    rows: int
    transcripts: int  # conversations described
    branches: int  # distinct conversation branches among the rows
    failures: int  # conversations the model could not describe (written offline)
    redactions: dict[str, int] | None = None  # with --redact: what was masked, by kind
    writer: str  # offline, llm:<model>
    state: ReplayState  # the replay session's state after generation
    repeated_rows: int = 0  # rows that replay a conversation another row already replays
    warnings: list[str] = Field(default_factory=list)  # one line each
