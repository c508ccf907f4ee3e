"""What a run will cost, before it runs (``replay run --dry-run``), and what it spends as it
runs (``--budget-tokens`` / ``--budget-usd``).

The estimate reads the scenario's rows: each replayed turn is expected to cost what production's
turn cost (its recorded ``input_tokens`` / ``output_tokens``), times the repetitions; the
simulated user (simulate mode: every turn; hybrid: at most every turn) and the LLM judges
(when a model is configured: ``task_completion`` and ``csat`` once a chat,
``ground_truth_match`` once a production answer) are counted from the text they will read
(about four characters a token). Prices are USD per 1M tokens from a small table
(``prices.json`` here; ``REPLAY_PRICES_FILE`` or ``--prices FILE`` replaces it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from models.scenario import ScenarioRow
from models.simulate import Budget, CostEstimate, CostLine, RunOptions
from tasks.common.errors import ReplayError

BUNDLED_PRICES = Path(__file__).with_name("prices.json")
CHARS_PER_TOKEN = 4
USER_PROMPT_TOKENS = 350  # the simulated user's instructions (persona, rules), without the chat
JUDGE_PROMPT_TOKENS = 300  # a judge's rubric
REPLY_TOKENS = 60  # a simulated user's message or a judge's verdict, when nothing better is known
CHAT_JUDGES = 2  # task_completion, csat


class PriceError(ReplayError):
    """A price table that cannot be read."""


def load_prices(path: Path | str | None = None) -> tuple[dict[str, tuple[float, float]], str]:
    """{model: (USD per 1M input tokens, per 1M output)} and where it came from."""
    src = Path(path) if path else BUNDLED_PRICES
    try:
        raw = json.loads(src.read_text())
        table = {k: (float(v["input"]), float(v["output"])) for k, v in raw.items() if not k.startswith("_")}
    except FileNotFoundError:
        raise PriceError(f"no such price table: {src}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PriceError(f"price table {src}: expected {{\"model\": {{\"input\": USD per 1M, \"output\": "
                         f"USD per 1M}}}} ({type(exc).__name__}: {exc})") from None
    return table, (str(src) if path else "bundled")


def price_for(prices: dict[str, tuple[float, float]], model: str | None) -> tuple[str, tuple[float, float]] | None:
    """The table's entry for ``model``: its exact name, else the longest name it starts with
    (``gpt-4o-mini-2024-07-18`` -> ``gpt-4o-mini``); a ``provider/`` prefix is ignored."""
    if not model:
        return None
    for name in (model, model.rsplit("/", 1)[-1]):
        if name in prices:
            return name, prices[name]
        hits = [k for k in prices if name.startswith(k)]
        if hits:
            key = max(hits, key=len)
            return key, prices[key]
    return None


def usd(price: tuple[float, float] | None, input_tokens: int, output_tokens: int) -> float | None:
    if price is None:
        return None
    return (input_tokens * price[0] + output_tokens * price[1]) / 1e6


def _tokens(text: Any) -> int:
    return -(-len(str(text or "")) // CHARS_PER_TOKEN)


def agent_model(options: RunOptions, agent_def: Any, rows: list[ScenarioRow]) -> str | None:
    """The model the agent under test answers with: ``--model``, the agent definition's, else
    production's (the first recorded turn's)."""
    if options.model:
        return options.model
    if getattr(agent_def, "model", None):
        return agent_def.model
    return next((t.model for r in rows for t in r.expected_turns if t.model), None)


def _row_turns(row: ScenarioRow, options: RunOptions) -> int:
    """The turns a chat of this row is expected to have."""
    return min(max(len(row.user_turns), 1 if options.mode == "simulate" else 0), options.max_turns)


def _agent_line(rows: list[ScenarioRow], options: RunOptions, model: str | None) -> CostLine:
    calls = tin = tout = 0
    for row in rows:
        n = _row_turns(row, options)
        turns = row.expected_turns[:n]
        calls += n
        tin += sum(t.input_tokens for t in turns)
        tout += sum(t.output_tokens for t in turns)
        if n > len(turns) and turns:  # simulate past production's turns: as its average turn
            tin += (n - len(turns)) * sum(t.input_tokens for t in turns) // len(turns)
            tout += (n - len(turns)) * sum(t.output_tokens for t in turns) // len(turns)
    k = options.repeat
    return CostLine(what="agent", model=model, calls=calls * k, input_tokens=tin * k, output_tokens=tout * k)


def _chat_text_tokens(row: ScenarioRow, n: int) -> list[int]:
    """The tokens of the chat so far before each of its ``n`` turns."""
    seen, out = 0, []
    for i in range(n):
        out.append(seen)
        t = row.expected_turns[i] if i < len(row.expected_turns) else None
        seen += _tokens(row.user_turns[i] if i < len(row.user_turns) else "") + _tokens(t.assistant_message if t else "")
    return out + [seen]


def _user_line(rows: list[ScenarioRow], options: RunOptions, model: str | None) -> CostLine:
    calls = tin = tout = 0
    for row in rows:
        n = _row_turns(row, options)
        before = _chat_text_tokens(row, n)
        base = USER_PROMPT_TOKENS + _tokens(row.situation) + _tokens(row.outcome)
        calls += n
        tin += sum(base + b for b in before[:n])
        tout += sum(_tokens(u) or REPLY_TOKENS for u in row.user_turns[:n]) + REPLY_TOKENS * max(0, n - len(row.user_turns))
    k = options.repeat
    return CostLine(what="simulated_user", model=model, calls=calls * k, input_tokens=tin * k, output_tokens=tout * k)


def _judge_line(rows: list[ScenarioRow], options: RunOptions, model: str | None) -> CostLine:
    calls = tin = tout = 0
    for row in rows:
        n = _row_turns(row, options)
        chat = _chat_text_tokens(row, n)[-1]
        answered = [t for t in row.expected_turns[:n] if (t.assistant_message or "").strip()]
        calls += CHAT_JUDGES + len(answered)
        tin += CHAT_JUDGES * (JUDGE_PROMPT_TOKENS + chat + _tokens(row.situation) + _tokens(row.outcome))
        tin += sum(JUDGE_PROMPT_TOKENS + 2 * _tokens(t.assistant_message) + _tokens(t.user_message) for t in answered)
        tout += (CHAT_JUDGES + len(answered)) * REPLY_TOKENS
    k = options.repeat
    return CostLine(what="judge", model=model, calls=calls * k, input_tokens=tin * k, output_tokens=tout * k)


def estimate(settings: Any, scenario_id: str, agent_ref: str, options: RunOptions,
             evaluator_refs: list[str] | None = None, prices_file: Path | str | None = None) -> CostEstimate:
    """The expected calls, tokens and cost of ``replay run`` with these options (reads the
    catalog, writes nothing)."""
    from tasks.evaluate.evaluators.judge import judge_model
    from tasks.scenario import get_scenario
    from tasks.store import catalog

    prices, source = load_prices(prices_file or getattr(settings, "prices_file", None))
    with catalog.reader(settings) as con:
        _sc, rows, agent_def = get_scenario(con, scenario_id)
    lines = [_agent_line(rows, options, agent_model(options, agent_def, rows))]
    notes: list[str] = []
    llm = judge_model(settings)
    if options.mode in ("simulate", "hybrid"):
        lines.append(_user_line(rows, options, llm))
        if options.mode == "hybrid":
            notes.append("hybrid: the simulated user is counted on every turn (an upper bound: it speaks only "
                         "after a divergence)")
    if llm:
        lines.append(_judge_line(rows, options, llm))
    else:
        notes.append("no judge calls: no model configured (REPLAY_LLM_BASE_URL, REPLAY_LLM_MODEL), the "
                      "evaluators score without one")
    if evaluator_refs:
        notes.append(f"custom evaluators not counted: {', '.join(evaluator_refs)}")
    for line in lines:
        hit = price_for(prices, line.model)
        line.price = hit[0] if hit else None
        line.usd = usd(hit[1] if hit else None, line.input_tokens, line.output_tokens)
        if hit is None:
            notes.append(f"{line.what}: no price for model {line.model or '(unknown)'} in the price table "
                         f"({source}); give one with --prices FILE")
    costs = [line.usd for line in lines]
    return CostEstimate(
        scenario_id=scenario_id, agent_ref=agent_ref, mode=options.mode, rows=len(rows), repeat=options.repeat,
        chats=len(rows) * options.repeat, lines=lines, calls=sum(x.calls for x in lines),
        tokens=sum(x.input_tokens + x.output_tokens for x in lines),
        usd=None if any(c is None for c in costs) else round(sum(costs), 6), prices=source, notes=notes)


class Spend:
    """What an invocation's chats have spent against its :class:`Budget` (counted as each chat
    finishes, from its recorded tokens, priced by the agent's model)."""

    def __init__(self, budget: Budget | None, price: tuple[float, float] | None) -> None:
        self.budget, self.price = budget, price
        self.tokens, self.usd = 0, 0.0
        if budget is not None and budget.usd is not None and price is None:
            raise PriceError("--budget-usd needs the agent's model in the price table: give one with --prices "
                             "FILE, or use --budget-tokens")

    def add(self, input_tokens: int, output_tokens: int) -> None:
        self.tokens += input_tokens + output_tokens
        self.usd += usd(self.price, input_tokens, output_tokens) or 0.0

    def exhausted(self) -> bool:
        b = self.budget
        return b is not None and ((b.tokens is not None and self.tokens >= b.tokens)
                                  or (b.usd is not None and self.usd >= b.usd))

    def line(self, not_run: int) -> str:
        b = self.budget
        spent = []
        if b is not None and b.tokens is not None:
            spent.append(f"{self.tokens:,} of {b.tokens:,} tokens")
        if b is not None and b.usd is not None:
            spent.append(f"${self.usd:.4f} of ${b.usd:.4f}")
        return f"budget reached ({' and '.join(spent)} spent): {not_run} chats not run"
