"""Contracts of the simulation stage (issue 4): what an agent under test receives and returns,
and the manifests of run tests, executions and chats. No I/O here.

``AgentInput``/``AgentResponse`` keep the shapes of Future AGI's chat simulation SDK, so a
callback written for it runs unchanged: ``thread_id``, ``messages`` (role/content dicts so
far), ``new_message``, ``turn_index``, ``metadata``; and ``content``, ``tool_calls``,
``tool_responses``, ``metadata`` (with optional token usage).
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from models.common import ConversationTurn, Record

Mode = Literal["replay", "simulate", "hybrid"]
ToolMode = Literal["recorded", "live"]
OffScript = Literal["error", "nearest", "fail"]
ToolSource = Literal["recorded", "off_script", "nearest", "live"]


class Tools(Protocol):
    """What ``input.tools`` offers an agent: ``await input.tools.call(name, arguments)``."""

    async def call(self, name: str, arguments: Any = None) -> Any: ...


class AgentInput(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    thread_id: str
    messages: list[dict[str, Any]] = Field(default_factory=list)  # role/content so far (before new_message)
    new_message: dict[str, Any]  # {"role": "user", "content": "..."}
    turn_index: int
    # origin_id, scenario_id, row_index, repetition, persona, situation, expected_outcome, execution_id
    metadata: dict[str, Any] = Field(default_factory=dict)
    tools: Any = None  # a Tools (recorded tools) or None with --tools live


class AgentResponse(BaseModel):
    content: str | None = None
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)  # [{id, name, arguments}]
    tool_responses: list[dict[str, Any]] = Field(default_factory=list)  # [{id, name, result}]
    metadata: dict[str, Any] = Field(default_factory=dict)  # usage: {input_tokens, output_tokens}


class ToolCallLog(BaseModel):
    """One tool call the agent made during a replayed turn, and where its answer came from."""

    id: str | None = None
    name: str | None = None
    arguments: Any = None
    result: Any = None
    status: str = "ok"  # ok, error
    source: ToolSource = "recorded"
    matched_turn: int | None = None  # the production turn whose recorded call answered it


ArgKind = Literal["key", "text", "ignore"]
ArgsMode = Literal["exact", "ignore", "subset", "superset"]
TrajectoryMode = Literal["strict", "unordered", "subset", "superset"]


class ToolRule(BaseModel):
    """How the calls of one tool are compared (``tasks.simulate.toolmatch``).

    ``args``: how the KEY arguments of two calls compare: ``exact`` (the same key arguments,
    equal values), ``ignore`` (never compared), ``subset`` (the replay's key arguments are a
    subset of production's, with equal values), ``superset`` (production's are a subset of the
    replay's). ``fields``: an argument's kind by dotted path (``"address"``,
    ``"items.sku"``; list indexes may be left out or written ``*``), overriding the inference;
    it applies to everything under that path. ``write``: is the tool state-changing (None:
    inferred from its name)."""

    model_config = ConfigDict(extra="forbid")

    args: ArgsMode = "exact"
    fields: dict[str, ArgKind] = Field(default_factory=dict)
    write: bool | None = None


class ToolMatchConfig(BaseModel):
    """How tool calls are matched: the trajectory mode of a turn's calls and per-tool rules
    (``"*"`` is the rule of every tool without its own). ``replay run --tool-match FILE``."""

    model_config = ConfigDict(extra="forbid")

    trajectory: TrajectoryMode = "unordered"
    tools: dict[str, ToolRule] = Field(default_factory=dict)


class RunOptions(BaseModel):
    """What ``replay run`` was asked to do (stored with the run test)."""

    name: str | None = None
    mode: Mode = "replay"
    tool_mode: ToolMode = "recorded"
    off_script: OffScript = "error"
    concurrency: int = Field(32, ge=1, le=10_000)
    repeat: int = Field(1, ge=1, le=1000)
    max_turns: int = Field(10, ge=1, le=200)
    turn_timeout_s: float = Field(60.0, gt=0)
    retries: int = Field(3, ge=0, le=20)
    max_failure_rate: float = Field(0.2, ge=0, le=1)
    batch_size: int = Field(100, ge=1, le=10_000)
    # an answer diverges when it does not say what production's said (ground_truth_match's test);
    # this overrides the similarity pass mark of that test (None: the embedding model's calibrated one)
    divergence_threshold: float | None = Field(None, ge=0, le=1)
    system_prompt: str | None = None  # HTTP agent overrides
    model: str | None = None
    # HTTP agent: extra fields of every chat completions request (temperature, seed, tool_choice, ...)
    agent_params: dict[str, Any] = Field(default_factory=dict)
    tool_match: ToolMatchConfig = Field(default_factory=ToolMatchConfig)  # how tool calls are matched


class Budget(BaseModel):
    """What one ``replay run`` / ``runs resume`` may spend: no new chat starts once the chats
    finished in this invocation have spent it (their recorded tokens, priced by the agent's model)."""

    tokens: int | None = Field(None, ge=1)
    usd: float | None = Field(None, gt=0)


class CostLine(BaseModel):
    """One kind of model call of a run, as ``replay run --dry-run`` expects it."""

    what: Literal["agent", "simulated_user", "judge"]
    model: str | None = None
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    price: str | None = None  # the price table's entry that priced it (None: not in the table)
    usd: float | None = None  # None: the model has no price


class CostEstimate(BaseModel):
    """What ``replay run --dry-run`` prints: the expected calls, tokens and cost (nothing written)."""

    scenario_id: str
    agent_ref: str
    mode: Mode
    rows: int
    repeat: int
    chats: int
    lines: list[CostLine] = Field(default_factory=list)
    calls: int = 0
    tokens: int = 0
    usd: float | None = None  # None when a line has no price
    prices: str  # the price table read (a path, or "bundled")
    notes: list[str] = Field(default_factory=list)


class ChatTurnRecord(ConversationTurn):
    """A replayed turn, with production's answer and tool calls beside it."""

    chat_id: str
    tool_calls: list[ToolCallLog] = Field(default_factory=list)
    original_assistant_message: str | None = None
    original_tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    user_source: Literal["original", "simulated"] = "original"
    similarity: float | None = None  # the answer against production's, 0..1
    attempts: int = 1


class ChatRecord(BaseModel):
    chat_id: str
    execution_id: str
    scenario_id: str
    row_index: int
    repetition: int
    origin_id: str
    status: Literal["completed", "failed"] = "completed"
    ended_reason: str = "script_done"  # script_done, user_ended, max_turns, error, off_script, timeout, context_overflow, tool_loop, bad_tool_call
    divergence_turn: int | None = None
    turn_count: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    avg_latency_ms: float | None = None
    error: str | None = None
    started_at: Any = None
    ended_at: Any = None


class Execution(Record):
    """An execution with its run test (what ``runs resume``, evaluation and comparison read)."""

    execution_id: str
    run_test_id: str
    agent_ref: str
    started_at: Any = None
    ended_at: Any = None
    status: str
    total_chats: int
    completed_chats: int = 0
    failed_chats: int = 0
    error: str | None = None
    name: str
    scenario_id: str
    mode: Mode = "replay"
    tool_mode: ToolMode = "recorded"
    options: RunOptions
    replay_id: str | None = None
    agent_name: str | None = None
    agent_version: int | None = None


class ErrorReason(BaseModel):
    """Why chats of an execution failed: their errors with numbers and ids masked, counted."""

    reason: str  # e.g. "RuntimeError: agent exploded on turn <n>"
    count: int  # failed chats with this reason
    example_chat_id: str  # one of them (its chats.error is the whole text)


class ExecutionInfo(BaseModel):
    """What ``replay run`` prints with --json."""

    run_test_id: str
    execution_id: str
    status: str
    total_chats: int
    completed_chats: int
    failed_chats: int
    ran_now: int = 0  # chats this invocation ran (resume: only the unfinished ones)
    seconds: float = 0.0
    # the execution_metrics figures (the same numbers, once scored; None before)
    avg_latency_ms: float | None = None
    avg_turn_count: float | None = None
    avg_output_tokens: float | None = None
    completion_pct: float = 0.0  # 100 x completed / total, as execution_metrics.completion_pct
    mode: str = "in-process"
    metrics: dict[str, Any] = Field(default_factory=dict)  # the execution_metrics row after evaluation
    errors: list[ErrorReason] = Field(default_factory=list)  # why chats failed, the most frequent first
    # a budget (--budget-tokens / --budget-usd): what this invocation's chats spent, and why it stopped
    spent_tokens: int = 0
    spent_usd: float | None = None
    not_run: int = 0  # chats left for `replay runs resume`
    budget_stop: str | None = None  # one line when the budget stopped new chats
    warnings: list[str] = Field(default_factory=list)

    def scored(self, metrics: dict[str, Any]) -> ExecutionInfo:
        """This info with its execution_metrics row (and the figures it repeats taken from it)."""
        return self.model_copy(update={
            "metrics": metrics, "avg_latency_ms": metrics.get("avg_chat_latency_ms"),
            "avg_turn_count": metrics.get("avg_turn_count"), "avg_output_tokens": metrics.get("avg_output_tokens"),
            "completion_pct": metrics.get("completion_pct", self.completion_pct)})
