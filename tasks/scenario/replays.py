"""Replay sessions: what to replay (sessions or single traces of a project) and its state.

Pure helpers first (suggestions, transition checks), then the stage functions that take a
catalog connection. States: INIT -> GENERATING (scenario generation started) -> COMPLETED
(a run test was created from it) or FAILED (with the reason); models.scenario.TRANSITIONS
lists what is allowed, anything else is refused. Every transition's time is kept.
"""

from __future__ import annotations

import uuid
import warnings
from datetime import datetime
from typing import Any

import duckdb
import orjson

from models.scenario import TRANSITIONS, ReplaySession, ReplayType
from tasks.common.clock import now
from tasks.common.errors import ReplayError
from tasks.common.secrets import scrub
from tasks.store import catalog


class ReplaySessionError(ReplayError):
    """A refused request (bad selection, unknown id, illegal transition): one-line reason."""


def date_tag(at: datetime) -> str:
    return at.strftime("%d_%m_%y")


def suggest_names(project: str, at: datetime, n_scenarios: int) -> dict[str, str]:
    """Future AGI's naming: {project}_replay_agent_{dd_mm_yy}, {project}_replay_{dd_mm_yy}_v{n}."""
    tag = date_tag(at)
    return {"agent_name": f"{project}_replay_agent_{tag}",
            "scenario_name": f"{project}_replay_{tag}_v{n_scenarios + 1}"}


def check_transition(current: str, new: str) -> None:
    if new not in TRANSITIONS.get(current, set()):
        raise ReplaySessionError(f"a replay session in state {current} cannot move to {new}")


class NothingSelected(ReplaySessionError):
    """A valid selection that keeps no session (or trace) of the project."""


