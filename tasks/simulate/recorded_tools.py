"""Tools that answer from production's recorded results (``--tools recorded``).

:class:`RecordedTools` is what an agent under test gets as ``input.tools``:
``await tools.call(name, arguments)``. It is built from a scenario row's
``expected_turns``; the executor calls :meth:`RecordedTools.set_turn` before each turn.

Matching a call (name + arguments) to a recorded one:

1. Same tool name and matching KEY arguments (``tasks.simulate.toolmatch``: ids, codes,
   amounts, dates compared after normalisation, ``1 == 1.0``, by the tool's ``args`` mode of
   the run's ``ToolMatchConfig``); free-text arguments (a reason, a note, a query) never make
   a call off-script: ``transfer_to_human`` with another reason is answered as production's
   was. Candidates are ranked: the current turn first; then, within the current turn and
   within the other turns, recorded calls not served yet before ones already served (a
   recorded call can be served again: agents retry); then the nearest turn (an earlier
   turn before a later one at the same distance); then the most similar free text; then
   the order in the turn. So a refund that failed in production turn 0 and succeeded in
   turn 1 fails again when the agent tries it in turn 0, and succeeds in turn 1.
2. A recorded call with production status ``error`` answers with its recorded result
   (or ``{"error": "<name> failed in production (no error message was recorded)"}`` when
   production kept none) and is logged with status ``error``.
3. No call with matching key arguments: the call is off-script, and the policy decides:
   ``"error"`` answers ``{"error": "off-script: no recorded result for <name>(<args>)"}``
   (status error, source ``off_script``); ``"nearest"`` answers with the recorded call of
   the same tool whose canonical arguments are most similar (rapidfuzz ``fuzz.ratio``;
   ties: current turn, unused, nearest turn, order), source ``nearest``, or with the
   ``"error"`` answer when the tool was never recorded; ``"fail"`` logs the call (status
   error, source ``off_script``) and raises :class:`OffScriptError`, which fails the chat.

Results are returned parsed (JSON text -> Python) when they parse, else as the text, and
as a fresh copy each time (an agent that mutates one does not change the recording).
Every call is appended to :attr:`RecordedTools.log` as a ``ToolCallLog``.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from rapidfuzz import fuzz

from models.scenario import ScenarioRow, Turn
from models.simulate import OffScript, ToolCallLog, ToolMatchConfig
from tasks.common.errors import ReplayError
from tasks.simulate.arguments import canonical_json, parse_args
from tasks.simulate.toolmatch import Split, match_split, split_args

OFF_SCRIPT_POLICIES: tuple[str, ...] = ("error", "nearest", "fail")
_ARGS_SHOWN = 200  # characters of the arguments quoted in an off-script message


class OffScriptError(ReplayError):
    """The agent called a tool with arguments production never recorded, under
    ``--off-script fail``. One-line message (what, which turn, what to do)."""

    def __init__(self, message: str, *, name: str | None = None, arguments: Any = None,
                 turn: int | None = None) -> None:
        super().__init__(" ".join(str(message).split()))
        self.name = name
        self.arguments = arguments
        self.turn = turn

    def __reduce__(self) -> Any:  # survives pickling (Prefect stores task exceptions)
        return (_rebuild, (self.args[0], self.name, self.arguments, self.turn))


def _rebuild(message: str, name: str | None, arguments: Any, turn: int | None) -> OffScriptError:
    return OffScriptError(message, name=name, arguments=arguments, turn=turn)


@dataclass
class RecordedCall:
    """One tool call production made, as the matcher sees it."""

    turn: int  # position of its turn in expected_turns
    position: int  # order within the turn
    id: str | None
    name: str
    arguments: Any
    key: str  # canonical JSON of the arguments
    result: Any  # as recorded (usually JSON text)
    status: str  # ok, error
    uses: int = 0
    split: Split | None = None  # (key, text) arguments (toolmatch.split_args), once first needed

    def answer(self) -> Any:
        """The recorded result, parsed when it is JSON; a fresh copy every time."""
        if self.result is None and self.status == "error":
            return {"error": f"{self.name} failed in production (no error message was recorded)"}
        value = self.result
        if isinstance(value, (str, bytes)):
            try:
                return orjson.loads(value)
            except orjson.JSONDecodeError:
                return value
        return copy.deepcopy(value)


def _shown(key: str) -> str:
    return key if len(key) <= _ARGS_SHOWN else key[: _ARGS_SHOWN - 3] + "..."


class RecordedTools:
    """Answers tool calls from a row's recorded production tool calls (module doc).

    ``RecordedTools(row.expected_turns, off_script="error", config=options.tool_match)`` or
    ``RecordedTools.from_row(row, off_script, config)``; ``config`` None: the default
    ``ToolMatchConfig``."""

    def __init__(self, expected_turns: Sequence[Turn | dict[str, Any]],
                 off_script: OffScript = "error", config: ToolMatchConfig | None = None) -> None:
        if off_script not in OFF_SCRIPT_POLICIES:
            raise ValueError(f"off_script must be one of {', '.join(OFF_SCRIPT_POLICIES)}, "
                             f"not {off_script!r}")
        self.off_script: OffScript = off_script
        self.config = config if config is not None else ToolMatchConfig()
        self.turn = 0
        self.log: list[ToolCallLog] = []
        self._log_turns: list[int] = []
        self._seq = itertools.count()
        self.recorded: list[RecordedCall] = []
        turns = [t if isinstance(t, Turn) else Turn.model_validate(t) for t in expected_turns]
        for ti, t in enumerate(turns):
            for pi, c in enumerate(t.tool_calls):
                if not c.name:
                    continue
                self.recorded.append(RecordedCall(
                    turn=ti, position=pi, id=c.id, name=c.name, arguments=c.arguments,
                    key=canonical_json(c.arguments), result=c.result,
                    status="error" if (c.status or "").lower() == "error" else "ok"))
        self._by_name: dict[str, list[RecordedCall]] = {}
        for r in self.recorded:
            self._by_name.setdefault(r.name, []).append(r)

    @classmethod
    def from_row(cls, row: ScenarioRow, off_script: OffScript = "error",
                 config: ToolMatchConfig | None = None) -> RecordedTools:
        return cls(row.expected_turns, off_script, config)

    # ---------------------------------------------------------------- the executor's side

    def set_turn(self, i: int) -> None:
        """The turn (0-based, as in expected_turns) the next calls belong to."""
        self.turn = int(i)

    def calls_for_turn(self, i: int) -> list[ToolCallLog]:
        """The log entries of turn ``i``, in call order."""
        return [entry for entry, t in zip(self.log, self._log_turns, strict=False) if t == i]

    def forget_turn(self, i: int) -> None:
        """Drop the log entries of turn ``i`` (a retried turn logs its calls again)."""
        keep = [(e, t) for e, t in zip(self.log, self._log_turns, strict=False) if t != i]
        self.log = [e for e, _ in keep]
        self._log_turns = [t for _, t in keep]

    @property
    def tool_names(self) -> list[str]:
        """The tools production called, in first-call order."""
        return list(self._by_name)

    # ---------------------------------------------------------------- the agent's side

    async def call(self, name: str, arguments: Any = None, *, call_id: str | None = None) -> Any:
        """The recorded answer to ``name(arguments)`` (module doc). ``call_id`` is the
        agent's id for the call (an OpenAI tool_call id), kept in the log."""
        return self.call_sync(name, arguments, call_id=call_id)

    def call_sync(self, name: str, arguments: Any = None, *, call_id: str | None = None) -> Any:
        """:meth:`call` without the coroutine (for sync agents and tests)."""
        turn = self.turn
        args = parse_args(arguments)
        key = canonical_json(args)
        cid = call_id or f"replay_t{turn}_{next(self._seq)}"
        match = self._matching(name, args, key, turn)
        source = "recorded"
        if match is None and self.off_script == "nearest":
            match = self._nearest(name, key, turn)
            source = "nearest"
        if match is not None:
            match.uses += 1
            result = match.answer()
            self._append(ToolCallLog(id=cid, name=name, arguments=args, result=result,
                                     status=match.status, source=source,
                                     matched_turn=match.turn), turn)
            return result
        reason = f"off-script: no recorded result for {name}({_shown(key)})"
        result = {"error": reason}
        self._append(ToolCallLog(id=cid, name=name, arguments=args, result=result,
                                 status="error", source="off_script"), turn)
        if self.off_script == "fail":
            recorded = (f"production called {name} with other key arguments{self._why(name, args, turn)}"
                        if name in self._by_name else f"production never called {name}")
            raise OffScriptError(
                f"turn {turn}: the agent called {name}({_shown(key)}), which production never "
                f"recorded ({recorded}); rerun with --off-script error or nearest to let the "
                "chat go on", name=name, arguments=args, turn=turn)
        return result

    # ---------------------------------------------------------------- matching

    def _rank(self, r: RecordedCall, turn: int) -> tuple[int, int, int, int, int]:
        return (r.turn != turn, r.uses > 0, abs(r.turn - turn), r.turn > turn, r.position)

    def _split(self, r: RecordedCall) -> Split:
        if r.split is None:
            r.split = split_args(r.name, r.arguments, self.config)
        return r.split

    def _matching(self, name: str, args: Any, key: str, turn: int) -> RecordedCall | None:
        """The best-ranked recorded call of ``name`` whose key arguments match (module doc)."""
        best, best_rank, split = None, None, None
        for r in self._by_name.get(name, ()):
            if r.key == key:  # equal arguments: a match under every mode
                sim = 1.0
            else:
                split = split if split is not None else split_args(name, args, self.config)
                m = match_split(name, split, self._split(r), self.config)
                if not m.key_ok:
                    continue
                sim = 1.0 if m.text_similarity is None else m.text_similarity
            rank = (*self._rank(r, turn)[:4], -sim, r.position)
            if best_rank is None or rank < best_rank:
                best, best_rank = r, rank
        return best

    def _why(self, name: str, args: Any, turn: int) -> str:
        """``" (amount 10 != 129.99)"``: the first key difference from the best-ranked
        recorded call of the tool."""
        nearest = min(self._by_name[name], key=lambda r: self._rank(r, turn))
        diffs = match_split(name, split_args(name, args, self.config), self._split(nearest), self.config).differences
        return f" ({diffs[0].split(': ', 1)[-1]})" if diffs else ""

    def _nearest(self, name: str, key: str, turn: int) -> RecordedCall | None:
        same = self._by_name.get(name)
        if not same:
            return None
        return min(same, key=lambda r: (-fuzz.ratio(key, r.key), *self._rank(r, turn)))

    def _append(self, entry: ToolCallLog, turn: int) -> None:
        self.log.append(entry)
        self._log_turns.append(turn)


__all__ = ["OFF_SCRIPT_POLICIES", "OffScriptError", "RecordedCall", "RecordedTools"]
