"""Simulate: run every row of a scenario as a conversation with the agent under test.

Pure parts first (chat ids, planning, turn/chat records), then the async executor (one
concurrency limit for the whole execution, chats grouped in batches, each finished batch
persisted atomically to the lake), then the catalog-facing stage functions (create a run
test + execution, run it, resume it) and the thin Prefect task.

Faults: each agent turn runs under a timeout; transient failures (timeouts, connection
errors, 5xx, 429 honouring Retry-After) are retried with backoff and jitter; anything else
fails that chat with its error, its turns so far are kept, and the execution goes on. An
execution is `failed` only past ``max_failure_rate``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

import pyarrow as pa

from models.scenario import ScenarioRow
from models.simulate import AgentInput, ChatRecord, ChatTurnRecord, Execution, ExecutionInfo, RunOptions, ToolCallLog
from tasks.common.clock import now
from tasks.common.errors import ReplayError
from tasks.common.progress import Progress
from tasks.common.text import error_text, json_text
from tasks.store import lake


class RunError(ReplayError):
    """A run that cannot start (unknown scenario, no model for simulate, agent won't load)."""




def chat_id(execution_id: str, row_index: int, repetition: int) -> str:
    return f"{execution_id}-r{row_index:04d}-k{repetition:03d}"


def plan(execution_id: str, rows: list[ScenarioRow], repeat: int) -> list[tuple[str, ScenarioRow, int]]:
    """Every (chat id, row, repetition) of an execution, in order."""
    return [(chat_id(execution_id, r.row_index, k), r, k) for r in rows for k in range(repeat)]






def _usage(resp) -> tuple[int, int]:
    u = resp.metadata.get("usage") if isinstance(resp.metadata.get("usage"), dict) else resp.metadata
    def pick(*keys):
        for k in keys:
            v = u.get(k) if isinstance(u, dict) else None
            if isinstance(v, (int, float)):
                return int(v)
        return 0
    return pick("input_tokens", "prompt_tokens"), pick("output_tokens", "completion_tokens")


def original_calls(row: ScenarioRow, i: int) -> list[dict[str, Any]]:
    if i >= len(row.expected_turns):
        return []
    return [{"id": c.id, "name": c.name, "arguments": json_text(c.arguments), "result": c.result, "status": c.status}
            for c in row.expected_turns[i].tool_calls]


def turn_tool_calls(resp, tools, i: int) -> list[ToolCallLog]:
    """The turn's tool calls: those made through recorded tools (with where their answer came
    from), plus those the agent reports having run itself (live)."""
    logged = list(tools.calls_for_turn(i)) if tools is not None else []
    seen = {(c.name, json_text(c.arguments)) for c in logged}
    results = {r.get("id"): r for r in resp.tool_responses if isinstance(r, dict)}
    for c in resp.tool_calls:
        if not isinstance(c, dict):
            continue
        key = (c.get("name"), json_text(c.get("arguments")))
        if key in seen:
            continue
        r = results.get(c.get("id"), {})
        logged.append(ToolCallLog(id=c.get("id"), name=c.get("name"), arguments=c.get("arguments"),
                                  result=r.get("result", r.get("content")), status="ok", source="live"))
    return logged


# --------------------------------------------------------------------------- one chat
@dataclass
class ChatContext:
    execution_id: str
    scenario_id: str
    agent: Any  # tasks.agents.Agent
    options: RunOptions
    settings: Any
    semaphore: asyncio.Semaphore
    llm_client: Any = None  # one AsyncChatClient for every simulated user of the execution
    spend: Any = None  # a tasks.simulate.cost.Spend: no new chat starts once its budget is spent


class _Conversation:
    """One conversation in progress: whose turn it is, what was said, where it ended."""

    def __init__(self, ctx: ChatContext, cid: str, row: ScenarioRow, repetition: int) -> None:
        from tasks.simulate.recorded_tools import RecordedTools

        self.ctx, self.cid, self.row, self.opts = ctx, cid, row, ctx.options
        self.chat = ChatRecord(chat_id=cid, execution_id=ctx.execution_id, scenario_id=ctx.scenario_id,
                               row_index=row.row_index, repetition=repetition, origin_id=row.origin_id)
        self.turns: list[ChatTurnRecord] = []
        self.tools = (RecordedTools(row.expected_turns, off_script=self.opts.off_script, config=self.opts.tool_match)
                      if self.opts.tool_mode == "recorded" else None)
        self.sim = None
        self.history: list[dict[str, Any]] = []
        self.metadata = {
            "origin_id": row.origin_id, "scenario_id": ctx.scenario_id, "row_index": row.row_index,
            "repetition": repetition, "execution_id": ctx.execution_id, "persona": row.persona.model_dump(),
            "situation": row.situation, "expected_outcome": row.outcome, "custom": row.custom,
            # where this run's catalog is, for agents that look production up (the oracle)
            "replay_data_dir": str(ctx.settings.data_dir)}

    async def run(self) -> None:
        """Turn after turn until the script, the simulated user or max_turns ends it, or a turn fails."""
        for i in range(self.opts.max_turns):
            said = await self._user_message(i)
            if said is None or not await self._turn(i, *said):
                return
        self.chat.ended_reason = "max_turns"

    async def _user_message(self, i: int) -> tuple[str, str] | None:
        """The user's message: verbatim while on script, else the simulated user's; None at the end."""
        if self.opts.mode == "simulate" or (self.opts.mode == "hybrid" and self.chat.divergence_turn is not None):
            if self.sim is None:
                from tasks.simulate.simulated_user import NO_MODEL_ERROR, make_simulated_user

                self.sim = make_simulated_user(self.ctx.settings, self.row, client=self.ctx.llm_client)
                if self.sim is None:
                    raise RunError(NO_MODEL_ERROR)
            user = await self.sim.next_message(self.history)
            if user is None:
                self.chat.ended_reason = "user_ended"
                return None
            return user, "simulated"
        if i >= len(self.row.user_turns):
            self.chat.ended_reason = "script_done"
            return None
        return self.row.user_turns[i], "original"

    async def _turn(self, i: int, user: str, source: str) -> bool:
        """One agent turn, recorded; False when it failed (the chat ends there)."""
        from tasks.simulate.agents import call_with_retries

        tools = self.tools
        if tools is not None:
            tools.set_turn(i)
        # model_construct: these are built from values already validated (hot path)
        inp = AgentInput.model_construct(thread_id=self.cid, messages=list(self.history),
                                         new_message={"role": "user", "content": user},
                                         turn_index=i, metadata=self.metadata, tools=tools)
        orig = self.row.expected_turns[i] if i < len(self.row.expected_turns) else None
        rec: dict[str, Any] = dict(
            chat_id=self.cid, turn_index=i, user_message=user, user_source=source, assistant_message=None,
            tool_calls=[], latency_ms=None, input_tokens=0, output_tokens=0, similarity=None, attempts=1,
            error=None, original_assistant_message=orig.assistant_message if orig else None,
            original_tool_calls=original_calls(self.row, i))
        t0 = time.perf_counter()
        try:
            resp, attempts = await call_with_retries(
                self.ctx.agent, inp, timeout_s=self.opts.turn_timeout_s, retries=self.opts.retries,
                on_retry=(lambda *_a, _i=i: tools.forget_turn(_i)) if tools is not None else None)
        except BaseException as exc:
            self._failed_turn(rec, exc, t0)
            return False
        calls = turn_tool_calls(resp, tools, i)
        tin, tout = _usage(resp)
        rec.update(latency_ms=(time.perf_counter() - t0) * 1000, attempts=attempts,
                   assistant_message=resp.content, input_tokens=tin, output_tokens=tout, tool_calls=calls)
        if orig is not None and source == "original":
            rec["similarity"] = self._check_divergence(i, resp.content, calls, orig)
        self.turns.append(ChatTurnRecord.model_construct(**rec))
        self.history += [{"role": "user", "content": user}, {"role": "assistant", "content": resp.content or ""}]
        return True

    def _failed_turn(self, rec: dict[str, Any], exc: BaseException, t0: float) -> None:
        from tasks.simulate.recorded_tools import OffScriptError

        i = rec["turn_index"]
        rec.update(latency_ms=(time.perf_counter() - t0) * 1000, error=error_text(exc),
                   attempts=getattr(exc, "attempts", 1) or 1,
                   tool_calls=list(self.tools.calls_for_turn(i)) if self.tools is not None else [])
        self.turns.append(ChatTurnRecord.model_construct(**rec))
        if isinstance(exc, asyncio.CancelledError):
            raise exc
        self.chat.status, self.chat.error = "failed", rec["error"]
        self.chat.ended_reason = ("off_script" if isinstance(exc, OffScriptError) else
                                  "timeout" if isinstance(exc, (asyncio.TimeoutError, TimeoutError)) else
                                  getattr(exc, "ended_reason", None) or "error")

    def _check_divergence(self, i: int, answer: str | None, calls: list[ToolCallLog], orig: Any) -> float | None:
        """The answer's similarity to production's; the first divergent turn is remembered. Both
        answers are judged on their first ``settings.eval_text_chars`` characters (as the
        evaluators: an answer of 50 MB is not embedded whole)."""
        from tasks.common.text import judged
        from tasks.simulate.divergence import diverged

        limit = getattr(self.ctx.settings, "eval_text_chars", None)
        is_div, score, _reason = diverged(
            judged(answer, limit), judged(orig.assistant_message, limit), [{"name": c.name, "arguments": c.arguments} for c in calls],
            [{"name": c.name, "arguments": c.arguments} for c in orig.tool_calls], self.opts.divergence_threshold,
            config=self.opts.tool_match, model=getattr(self.ctx.settings, "semantic_model", None))
        if is_div and self.chat.divergence_turn is None:
            self.chat.divergence_turn = i
        return score

    def record(self) -> tuple[ChatRecord, list[ChatTurnRecord]]:
        chat, turns = self.chat, self.turns
        chat.turn_count = len(turns)
        chat.input_tokens = sum(t.input_tokens for t in turns)
        chat.output_tokens = sum(t.output_tokens for t in turns)
        lat = [t.latency_ms for t in turns if t.latency_ms is not None]
        chat.avg_latency_ms = sum(lat) / len(lat) if lat else None
        return chat, turns


async def run_chat(ctx: ChatContext, cid: str, row: ScenarioRow,
                   repetition: int) -> tuple[ChatRecord, list[ChatTurnRecord]] | None:
    """One conversation; never raises: a failure is a failed chat with its turns so far. None:
    not run, the budget was spent before it could start (``replay runs resume`` runs it)."""
    conv = _Conversation(ctx, cid, row, repetition)
    async with ctx.semaphore:
        if ctx.spend is not None and ctx.spend.exhausted():
            return None
        conv.chat.started_at = now()
        try:
            await conv.run()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - e.g. the simulated user's model failed
            conv.chat.status, conv.chat.error = "failed", error_text(exc)
            conv.chat.ended_reason = getattr(exc, "ended_reason", None) or "error"
        finally:
            if conv.sim is not None:
                await conv.sim.aclose()
        conv.chat.ended_at = now()
        chat, turns = conv.record()
        if ctx.spend is not None:
            ctx.spend.add(chat.input_tokens, chat.output_tokens)
    return chat, turns


# --------------------------------------------------------------------------- persistence
def exec_dir(lake_dir: Path, table: str, execution_id: str) -> Path:
    return lake.table_dir(lake_dir, table) / f"exec={execution_id}"


def _tool_row(c: ToolCallLog) -> dict[str, Any]:
    return {"id": c.id, "name": c.name, "arguments": json_text(c.arguments), "result": json_text(c.result),
            "status": c.status, "source": c.source, "matched_turn": c.matched_turn}


_BATCHES_WRITTEN = itertools.count(1)


def crash_point(crash_after: str | None, where: str) -> None:
    """TEST ONLY (``REPLAY_TEST_CRASH_AFTER=where[:N]``): kill -9 this process at ``where`` of the
    Nth batch it writes, to test what a crash there leaves behind."""
    if not crash_after:
        return
    at, _, n = crash_after.partition(":")
    if at == where and next(_BATCHES_WRITTEN) == int(n or 1):
        os.kill(os.getpid(), signal.SIGKILL)


def write_batch(lake_dir: Path, execution_id: str, results: list[tuple[ChatRecord, list[ChatTurnRecord]]],
                name: str | None = None, crash_after: str | None = None) -> None:
    """One finished batch -> one atomic part per table, both of one name: chat_turns first, then
    chats, the batch's commit (the `chat_turns` view shows a chat's turns once its chat row is
    there; :func:`discard_half_batches` removes a turns part whose chats part never came).
    ``name``: the parts' file name (a batch that may run again names its own, so that it
    replaces its parts instead of adding rows); a new unique one by default.
    ``crash_after``: the test-only crash point (settings.test_crash_after)."""
    name = name or f"part-{int(time.time() * 1e6)}-{uuid.uuid4().hex[:6]}.parquet"
    turn_rows = [{**t.model_dump(exclude={"tool_calls", "original_tool_calls"}), "execution_id": execution_id,
                  "tool_calls": [_tool_row(c) for c in t.tool_calls],
                  "original_tool_calls": t.original_tool_calls} for _, ts in results for t in ts]
    lake.write_atomic(pa.Table.from_pylist(turn_rows, schema=lake.CHAT_TURNS),
                      exec_dir(lake_dir, "chat_turns", execution_id) / name)
    crash_point(crash_after, "chat_turns")
    lake.write_atomic(pa.Table.from_pylist([c.model_dump() for c, _ in results], schema=lake.CHATS),
                      exec_dir(lake_dir, "chats", execution_id) / name)


def discard_half_batches(lake_dir: Path, execution_id: str) -> list[str]:
    """Remove the chat_turns parts of an execution whose chats part (the same name) was never
    written: a batch cut by a crash between its two parts. Its chats are not finished, so they
    run again; without this their turns would count twice. Call it under
    :func:`execution_lock` (no batch of the execution is being written). Returns the names."""
    chats = exec_dir(lake_dir, "chats", execution_id)
    turns = exec_dir(lake_dir, "chat_turns", execution_id)
    half = [p for p in sorted(turns.glob("*.parquet")) if not (chats / p.name).exists()] if turns.is_dir() else []
    for p in half:
        p.unlink(missing_ok=True)
    return [p.name for p in half]


def finished_chats(lake_dir: Path, execution_id: str) -> dict[str, str]:
    """{chat_id: status} of the chats an execution already persisted."""
    out: dict[str, str] = {}
    d = exec_dir(lake_dir, "chats", execution_id)
    for f in sorted(d.glob("*.parquet")) if d.is_dir() else []:
        t = lake.read_part(f, columns=["chat_id", "status"])
        out.update(zip(t.column("chat_id").to_pylist(), t.column("status").to_pylist(), strict=False))
    return out


@contextlib.contextmanager
def execution_lock(lake_dir: Path, execution_id: str) -> Iterator[None]:
    """One process at a time runs an execution (a resume while it still runs is refused)."""
    d = exec_dir(lake_dir, "chats", execution_id)
    d.mkdir(parents=True, exist_ok=True)
    with open(d / ".lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunError(f"execution {execution_id} is running in another process") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- the executor
async def run_chats(ctx: ChatContext, chats: list[tuple[str, ScenarioRow, int]], lake_dir: Path,
                    progress: Progress | None = None,
                    run_batch: Callable[..., Awaitable[int]] | None = None) -> int:
    """Run chats in batches (at most enough batches in flight to keep ``concurrency`` chats
    busy, so memory stays flat however many chats there are); every finished batch is
    persisted before the next starts. Returns the number of failed chats."""
    size = ctx.options.batch_size
    batches = [chats[i:i + size] for i in range(0, len(chats), size)]
    window = max(2, -(-ctx.options.concurrency // size) + 1)
    failed = 0

    async def default_batch(no: int, batch: list[tuple[str, ScenarioRow, int]]) -> int:
        return await run_batch_now(ctx, no, batch, lake_dir, progress)

    runner = run_batch or default_batch
    pending: set[asyncio.Task] = set()
    for no, batch in enumerate(batches):
        if len(pending) >= window:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            failed += sum(t.result() for t in done)
        pending.add(asyncio.ensure_future(runner(no, batch)))
    if pending:
        done, _ = await asyncio.wait(pending)
        failed += sum(t.result() for t in done)
    return failed


async def run_batch_now(ctx: ChatContext, no: int, batch: list[tuple[str, ScenarioRow, int]], lake_dir: Path,
                        progress: Progress | None) -> int:
    """Run a batch's chats (progress advances as each one ends), then persist the batch."""

    async def one(cid: str, row: ScenarioRow, k: int):
        result = await run_chat(ctx, cid, row, k)
        if progress is not None and result is not None:
            progress.advance(1, failed=int(result[0].status == "failed"))
        return result

    results = [r for r in await asyncio.gather(*(one(cid, row, k) for cid, row, k in batch)) if r is not None]
    if not results:  # the budget was spent before any of them started
        return 0
    await asyncio.to_thread(write_batch, lake_dir, ctx.execution_id, results,
                            crash_after=getattr(ctx.settings, "test_crash_after", None))
    return sum(1 for c, _ in results if c.status == "failed")


# --------------------------------------------------------------------------- the stage
def run_target(con, scenario_id: str) -> tuple[dict[str, Any], Any]:
    """A scenario's catalog row and its agent definition (an ``AgentDefinition``); RunError
    when either is missing."""
    import orjson

    from models.scenario import AgentDefinition
    from tasks.store import catalog

    sc = catalog.one(con, "get_scenario", {"scenario_id": scenario_id})
    if sc is None:
        raise RunError(f"no scenario {scenario_id}; list them with `replay scenarios list`")
    a = catalog.one(con, "get_agent_definition", {"agent_name": sc["agent_name"], "version": sc["agent_version"]})
    if a is None:
        raise RunError(f"scenario {scenario_id} names agent {sc['agent_name']} v{sc['agent_version']}, which this "
                       "catalog does not hold; import the scenario again with its agent definition")
    agent = AgentDefinition(agent_name=a["agent_name"], version=a["version"], description=a["description"] or "",
                            system_prompt=a["system_prompt"], tools=orjson.loads(a["tools"]) if a["tools"] else [],
                            model=a["model"], agent_type=a["agent_type"])
    return sc, agent


def create_run(con, settings, scenario_id: str, agent_ref: str, options: RunOptions,
               replay_id: str | None = None) -> tuple[str, str, int]:
    """Store a run test and its execution (running); returns (run_test_id, execution_id, total chats).
    With ``replay_id`` the replay session moves to COMPLETED (it must be GENERATING)."""
    from tasks.scenario import replays
    from tasks.store import catalog

    sc, _agent = run_target(con, scenario_id)
    if replay_id:
        rs = replays.get(con, replay_id)
        replays.check_transition(rs.state, "COMPLETED")
    run_test_id = "rt_" + uuid.uuid4().hex[:12]
    execution_id = "ex_" + uuid.uuid4().hex[:12]
    at = now()
    total = sc["row_count"] * options.repeat
    con.execute(catalog.sql("insert_run_test"), {
        "run_test_id": run_test_id, "name": options.name or f"{sc['scenario_name']} vs {agent_ref}",
        "scenario_id": scenario_id, "agent_name": sc["agent_name"], "agent_version": sc["agent_version"],
        "mode": options.mode, "tool_mode": options.tool_mode, "agent_ref": agent_ref, "replay_id": replay_id,
        "options": options.model_dump_json(), "created_at": at})
    con.execute(catalog.sql("insert_execution"), {"execution_id": execution_id, "run_test_id": run_test_id,
                                                  "agent_ref": agent_ref, "started_at": at, "total_chats": total,
                                                  **owner_params()})
    if replay_id:
        replays.transition(con, replay_id, "COMPLETED", run_test_id=run_test_id)
    return run_test_id, execution_id, total


def owner_params() -> dict[str, Any]:
    """This process as the owner of an execution (``executions.owner_*``): a ``running``
    execution whose owner has ended was interrupted (``replay runs list`` says so)."""
    from tasks.common.processes import this_process

    me = this_process()
    return {"owner_pid": me["pid"], "owner_host": me["host"], "owner_start": me["start"]}


def claim(con, execution_id: str) -> None:
    """The execution is running now, in this process (a resume takes it over)."""
    from tasks.store import catalog

    con.execute(catalog.sql("claim_execution"), {"execution_id": execution_id, **owner_params()})


def load_execution(con, execution_id: str) -> Execution:
    """An execution with its run test and options; RunError when there is none."""
    from tasks.store import catalog

    row = catalog.one(con, "get_execution", {"execution_id": execution_id})
    if row is None:
        raise RunError(f"no execution {execution_id}; list them with `replay sql \"select * from executions\"`")
    return Execution.model_validate({**row, "options": RunOptions.model_validate_json(row["options"])})


async def run_with_agent(settings, execution_id: str, scenario_id: str, agent_ref: str, agent_def,
                         opts: RunOptions, todo: list[tuple[str, ScenarioRow, int]], progress: Progress | None = None,
                         batch_runner: Callable[..., Awaitable[int]] | None = None, spend: Any = None) -> int:
    """Load the agent, run ``todo`` in batches under one concurrency limit, close what was
    opened; returns the failed chats. ``spend``: a budget's count (no new chat past it).
    ``batch_runner(ctx, no, batch, lake_dir, progress)`` runs a batch (a Prefect task, say); by default :func:`run_batch_now`, here."""
    from tasks.simulate import agents as agents_mod

    agent = agents_mod.load_agent(agent_ref, agent_def, opts, settings)
    ctx = ChatContext(execution_id, scenario_id, agent, opts, settings, asyncio.Semaphore(opts.concurrency),
                      llm_client=make_user_client(settings, opts), spend=spend)
    run_batch = (lambda no, b: batch_runner(ctx, no, b, settings.lake_dir, progress)) if batch_runner else None
    try:
        return await run_chats(ctx, todo, settings.lake_dir, progress, run_batch=run_batch)
    finally:
        await agent.aclose()
        if ctx.llm_client is not None:
            await ctx.llm_client.aclose()


def run_async(coro):
    """Run a coroutine on uvloop when it is there (2-4x less loop overhead per turn), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def make_user_client(settings, opts: RunOptions):
    """The simulated user's model client (simulate and hybrid modes), shared by all chats."""
    if opts.mode == "replay" or not getattr(settings, "llm_base_url", None):
        return None
    from tasks.common.llm import make_llm_client

    return make_llm_client(settings, asynchronous=True)


def finish(con, settings, execution_id: str, ran: int, seconds: float, mode: str = "in-process",
           stopped: str | None = None) -> ExecutionInfo:
    """Count the persisted chats, set the execution's status and counts; returns its KPIs and
    why chats failed (grouped by reason). ``stopped``: why chats were left (a budget)."""
    from tasks.simulate.failures import error_reasons, reasons_line
    from tasks.store import catalog

    ex = load_execution(con, execution_id)
    statuses = finished_chats(settings.lake_dir, execution_id)
    completed = sum(1 for s in statuses.values() if s == "completed")
    failed = sum(1 for s in statuses.values() if s == "failed")
    total = ex.total_chats
    opts: RunOptions = ex.options
    if completed + failed < total:
        status, error = "interrupted", f"{total - completed - failed} chats not run; replay runs resume {execution_id}"
        if stopped:
            error = f"{stopped.split(':')[0]}; {error}"
    elif total and failed / total > opts.max_failure_rate:
        status, error = "failed", f"{failed} of {total} chats failed (> {opts.max_failure_rate:.0%})"
    else:
        status, error = "completed", None
    catalog.refresh_views(con, settings.lake_dir)
    errors = error_reasons(con, execution_id) if failed else []
    if status == "failed" and errors:
        error += f"; most often {reasons_line(errors, limit=1)}"
    warnings = tool_warnings(con, ex)
    con.execute(catalog.sql("finish_execution"), {"execution_id": execution_id, "ended_at": now(), "status": status,
                                                  "completed_chats": completed, "failed_chats": failed, "error": error})
    return ExecutionInfo(run_test_id=ex.run_test_id, execution_id=execution_id, status=status, total_chats=total,
                         completed_chats=completed, failed_chats=failed, ran_now=ran, seconds=round(seconds, 3),
                         completion_pct=round(100.0 * completed / total, 4) if total else 0.0, mode=mode,
                         errors=errors, warnings=warnings)


def tool_warnings(con, ex: Execution) -> list[str]:
    """An agent that never called a tool its definition declares, over the whole execution
    (a model that ignores its tools answers without them, and no chat fails): one warning."""
    from tasks.store import catalog

    _sc, agent_def = run_target(con, ex.scenario_id)
    if not agent_def.tools:
        return []
    use = catalog.one(con, "execution_tool_use", {"execution_id": ex.execution_id}) or {}
    if not use.get("turns") or use.get("turns_with_tools"):
        return []
    names = [t.get("function", t).get("name") for t in agent_def.tools if isinstance(t, dict)]
    shown = ", ".join(n for n in names[:5] if n) + (", ..." if len(names) > 5 else "")
    return [f"the agent never called a tool in {use['turns']} turns of execution {ex.execution_id}, though "
            f"{len(names)} are declared ({shown}): a model that ignores its tools answers without them"]