def where_expression(where: str) -> duckdb.Expression:
    """``where`` parsed by DuckDB as exactly one expression, or a one-line refusal: parentheses
    that close the predicate early, a UNION, a second statement or a modifier do not parse as
    one expression."""
    try:
        return duckdb.SQLExpression(where)
    except duckdb.Error as exc:
        raise ReplaySessionError(f"--where must be one predicate (a boolean expression over the view's "
                                 f"columns): {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    return " ".join((str(exc).splitlines() or [type(exc).__name__])[0].split())


def _where_ids(con, project: str, replay_type: ReplayType, where: str) -> list[str]:
    """The ids of the project's sessions (or traces) that ``where`` keeps. The predicate is bound
    over the project's rows only: they are copied into a sandbox (an in-memory database with
    external access off) where it is evaluated, so it can read neither a file nor another
    project's rows."""
    view, key = ("sessions", "session_id") if replay_type == "session" else ("turns", "trace_id")
    expr = where_expression(where)
    with warnings.catch_warnings():  # "an extra copy of the rows": one project's rows, once
        warnings.simplefilter("ignore")
        rows = con.execute(catalog.sql(f"project_{view}"), {"project": project}).to_arrow_table()
    memory_limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    with catalog.sandbox(view, rows, memory_limit) as box:
        rel = box.table(view)
        try:
            kind = str(rel.select(expr).types[0])
            if kind != "BOOLEAN":
                raise ReplaySessionError(f"--where must be one predicate (a boolean expression), not a {kind}: {where}")
            return [r[0] for r in rel.filter(expr).order(f"started_at, {key}").select(key).fetchall()]
        except duckdb.Error as exc:
            raise ReplaySessionError(f"--where failed on the {view} view: {_first_line(exc)}") from None


def select_ids(con, project: str, replay_type: ReplayType, ids: list[str] | None, select_all: bool,
               where: str | None) -> list[str]:
    """The session (or trace) ids a replay session covers; ReplaySessionError with a one-line reason
    when the selection is missing, ambiguous, unknown, of another project, or empty."""
    # an id is taken as given (the CLI strips the comma-separated form); a blank one is no id
    ids = [i for i in ids or [] if i and not i.isspace()]
    chosen = [bool(ids), select_all, bool(where)]
    if sum(chosen) == 0:
        raise ReplaySessionError("choose what to replay: --ids ID,ID or --all or --where SQL")
    if sum(chosen) > 1:
        raise ReplaySessionError("give only one of --ids, --all, --where")
    noun = "session" if replay_type == "session" else "trace"
    if ids:
        wanted = list(dict.fromkeys(ids))
        rows = dict(con.execute(catalog.sql(f"projects_of_{noun}s"), {"ids": wanted}).fetchall())
        unknown = [i for i in wanted if i not in rows]
        if unknown:
            raise ReplaySessionError(f"unknown {noun} id{'s' if len(unknown) > 1 else ''}: {', '.join(unknown[:10])}"
                              + (f" (and {len(unknown) - 10} more)" if len(unknown) > 10 else ""))
        other = [i for i in wanted if rows[i] != project]
        if other:
            raise ReplaySessionError(f"{noun} id{'s' if len(other) > 1 else ''} of another project than {project}: "
                              + ", ".join(f"{i} ({rows[i]})" for i in other[:10]))
        return wanted
    if where:
        found = _where_ids(con, project, replay_type, where)
    else:
        found = [r[0] for r in con.execute(catalog.sql(f"{noun}_ids_of_project"), {"project": project}).fetchall()]
    if not found:
        what = f"matching --where {where!r}" if where else "at all"
        raise NothingSelected(f"project {project} has no {noun}s {what}; nothing to replay")
    return found


def _transitions_json(items: list[dict[str, Any]]) -> str:
    return orjson.dumps(items, default=str).decode()


def create(con, project: str, replay_type: ReplayType, ids: list[str] | None = None,
           select_all: bool = False, where: str | None = None) -> ReplaySession:
    """Store a replay session in state INIT; returns it with the suggestions."""
    if replay_type not in ("session", "trace"):
        raise ReplaySessionError(f"--type must be session or trace, not {replay_type!r}")
    selected = select_ids(con, project, replay_type, ids, select_all, where)
    at = now()
    n = catalog.scalar(con, "count_project_scenarios", {"project": project}) or 0
    names = suggest_names(project, at, n)
    existing = con.execute(catalog.sql("latest_agent_definition"), {"agent_name": None, "project": project}).fetchone()
    suggestions = {
        **names,
        "agent_description": (f"The {project} agent as it behaved in production, rebuilt from "
                              f"{len(selected)} {replay_type}{'s' if len(selected) != 1 else ''}."),
        "existing_agent": ({"agent_name": existing[0], "version": existing[1]} if existing else None),
    }
    replay_id = "rpl_" + uuid.uuid4().hex[:12]
    con.execute(catalog.sql("insert_replay_session"), {
        "replay_id": replay_id, "project": project, "replay_type": replay_type, "ids": selected,
        "select_all": select_all, "where_sql": where,
        "transitions": _transitions_json([{"state": "INIT", "at": at.isoformat()}]),
        "agent_name": None, "scenario_name": None,
        "suggestions": orjson.dumps(suggestions).decode(), "created_at": at})
    return get(con, replay_id)


def get(con, replay_id: str) -> ReplaySession:
    out = catalog.one(con, "get_replay_session", {"replay_id": replay_id})
    if out is None:
        raise ReplaySessionError(f"no replay session {replay_id}; list them with `replay replays list`")
    for k in ("transitions", "suggestions"):
        if isinstance(out.get(k), str):
            out[k] = orjson.loads(out[k])
    return ReplaySession.model_validate({**out, "suggestions": out.get("suggestions") or {}})


def list_all(con, project: str | None = None) -> list[dict[str, Any]]:
    return catalog.rows(con, "list_replay_sessions", {"project": project})


def transition(con, replay_id: str, new_state: str, reason: str | None = None,
               run_test_id: str | None = None) -> ReplaySession:
    """Move a replay session to ``new_state`` (refused when not allowed); times are kept, and the
    reason with credentials masked (it is often an error's text)."""
    reason = scrub(reason) if reason else None
    rs = get(con, replay_id)
    check_transition(rs.state, new_state)
    at = now()
    items = list(rs.transitions) + [{"state": new_state, "at": at.isoformat(),
                                        **({"reason": reason} if reason else {})}]
    con.execute(catalog.sql("update_replay_state"), {
        "replay_id": replay_id, "state": new_state, "state_reason": reason if new_state == "FAILED" else None,
        "transitions": _transitions_json(items), "updated_at": at, "run_test_id": run_test_id})
    return get(con, replay_id)


def create_selection(con, project: str, where: str) -> ReplaySession | None:
    """A replay session (INIT) over the project's sessions that ``where`` keeps, or None when
    ``where`` is a valid predicate that keeps none of them (the nightly's "nothing new");
    any other refusal is raised."""
    try:
        return create(con, project, "session", where=where)
    except NothingSelected:
        return None
