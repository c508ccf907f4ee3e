"""The ``replay`` command line (Typer). Commands compose flows/ and tasks/; no logic here.

Contract (README, "Commands"): ``--data-dir``/``REPLAY_DATA_DIR`` everywhere, ``--json`` prints
exactly one JSON object on stdout (``replay sql``: one JSON array of row objects), exit 0 on
success, else non-zero with a one-line reason on stderr (a traceback only with ``--debug``).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import os
import sys
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import orjson
import typer
from rich.console import Console
from rich.table import Table

from tasks.common.errors import ReplayError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Replay: turn production LLM-agent conversations into repeatable tests.\n\n"
                       "New here? 'uv run replay demo' runs the whole loop on the bundled sample and "
                       "ends with the commands to try next.")
out = Console() if sys.stdout.isatty() else Console(width=240)
err = Console(stderr=True)


@dataclass
class Ctx:
    data_dir: Optional[str]
    json: bool
    debug: bool

    def settings(self, **overrides: Any):
        from models.settings import load_settings

        return load_settings(data_dir=self.data_dir, **overrides)


class UserError(ReplayError):
    """A problem with the command line the user can fix; printed as one line."""


def _known_errors() -> tuple[type[BaseException], ...]:
    """What the CLI reports as one line without a traceback: Replay's own errors, invalid
    options (pydantic) and what the operating system refused."""
    from pydantic import ValidationError

    return (ReplayError, ValidationError, OSError)


def _say_error(msg: str) -> None:
    """One line on stderr, never wrapped, credentials masked (tasks.common.secrets)."""
    from tasks.common.secrets import scrub

    sys.stderr.write(f"replay: error: {' '.join(scrub(msg).split())}\n")


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so that Python's flush at exit does not fail on a closed pipe."""
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _stopped(exc: KeyboardInterrupt) -> int:
    """Ctrl-C, or SIGTERM/SIGINT under stop_on_signals (``Stopped``)."""
    from tasks.common.processes import Stopped

    if isinstance(exc, Stopped):
        _say_error(f"{exc} (cleanly: what was committed stays, nothing is half-written); "
                   "run the command again to finish")
        return 128 + exc.signum
    _say_error("interrupted")
    return 130


def _exit_code(ctx: typer.Context, exc: BaseException) -> int:
    """What a command that raised ``exc`` says on stderr (one line), and its exit code."""
    if isinstance(exc, KeyboardInterrupt):
        return _stopped(exc)
    if isinstance(exc, BrokenPipeError) or (isinstance(exc, SystemExit) and isinstance(exc.__context__,
                                                                                      BrokenPipeError)):
        _quiet_stdout()  # `replay sql ... | head`: the reader has what it wanted (rich exits on a closed pipe)
        return 141
    if ctx.obj.debug:
        traceback.print_exception(exc)
    if isinstance(exc, SystemExit):  # user code (an agent, an evaluator) called sys.exit where nothing caught it
        _say_error(f"user code called sys.exit({exc.code!r}) in replay {ctx.command_path.split(' ', 1)[-1]}; "
                   "run with --debug for the traceback")
        return 1
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):  # an option's value: the flag and what it accepts
        from replay.options import validation_message

        _say_error(validation_message(exc))
    elif isinstance(exc, _known_errors()):
        _say_error(str(exc).strip() or type(exc).__name__)
    else:
        first = str(exc).splitlines()[0] if str(exc) else ""
        _say_error(f"{type(exc).__name__}: {first} (run with --debug for the traceback)")
    return 1


def handled(command: Callable[..., None]) -> Callable[..., None]:
    """The CLI boundary around a command: a known error (``ReplayError``, invalid options, what
    the operating system refused) is its one-line reason on stderr and exit 1; anything else is
    its type and first line, with a hint to ``--debug`` (which adds the traceback)."""

    @functools.wraps(command)
    def wrapper(ctx: typer.Context, *args: Any, **kwargs: Any) -> None:
        try:
            command(ctx, *args, **kwargs)
        except typer.Exit:
            raise
        except BaseException as exc:  # noqa: BLE001 - the CLI boundary: one line, no traceback
            raise typer.Exit(_exit_code(ctx, exc)) from None

    return wrapper


def _jsonable(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)  # a stage's typed result
    return dump(mode="json") if callable(dump) else str(value)


def _emit_json(obj: Any) -> None:
    sys.stdout.write(orjson.dumps(obj, default=_jsonable).decode() + "\n")


@app.callback()
def main_options(
    ctx: typer.Context,
    data_dir: Optional[str] = typer.Option(None, "--data-dir", envvar="REPLAY_DATA_DIR",
                                           help="Data dir (lake/ and replay.duckdb), or a URL (s3://bucket/prefix) "
                                                "of the lake on object storage, the catalog staying on this machine "
                                                "(REPLAY_CATALOG_DIR). Default: ./data of the project."),
    json_out: bool = typer.Option(False, "--json", help="Print exactly one JSON object on stdout "
                                                        "(replay sql: one JSON array of row objects)."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
) -> None:
    ctx.obj = Ctx(data_dir=data_dir, json=json_out, debug=debug)


def _json_flag(ctx: typer.Context, local: bool) -> bool:
    return local or ctx.obj.json


def _on_catalog(ctx: typer.Context, fn: Callable[..., Any], *args: Any, write: bool = False) -> Any:
    """``fn(con, *args)`` on the data dir's catalog: read-only, or under the writer lock."""
    from tasks.store import catalog

    with (catalog.writer if write else catalog.reader)(ctx.obj.settings()) as con:
        return fn(con, *args)


# --------------------------------------------------------------------------- ingest
@app.command()
@handled
def ingest(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(None, help="OTLP/JSON lines files or folders (.gz too). A folder is walked "
                                                  "and every .json/.jsonl/.ndjson file in it is read as OTLP: point "
                                                  "at the trace files (data/samples/otlp, not data/samples)."),
    phoenix: Optional[str] = typer.Option(None, "--phoenix", help="Pull from a Phoenix server at this URL."),
    project: Optional[str] = typer.Option(None, "--project", help="Project name (Phoenix project; overrides service.name)."),
    api_key: Optional[str] = typer.Option(None, "--api-key", envvar="REPLAY_PHOENIX_API_KEY",
                                          help="Phoenix API key (or REPLAY_PHOENIX_API_KEY)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Extract spans (files or Phoenix) into the lake, then rebuild turns and sessions."""
    if phoenix and paths:
        raise UserError("give either PATH... or --phoenix URL, not both")
    if not phoenix and not paths:
        raise UserError("nothing to ingest: give PATH... or --phoenix URL --project NAME")
    if phoenix and not project:
        raise UserError("--phoenix needs --project NAME (the Phoenix project to pull)")
    settings = ctx.obj.settings(phoenix_api_key=api_key)
    if settings.prefect_api_url and phoenix:
        from tasks.common.secrets import scrub_url

        if scrub_url(phoenix) != phoenix:
            raise UserError("the Phoenix URL carries credentials, and Prefect stores a flow run's parameters in "
                            "clear: give the key with --api-key or REPLAY_PHOENIX_API_KEY, or run without "
                            "PREFECT_API_URL")
    from tasks.common.processes import stop_on_signals

    with stop_on_signals():  # SIGTERM/Ctrl-C: workers stopped, nothing half-published, one line, exit 143/130
        if settings.prefect_api_url:  # on the configured Prefect server, as the ingest flow
            from flows.ingest import ingest_flow
            from models.ingest import IngestInfo

            info = IngestInfo.model_validate(ingest_flow(paths=[str(p) for p in paths or []], project=project,
                                                         phoenix_url=phoenix, data_dir=str(settings.data_dir)))
        else:
            from tasks.ingest import run_ingest

            info = run_ingest(settings, paths=list(paths or []), project=project, phoenix_url=phoenix)
    if _json_flag(ctx, json_out):
        _emit_json(info.model_dump(mode="json"))
    else:
        out.print(f"read {info.read} span records: ingested {info.ingested}, rejected {info.rejected}, "
                  f"duplicates {info.duplicates} ({info.seconds:.2f} s, {info.mode})")
        out.print(f"catalog: {info.sessions} sessions, {info.turns} turns "
                  f"({info.sessionize.turns_written} turns rebuilt)")
        if info.rejected:
            out.print(f"[yellow]{info.rejected} rejected records: replay sql \"select * from rejects\"[/]")
        _next(ctx, ("sql", "select session_id, project, turn_count, error_count from sessions order by started_at "
                           "desc limit 20"),
              ("replays", "create", "--project", project or _top_project(ctx), "--type", "session", "--all"))


def _top_project(ctx: typer.Context) -> str:
    from tasks.store import catalog

    row = _on_catalog(ctx, catalog.one, "top_project", {})
    return row["project"] if row else "PROJECT"


# --------------------------------------------------------------------------- sql
TABLE_ROWS = 100  # rows the table format shows unless --all
TABLE_CELL = 60  # characters a table cell shows (csv and json print every value in full)


SQL_HELP = ("Run one read-only SQL statement on the catalog (never starts Prefect).\n\n"
            "It can read the lake's views and nothing else on disk. csv and json stream every row in full (json, "
            "also --json: one JSON array of row objects); the table shows the first 100 rows (--all: every row) "
            "with long cells cut. A query that starts with a -- comment goes after -- (replay sql -- \"QUERY\").")


@app.command("sql", help=SQL_HELP)
@handled
def sql_cmd(
    ctx: typer.Context,
    query: str = typer.Argument(..., help="Read-only SQL over the views (spans, turns, sessions, rejects, ...)."),
    fmt: str = typer.Option("table", "--format", "-f", help="table | json | csv"),
    json_out: bool = typer.Option(False, "--json", help="Same as --format json: one JSON array of row objects."),
    all_rows: bool = typer.Option(False, "--all", help=f"The table shows every row, not the first {TABLE_ROWS}."),
    allow_files: Optional[list[Path]] = typer.Option(
        None, "--allow-files", help="Also let the query read this directory (or file); repeatable. "
                                    "Without it the query reads the lake only."),
) -> None:
    """``replay sql`` (SQL_HELP)."""
    fmt_ = "json" if _json_flag(ctx, json_out) else fmt
    if fmt_ not in ("table", "json", "csv"):
        raise UserError(f"unknown --format {fmt_!r}: use table, json or csv")
    missing = [str(p) for p in allow_files or [] if not p.exists()]
    if missing:
        raise UserError(f"--allow-files: no such file or directory: {', '.join(missing)}")
    from tasks.store import catalog

    with catalog.sql_reader(ctx.obj.settings(), allow_files or []) as con:
        cols, batches = catalog.stream_read_only(con, query)
        write_rows(cols, batches, fmt_, max_rows=None if all_rows else TABLE_ROWS, cell_chars=TABLE_CELL,
                   page_rows=TABLE_ROWS)


def _cell(v: Any) -> Any:
    if isinstance(v, (dict, list)):
        return orjson.dumps(v, default=str).decode()
    return v


def _short(v: Any, chars: int | None) -> tuple[str, bool]:
    """A table cell: one line, at most ``chars`` characters (an ellipsis ends a cut one)."""
    text = "" if v is None else str(_cell(v))
    if chars is None:
        return text, False
    text = " ".join(text.split()) if ("\n" in text or "\r" in text) else text
    return (text[:chars - 1] + "…", True) if len(text) > chars else (text, False)


def print_rows(cols: list[str], rows: list[tuple], fmt: str) -> None:
    write_rows(cols, [rows], fmt)


def write_rows(cols: list[str], batches: Iterable[list[tuple]], fmt: str, max_rows: int | None = None,
               cell_chars: int | None = None, page_rows: int | None = None) -> None:
    """Rows as json (one array of row objects), csv (a header line, then rows) or a table. json and
    csv are written batch by batch as the rows come; the table shows ``max_rows`` rows at most (it
    says how many it left out), cuts cells to ``cell_chars`` and, uncapped, prints a table every
    ``page_rows`` rows."""
    if fmt == "json":
        _write_json(cols, batches)
    elif fmt == "csv":
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(cols)
        for batch in batches:
            w.writerows(["" if v is None else _cell(v) for v in r] for r in batch)
    else:
        _write_table(cols, batches, max_rows, cell_chars, page_rows)


def _write_json(cols: list[str], batches: Iterable[list[tuple]]) -> None:
    """One JSON array, the same bytes as ``orjson.dumps`` of the whole list, written a batch at a time."""
    first = True
    sys.stdout.write("[")
    for batch in batches:
        body = orjson.dumps([dict(zip(cols, r, strict=False)) for r in batch], default=_jsonable).decode()[1:-1]
        if body:
            sys.stdout.write(body if first else "," + body)
            first = False
    sys.stdout.write("]\n")


def _write_table(cols: list[str], batches: Iterable[list[tuple]], max_rows: int | None,
                 cell_chars: int | None, page_rows: int | None) -> None:
    """A rich table of the first ``max_rows`` rows; the rest are counted, not kept. With
    ``page_rows`` (``replay sql --all``) every ``page_rows`` rows are printed as they come, each
    page a table with its header."""
    page: list[list[str]] = []
    shown = total = 0
    cut = False

    def flush() -> None:
        t = Table(show_lines=False)
        for c in cols:
            t.add_column(c, overflow="fold")
        for cells in page:
            t.add_row(*cells)
        out.print(t)
        page.clear()

    for batch in batches:
        total += len(batch)
        for r in batch[:None if max_rows is None else max(0, max_rows - shown)]:
            cells = [_short(v, cell_chars) for v in r]
            cut = cut or any(c for _, c in cells)
            page.append([text for text, _ in cells])
            shown += 1
            if page_rows and len(page) == page_rows:
                flush()
    if page or shown == 0:
        flush()
    note = f" (long cells cut to {cell_chars} characters: --format csv or json prints them in full)" if cut else ""
    if shown < total:
        out.print(f"({shown} of {total} rows shown: {total - shown} not shown; --all shows every row){note}")
    else:
        out.print(f"({total} rows){note}")


# --------------------------------------------------------------------------- check
@app.command("check")
@handled
def check_cmd(
    ctx: typer.Context,
    quarantine: bool = typer.Option(False, "--quarantine",
                                    help="Move broken parts to <data_dir>/_quarantine/ (the queries go on without them)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Verify every part of the lake: readable Parquet, its table's schema, page checksums."""
    from tasks.store.check import run_check

    info = run_check(ctx.obj.settings(), quarantine=quarantine)
    if _json_flag(ctx, json_out):
        _emit_json(info.model_dump(mode="json"))
    else:
        _print_check(info)
    if info.broken:
        n = len(info.broken)
        where = (f"moved to {ctx.obj.settings().home / '_quarantine'}" if info.quarantined
                 else "replay check --quarantine moves them aside")
        _say_error(f"{n} broken part{'s' if n != 1 else ''} ({where})")
        raise typer.Exit(1)


@app.command("compact")
@handled
def compact_cmd(
    ctx: typer.Context,
    min_files: int = typer.Option(2, "--min-files", min=2,
                                  help="Fold a day partition or closed month with at least this many part files (default 2: all)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Fold the merge-on-read versions of turns and sessions into one part per day partition, and each
    closed month of spans, turns and sessions into one part."""
    from tasks.common.processes import stop_on_signals
    from tasks.store.compact import run_compact

    with stop_on_signals():  # SIGTERM/Ctrl-C: the old parts stay, or the switch ends first
        info = run_compact(ctx.obj.settings(), min_files)
    if _json_flag(ctx, json_out):
        _emit_json(info.model_dump(mode="json"))
        return
    for t in info.tables:
        months = f" ({t.months} closed month{'s' if t.months != 1 else ''})" if t.months else ""
        sys.stdout.write(f"{t.table}: {t.compacted} of {t.partitions} partitions compacted{months}, files "
                         f"{t.files_before} -> {t.files_after} (at most {t.max_files_before} -> {t.max_files_after} "
                         f"a partition), rows {t.rows_read} -> {t.rows_written}\n")
    sys.stdout.write(f"({info.seconds:.2f} s)\n")


def _print_check(info) -> None:
    """One line a broken part (path: reason), one line a table with parts that have no checksums."""
    for b in info.broken:
        sys.stdout.write(f"broken: {b.path}: {b.reason}\n")
    by_table: dict[str, list] = {}
    for w in info.warnings:
        by_table.setdefault(w.table, []).append(w)
    for table, ws in by_table.items():
        sys.stdout.write(f"warning: {len(ws)} part{'s' if len(ws) != 1 else ''} of {table}: {ws[0].reason} "
                         f"(e.g. {ws[0].path})\n")
    moved = f", {len(info.quarantined)} quarantined" if info.quarantined else ""
    sys.stdout.write(f"checked {info.parts} parts ({info.rows} rows in sound parts): {len(info.broken)} broken, "
                     f"{len(info.warnings)} without page checksums{moved} ({info.seconds:.2f} s)\n")


# --------------------------------------------------------------------------- replays
replays_app = typer.Typer(no_args_is_help=True, help="Replay sessions: what to replay, and their state.")
app.add_typer(replays_app, name="replays")


def _split_ids(ids: Optional[list[str]], ids_file: Optional[Path] = None) -> list[str]:
    """``--ids``: comma-separated, each id stripped; an id in double quotes may hold commas
    (``'"acme,inc",b'``, CSV quoting); repeatable. ``--ids-file``: one id a line, as written
    (an id may hold commas, quotes, spaces); blank lines skipped."""
    if ids and ids_file:
        raise ReplayError("give --ids or --ids-file, not both")
    if ids_file is not None:
        try:
            lines = ids_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ReplayError(f"cannot read --ids-file {ids_file}: {getattr(exc, 'strerror', None) or exc}") from None
        found = [ln for ln in lines if ln.strip()]
        if not found:
            raise ReplayError(f"--ids-file {ids_file} holds no id (one a line)")
        return found
    out = []
    for chunk in ids or []:
        for row in csv.reader([chunk], skipinitialspace=True):
            out.extend(i.strip() for i in row if i.strip())
    return out


@replays_app.command("create")
@handled
def replays_create(
    ctx: typer.Context,
    project: str = typer.Option(..., "--project", help="The project the sessions or traces belong to."),
    replay_type: str = typer.Option(..., "--type", help="session (multi-turn) or trace (one turn each)."),
    ids: Optional[list[str]] = typer.Option(None, "--ids", help='Session or trace ids, comma-separated '
                                            '(repeatable; quote an id holding a comma: \'"a,b",c\').'),
    ids_file: Optional[Path] = typer.Option(None, "--ids-file", help="A file of session or trace ids, one a line "
                                            "(as written: commas and quotes are part of the id)."),
    select_all: bool = typer.Option(False, "--all", help="Every session (or trace) of the project."),
    where: Optional[str] = typer.Option(None, "--where", help="A predicate over the sessions (or turns) view."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Create a replay session (state INIT) and print the suggested agent and scenario names."""
    from tasks.scenario import replays

    rs = _on_catalog(ctx, replays.create, project, replay_type, _split_ids(ids, ids_file), select_all, where,
                     write=True)
    if _json_flag(ctx, json_out):
        _emit_json(rs)
        return
    sug = rs["suggestions"]
    out.print(f"replay session [bold]{rs['replay_id']}[/]: {len(rs['ids'])} {rs['replay_type']}(s) of "
              f"{rs['project']}, state {rs['state']}")
    out.print(f"suggested: --agent-name {sug['agent_name']} --scenario-name {sug['scenario_name']}")
    if sug.get("existing_agent"):
        ea = sug["existing_agent"]
        out.print(f"existing agent definition: {ea['agent_name']} v{ea['version']} (reuse it with --agent-name)")
    out.print(f"next: replay scenarios generate {rs['replay_id']} --agent-name {sug['agent_name']} "
              f"--scenario-name {sug['scenario_name']}")


@replays_app.command("show")
@handled
def replays_show(ctx: typer.Context, replay_id: str = typer.Argument(...),
                 json_out: bool = typer.Option(False, "--json")) -> None:
    """One replay session with its ids, suggestions and state transitions."""
    from tasks.scenario import replays

    rs = _on_catalog(ctx, replays.get, replay_id)
    if _json_flag(ctx, json_out):
        _emit_json(rs)
    else:
        for k, v in rs.model_dump().items():
            out.print(f"[bold]{k}[/]: {_cell(v)}", highlight=False)


# --------------------------------------------------------------------------- scenarios
scenarios_app = typer.Typer(no_args_is_help=True, help="Scenarios: agent definition + rows a simulation runs.")
app.add_typer(scenarios_app, name="scenarios")


@scenarios_app.command("generate")
@handled
def scenarios_generate(
    ctx: typer.Context,
    replay_id: str = typer.Argument(..., help="The replay session (replay replays create)."),
    agent_name: str = typer.Option(..., "--agent-name"),
    scenario_name: str = typer.Option(..., "--scenario-name"),
    agent_description: Optional[str] = typer.Option(None, "--agent-description"),
    agent_type: str = typer.Option("text", "--agent-type", help="text (voice is not supported)."),
    rows: int = typer.Option(20, "--rows", help="1..1000"),
    persona: Optional[list[str]] = typer.Option(None, "--persona", help="Persona ids of data/personas.json."),
    custom_column: Optional[list[str]] = typer.Option(None, "--custom-column", help="NAME[=VALUE], repeatable."),
    graph: Optional[Path] = typer.Option(None, "--graph", help="Use this graph (JSON) instead of building one."),
    no_generate_graph: bool = typer.Option(False, "--no-generate-graph", help="Do not build a graph."),
    redact: bool = typer.Option(False, "--redact", help="Mask emails, phones, cards and REPLAY_REDACT_PATTERNS."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Generate the agent definition and the scenario (rows, graph) of a replay session."""
    if graph and no_generate_graph:
        raise UserError("give --graph FILE or --no-generate-graph, not both")
    settings = ctx.obj.settings()
    kwargs = dict(agent_name=agent_name, scenario_name=scenario_name, agent_description=agent_description,
                  agent_type=agent_type, rows=rows, persona_ids=persona or [], custom_columns=custom_column or [],
                  graph_file=str(graph) if graph else None, generate_graph=not no_generate_graph, redact=redact)
    if settings.prefect_api_url:  # on the configured Prefect server, as the scenario flow
        from flows.scenario import scenario_flow

        result = scenario_flow(replay_id=replay_id, data_dir=str(settings.data_dir), **kwargs)
    else:
        from tasks.scenario import run_scenario

        result = run_scenario(settings, replay_id, **kwargs).model_dump(mode="json")
    if _json_flag(ctx, json_out):
        _emit_json(result)
        return
    out.print(f"scenario [bold]{result['scenario_id']}[/] {result['scenario_name']}: {result['rows']} rows from "
              f"{result['transcripts']} conversations, {result['branches']} branches "
              f"(agent {result['agent_name']} v{result['agent_version']}, writer {result['writer']})")
    if result["failures"]:
        out.print(f"[yellow]{result['failures']} conversations the model could not describe "
                  "(written offline; see scenarios.failures)[/]")
    if result.get("redactions") is not None:
        out.print(f"redacted: {result['redactions']}")
    for warning in result.get("warnings") or []:
        err.print(f"[yellow]warning: {warning}[/]")
    _next(ctx, ("scenarios", "show", result["scenario_id"]),
          ("run", "--scenario", result["scenario_id"], "--agent", "module:function"))


@scenarios_app.command("export")
@handled
def scenarios_export(ctx: typer.Context, scenario_id: str = typer.Argument(...),
                     out_file: Path = typer.Option(..., "--out", help="FILE.jsonl"),
                     json_out: bool = typer.Option(False, "--json")) -> None:
    """Write a scenario as a portable, reviewable JSON-lines file."""
    from tasks import scenario

    result = _on_catalog(ctx, scenario.export_scenario, scenario_id, out_file)
    _emit_json(result) if _json_flag(ctx, json_out) else out.print(
        f"wrote {result['rows']} rows of {scenario_id} to {out_file}")


@scenarios_app.command("import")
@handled
def scenarios_import(ctx: typer.Context, file: Path = typer.Argument(...),
                     as_new: bool = typer.Option(False, "--as-new",
                                                 help="Import it as a new scenario (a new id, derived_from the file's "
                                                      "scenario): an edited export next to its original."),
                     json_out: bool = typer.Option(False, "--json")) -> None:
    """Import a scenario file (the same ids; importing the same file again changes nothing; an
    edited file whose scenario is already here: --as-new)."""
    from tasks import scenario

    result = _on_catalog(ctx, scenario.import_scenario, file, as_new, write=True)
    if _json_flag(ctx, json_out):
        _emit_json(result)
    elif result.get("derived_from"):
        out.print(f"imported {result['scenario_id']} ({result['rows']} rows), derived from {result['derived_from']}, "
                  f"agent {result['agent_name']} v{result['agent_version']}", highlight=False)
        out.print(f"next: replay scenarios show {result['scenario_id']}", highlight=False)
    else:
        out.print(f"{'imported' if result['imported'] else 'already there:'} {result['scenario_id']} "
                  f"({result['rows']} rows)", highlight=False)


@scenarios_app.command("show")
@handled
def scenarios_show(ctx: typer.Context, scenario_id: str = typer.Argument(...),
                   json_out: bool = typer.Option(False, "--json")) -> None:
    """One scenario: its metadata (agent definition, source, derived_from, graph) and its rows
    (long cells cut; --json prints them in full)."""
    from replay import views
    from tasks import scenario

    sc, rows, agent = _on_catalog(ctx, scenario.get_scenario, scenario_id)
    if _json_flag(ctx, json_out):
        _emit_json({"scenario": sc, "agent_definition": agent.model_dump(mode="json"),
                    "rows": [r.model_dump(mode="json") for r in rows]})
    else:
        views.print_scenario(out, sc, rows, agent)


def _listing(group: typer.Typer, key: str, statement: str, what: str) -> None:
    """``<group> list [--project P]``: the rows of a listing statement, newest first, as a table
    or ``{key: [rows]}`` with --json."""

    def list_cmd(ctx: typer.Context, project: Optional[str] = typer.Option(None, "--project"),
                 json_out: bool = typer.Option(False, "--json")) -> None:
        from tasks.store import catalog

        items = _on_catalog(ctx, catalog.rows, statement, {"project": project})
        if _json_flag(ctx, json_out):
            _emit_json({key: items})
        else:
            print_rows(list(items[0]) if items else ["(none)"], [tuple(i.values()) for i in items], "table")

    list_cmd.__doc__ = f"List {what}, newest first."
    group.command("list")(handled(list_cmd))


_listing(replays_app, "replay_sessions", "list_replay_sessions", "replay sessions")
_listing(scenarios_app, "scenarios", "list_scenarios", "scenarios")


# --------------------------------------------------------------------------- run
def _print_execution(ctx: typer.Context, info, as_json: bool) -> None:
    """An execution's counts and KPIs (stdout); why chats failed, by reason (stderr); exit 1
    when it did not complete."""
    if as_json:
        _emit_json(info.model_dump(mode="json"))
    else:
        from tasks.evaluate.metrics import described, format_value

        out.print(f"execution [bold]{info.execution_id}[/] ({info.status}): {info.completed_chats}/{info.total_chats} "
                  f"chats completed, {info.failed_chats} failed, ran {info.ran_now} in {info.seconds:.1f} s")
        shown = [(s, v) for s, v in described(info.metrics) if s.name not in ("completion", "failed")]
        if shown:
            out.print("; ".join(f"{s.label or s.name} {format_value(s, v)}" for s, v in shown))
        if info.status == "completed":
            _next(ctx, ("runs", "show", info.execution_id), ("compare", info.execution_id))
        elif info.budget_stop:
            out.print(f"{info.budget_stop}; finish them with: {_cli(ctx, 'runs', 'resume', info.execution_id)}",
                      highlight=False, markup=False)
    for w in info.warnings:
        sys.stderr.write(f"replay: warning: {w}\n")
    if info.errors:
        _say_reasons(info)
    if info.status == "failed":
        top = info.errors[0] if info.errors else None
        _say_error(f"execution {info.execution_id} failed: {info.failed_chats} of {info.total_chats} chats failed"
                   + (f", most often {top.reason} ({top.count})" if top else "")
                   + f"; each chat's error: {_failed_chats_query(ctx, info.execution_id)}")
        raise typer.Exit(1)
    if info.status != "completed" and not info.budget_stop:  # a budget's stop is what was asked
        _say_error(f"execution {info.execution_id} is {info.status}"
                   + (f": {_cli(ctx, 'runs', 'resume', info.execution_id)}" if info.status == "interrupted" else ""))
        raise typer.Exit(1)


def _say_reasons(info) -> None:
    """Why chats failed: one line a reason (count, reason, an example chat), on stderr."""
    n = sum(r.count for r in info.errors)
    sys.stderr.write(f"replay: {info.failed_chats} of {info.total_chats} chats failed; by reason"
                     f"{' (the most frequent)' if n < info.failed_chats else ''}:\n")
    width = len(str(max(r.count for r in info.errors)))
    for r in info.errors:
        sys.stderr.write(f"  {r.count:>{width}} x {r.reason}   (e.g. {r.example_chat_id})\n")


def _failed_chats_query(ctx: typer.Context, execution_id: str) -> str:
    query = f"select chat_id, error from chats where execution_id = '{execution_id}' and status = 'failed'"
    return _cli(ctx, "sql", query)


def _cli(ctx: typer.Context, *args: str) -> str:
    """A ``replay`` command line to run next, with ``--data-dir`` when this one was given it on
    the command line (from ``REPLAY_DATA_DIR`` the next command finds it too)."""
    import shlex

    source = ctx.find_root().get_parameter_source("data_dir")  # typer's own click: compared by name
    pre = ["--data-dir", str(ctx.obj.data_dir)] if getattr(source, "name", "") == "COMMANDLINE" else []
    return " ".join(a if shlex.quote(a) == a else f'"{a}"' if not set(a) & set('"$`\\!') else shlex.quote(a)
                    for a in ["replay", *pre, *args])


def _next(ctx: typer.Context, *steps: tuple[str, ...] | str) -> None:
    """``next: replay ...`` (stdout): the commands to run after this one (a tuple: a command's
    arguments, written with :func:`_cli`; a string: as it is)."""
    from replay.views import print_next

    print_next(out, [s if isinstance(s, str) else _cli(ctx, *s) for s in steps])


class _Interrupted(KeyboardInterrupt):
    """Ctrl-C while an execution ran (or was scored): what the CLI says, it says of this one."""

    def __init__(self, execution_id: str) -> None:
        super().__init__(execution_id)
        self.execution_id = execution_id


def _say_interrupted(ctx: typer.Context, execution_id: str, as_json: bool) -> None:
    """Ctrl-C on a run: the execution, the chats done (they stay), and the command that
    finishes it; exit 130."""
    from tasks.simulate import load_execution

    ex = _on_catalog(ctx, load_execution, execution_id)
    done = ex.completed_chats + ex.failed_chats
    chats_left = ex.status == "interrupted" or done < ex.total_chats
    resume = _cli(ctx, "runs", "resume", execution_id) if chats_left else None
    follow = resume or _cli(ctx, "evaluate", execution_id)
    if as_json:
        _emit_json({"execution_id": execution_id, "run_test_id": ex.run_test_id, "status": ex.status,
                    "interrupted": True, "total_chats": ex.total_chats, "done_chats": done,
                    "completed_chats": ex.completed_chats, "failed_chats": ex.failed_chats,
                    "resume_command": resume, "next": follow})
    what = (f"{done} of {ex.total_chats} chats done and kept; finish it with: {resume}" if resume
            else f"all {ex.total_chats} chats done, scoring stopped; score it with: {follow}")
    _say_error(f"interrupted: execution {execution_id}: {what}")
    raise typer.Exit(130)


def _default(field: str) -> str:
    """A run option's default, as the help shows it (RunOptions holds it, once)."""
    from models.simulate import RunOptions

    return f"default {RunOptions.model_fields[field].default}"


def _run_and_score(settings, evaluators: list[str] | None, execution_id: str | None = None, new: tuple | None = None,
                   budget=None):
    """A new run (``new``: scenario, agent, options, replay) or the rest of ``execution_id``, then
    its scores (``evaluators`` None: the custom ones it was scored with): on the configured
    Prefect server as the simulate flow, else in this process. A new run is checked first
    (agent, model, evaluators: one line, nothing written); Ctrl-C while it runs is
    :class:`_Interrupted` (what was committed stays)."""
    import asyncio

    from models.simulate import ExecutionInfo
    from tasks.evaluate import check_evaluators

    if new is not None:
        check_evaluators(settings, evaluators)
    if settings.prefect_api_url:
        from flows.simulate import simulate_flow
        from tasks.simulate.stage import check_run

        scenario_id, agent, options, replay_id = new or (None, None, None, None)
        if new is not None:  # refused here, before a flow run is even created
            check_run(settings, scenario_id, agent, options)
        return ExecutionInfo.model_validate(asyncio.run(simulate_flow(
            scenario_id=scenario_id, agent_ref=agent, options=options, replay_id=replay_id, execution_id=execution_id,
            data_dir=str(settings.data_dir), evaluator_refs=evaluators, budget=budget,
            prices_file=str(settings.prices_file) if settings.prices_file else None)))
    from tasks.evaluate import run_and_score
    from tasks.simulate import run_async, start_run

    if new is not None:
        execution_id = start_run(settings, *new)
    try:
        return run_async(run_and_score(settings, execution_id, evaluator_refs=evaluators, progress=True,
                                       budget=budget))
    except KeyboardInterrupt as exc:
        raise _Interrupted(execution_id) from exc


@app.command("run")
@handled
def run_cmd(
    ctx: typer.Context,
    scenario_id: str = typer.Option(..., "--scenario", help="The scenario to run."),
    name: Optional[str] = typer.Option(None, "--name", help="The run test's name (default: scenario vs agent)."),
    agent: str = typer.Option(..., "--agent", help="module:function, file.py:function, or an OpenAI-compatible http(s) URL."),
    mode: Optional[str] = typer.Option(None, "--mode", help=f"replay | simulate | hybrid ({_default('mode')})"),
    tools: Optional[str] = typer.Option(None, "--tools", help=f"recorded | live ({_default('tool_mode')})"),
    off_script: Optional[str] = typer.Option(None, "--off-script",
                                             help=f"error | nearest | fail: recorded tools ({_default('off_script')})"),
    concurrency: Optional[int] = typer.Option(None, "--concurrency", help=_default("concurrency")),
    repeat: Optional[int] = typer.Option(None, "--repeat", help=_default("repeat")),
    replay_id: Optional[str] = typer.Option(None, "--replay", help="Link this replay session (moves it to COMPLETED)."),
    max_turns: Optional[int] = typer.Option(None, "--max-turns", help=_default("max_turns")),
    turn_timeout: Optional[float] = typer.Option(None, "--turn-timeout",
                                                 help=f"Seconds per agent turn ({_default('turn_timeout_s')})."),
    retries: Optional[int] = typer.Option(None, "--retries",
                                          help=f"Retries of a turn on transient failures ({_default('retries')})."),
    max_failure_rate: Optional[float] = typer.Option(None, "--max-failure-rate", help=_default("max_failure_rate")),
    batch_size: Optional[int] = typer.Option(None, "--batch-size",
                                             help=f"Chats per batch, persisted together ({_default('batch_size')})."),
    divergence_threshold: Optional[float] = typer.Option(
        None, "--divergence-threshold", help="The similarity below which an answer diverges from production's "
                                             "(default: the embedding model's pass mark, as ground_truth_match)."),
    tool_match: Optional[Path] = typer.Option(None, "--tool-match",
                                              help="A JSON file: how tool calls are matched (trajectory mode, "
                                                   "per-tool args mode and argument kinds)."),
    system_prompt: Optional[Path] = typer.Option(None, "--system-prompt", help="HTTP agent: a system prompt file."),
    model: Optional[str] = typer.Option(None, "--model", help="HTTP agent: the model name."),
    agent_param: Optional[list[str]] = typer.Option(
        None, "--agent-param", help="HTTP agent: KEY=VALUE added to every request (VALUE as JSON, else text), "
                                    "e.g. temperature=0, seed=7, tool_choice=required (repeatable)."),
    evaluator: Optional[list[str]] = typer.Option(None, "--evaluator", help="Custom evaluator module:Class (repeatable)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the expected calls, tokens and cost; run nothing, "
                                                          "write nothing."),
    prices: Optional[Path] = typer.Option(None, "--prices", help="A JSON price table {model: {input, output}} in "
                                                                 "USD per 1M tokens (default: REPLAY_PRICES_FILE, "
                                                                 "else the bundled one)."),
    budget_tokens: Optional[int] = typer.Option(None, "--budget-tokens", help="Start no new chat once the chats "
                                                "have spent this many tokens (the rest: replay runs resume)."),
    budget_usd: Optional[float] = typer.Option(None, "--budget-usd", help="Start no new chat once the chats have "
                                               "spent this many USD (priced by the agent's model)."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Run a scenario against the agent under test: a run test and an execution, then scores."""
    from models.simulate import RunOptions

    if system_prompt is not None and not system_prompt.is_file():
        raise UserError(f"no such system prompt file: {system_prompt}")
    given = dict(name=name, mode=mode, tool_mode=tools, off_script=off_script, concurrency=concurrency,
                 repeat=repeat, max_turns=max_turns, turn_timeout_s=turn_timeout, retries=retries,
                 max_failure_rate=max_failure_rate, batch_size=batch_size, divergence_threshold=divergence_threshold,
                 system_prompt=system_prompt.read_text() if system_prompt else None, model=model,
                 agent_params=_agent_params(agent_param or []) or None)
    if tool_match is not None:
        from tasks.simulate.toolmatch import load_config

        given["tool_match"] = load_config(tool_match)
    options = RunOptions(**{k: v for k, v in given.items() if v is not None})
    settings = ctx.obj.settings(prices_file=prices)
    if dry_run:
        _dry_run(ctx, settings, scenario_id, agent, options, evaluator or [], _json_flag(ctx, json_out))
        return
    try:
        info = _run_and_score(settings, evaluator or [], new=(scenario_id, agent, options, replay_id),
                              budget=_budget(budget_tokens, budget_usd))
    except _Interrupted as stop:
        _say_interrupted(ctx, stop.execution_id, _json_flag(ctx, json_out))
    _print_execution(ctx, info, _json_flag(ctx, json_out))


def _agent_params(items: list[str]) -> dict:
    """``--agent-param KEY=VALUE`` items as a dict (VALUE read as JSON when it is JSON)."""
    out: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--agent-param {item!r}: expected KEY=VALUE, e.g. temperature=0")
        try:
            out[key.strip()] = orjson.loads(value)
        except orjson.JSONDecodeError:
            out[key.strip()] = value
    return out


def _budget(tokens: int | None, usd: float | None):
    """--budget-tokens / --budget-usd as a Budget (None: no budget); a bad value names its flag."""
    if tokens is None and usd is None:
        return None
    from models.simulate import Budget

    if tokens is not None and tokens < 1:
        raise UserError(f"--budget-tokens: must be at least 1 (got {tokens})")
    if usd is not None and not usd > 0:
        raise UserError(f"--budget-usd: must be more than 0 (got {usd})")
    return Budget(tokens=tokens, usd=usd)


def _dry_run(ctx: typer.Context, settings, scenario_id: str, agent: str, options, evaluators: list[str],
             as_json: bool) -> None:
    """``replay run --dry-run``: what the run would cost (checked as a run is; nothing written)."""
    from tasks.evaluate import check_evaluators
    from tasks.simulate.cost import estimate
    from tasks.simulate.stage import check_run

    check_evaluators(settings, evaluators)
    check_run(settings, scenario_id, agent, options)
    est = estimate(settings, scenario_id, agent, options, evaluators)
    if as_json:
        _emit_json(est.model_dump(mode="json"))
        return
    from replay.views import print_cost

    print_cost(out, est)
    _next(ctx, "the same command without --dry-run runs it (--budget-tokens N / --budget-usd X cap what it spends)")


runs_app = typer.Typer(no_args_is_help=True, help="Executions of run tests: list, show, resume.")
app.add_typer(runs_app, name="runs")


@runs_app.command("resume")
@handled
def runs_resume(ctx: typer.Context, execution_id: str = typer.Argument(...),
                prices: Optional[Path] = typer.Option(None, "--prices", help="As replay run's."),
                budget_tokens: Optional[int] = typer.Option(None, "--budget-tokens", help="As replay run's."),
                budget_usd: Optional[float] = typer.Option(None, "--budget-usd", help="As replay run's."),
                json_out: bool = typer.Option(False, "--json")) -> None:
    """Finish an interrupted execution: run only the chats not finished yet."""
    try:
        info = _run_and_score(ctx.obj.settings(prices_file=prices), None, execution_id=execution_id,  # scored as it was
                              budget=_budget(budget_tokens, budget_usd))
    except _Interrupted as stop:
        _say_interrupted(ctx, stop.execution_id, _json_flag(ctx, json_out))
    _print_execution(ctx, info, _json_flag(ctx, json_out))


@runs_app.command("list")
@handled
def runs_list(ctx: typer.Context,
              scenario_id: Optional[str] = typer.Option(None, "--scenario", help="Only the executions of this scenario."),
              status: Optional[str] = typer.Option(None, "--status",
                                                   help="Only: running | completed | failed | interrupted."),
              json_out: bool = typer.Option(False, "--json")) -> None:
    """List executions, newest first (a running one whose process is gone: interrupted)."""
    from replay import views
    from tasks.simulate.runs import execution_rows

    settings = ctx.obj.settings()
    rows = _on_catalog(ctx, execution_rows, settings.lake_dir, scenario_id, status)
    if _json_flag(ctx, json_out):
        _emit_json({"executions": [views.execution_json(r) for r in rows]})
    else:
        views.print_executions(out, rows)


@runs_app.command("show")
@handled
def runs_show(ctx: typer.Context, execution_id: str = typer.Argument(...),
              json_out: bool = typer.Option(False, "--json")) -> None:
    """One execution: its scenario and agent, status, KPIs, why chats failed, what to run next."""
    from replay import views
    from tasks.compare.overview import execution_overview

    info = _on_catalog(ctx, execution_overview, ctx.obj.settings().lake_dir, execution_id)
    if _json_flag(ctx, json_out):
        _emit_json({**info, "execution": views.execution_json(info["execution"])})
    else:
        views.print_overview(out, info)


# --------------------------------------------------------------------------- evaluate / compare / report
@app.command("evaluate")
@handled
def evaluate_cmd(ctx: typer.Context, execution_id: str = typer.Argument(...),
                 evaluator: Optional[list[str]] = typer.Option(
                     None, "--evaluator", help="Custom module:Class (repeatable): score with these instead of the "
                                               "custom evaluators the execution was scored with."),
                 only: Optional[str] = typer.Option(None, "--only", help="Re-run this evaluator alone (its name, e.g. "
                                                                          "ground_truth_match, or module:Class); the "
                                                                          "other scores stay as they are."),
                 json_out: bool = typer.Option(False, "--json")) -> None:
    """(Re-)score an execution: eval_scores and execution_metrics. By default with the evaluators
    it was scored with (the built-ins and its custom ones); the same rows every time."""
    from tasks.evaluate import run_evaluation
    from tasks.evaluate.stage import plan_evaluation

    plan = _on_catalog(ctx, plan_evaluation, execution_id, evaluator or None, only)
    metrics = run_evaluation(ctx.obj.settings(), execution_id, evaluator or None, only=only)
    if _json_flag(ctx, json_out):
        _emit_json({**metrics, "evaluation": plan.model_dump(mode="json")})
        return
    from replay import views
    from tasks.compare.history import column_specs

    views.print_evaluation(out, execution_id, metrics, plan, _on_catalog(ctx, column_specs))
    if plan.note:
        err.print(f"[yellow]note: {plan.note}[/]", highlight=False)


@app.command("compare")
@handled
def compare_cmd(
    ctx: typer.Context,
    execution_id: str = typer.Argument(..., help="The execution (B, the candidate)."),
    other_id: Optional[str] = typer.Argument(None, help="A baseline execution (A) of the same scenario; "
                                                        "without it, against production."),
    chat: Optional[str] = typer.Option(None, "--chat", help="Against production: this chat turn by turn (the "
                                                            "answers' word-level differences, the tool calls "
                                                            "and where their answers came from)."),
    rows: int = typer.Option(20, "--rows", help="Against production: the diverged rows listed at most."),
    fail_on_regression: bool = typer.Option(False, "--fail-on-regression",
                                            help="Exit 1 when a metric drops significantly (a CI gate)."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Compare an execution with production (per chat: where it first diverged and why; --chat:
    one chat turn by turn), or with another execution of the same scenario (each metric on the
    production conversations both replayed: cluster bootstrap, minimum effect, noise floor)."""
    from replay import views
    from tasks import compare

    if chat and other_id:
        raise UserError("--chat shows a chat against production: give EXECUTION_ID --chat CHAT_ID without OTHER_ID")
    if chat:
        from tasks.compare.chats import chat_diff

        result = _on_catalog(ctx, chat_diff, execution_id, chat)
        _emit_json(result) if _json_flag(ctx, json_out) else views.print_chat_diff(out, result)
        return
    result = (_on_catalog(ctx, compare.between, other_id, execution_id) if other_id
              else _on_catalog(ctx, compare.vs_production, execution_id))
    if _json_flag(ctx, json_out):
        _emit_json(result)
    elif other_id:
        _print_comparison(result)
        _next(ctx, ("report", execution_id, "--baseline", other_id, "--out", f"{execution_id}-vs-{other_id}.html"))
    else:
        s = result["summary"]
        print_rows(["metric", "production", "replay", "delta"],
                   [(k, _fmt(v["production"]), _fmt(v["replay"]), _fmt(v["delta"])) for k, v in s.items()], "table")
        views.print_divergence(out, result, max_rows=rows)
    what = compare.regression_gate(result) if fail_on_regression and other_id else []
    if what:
        _say_error(f"significant regression in {', '.join(what)} ({execution_id} against {other_id})")
        raise typer.Exit(1)


def _print_comparison(result) -> None:
    """The comparison as a table (one row a metric) and the conversations that moved."""
    from tasks.compare import verdict_lines
    from tasks.evaluate.metrics import format_value

    rows = []
    for m in result.metrics:
        spec = result.specs[m.metric]
        ci = "" if m.ci is None else f"[{format_value(spec, m.ci[0], unit=False, sign=True)}, " \
                                     f"{format_value(spec, m.ci[1], unit=False, sign=True)}]"
        rows.append((m.label, format_value(spec, m.a), format_value(spec, m.b),
                     format_value(spec, m.delta, sign=True), ci, format_value(spec, m.min_effect),
                     "" if m.noise_floor is None else format_value(spec, m.noise_floor), f"{m.n_units}/{m.n_rows}",
                     m.direction if m.significant else ""))
    print_rows(["metric", "A (baseline)", "B", "B - A", "95% CI", "min effect", "noise", "units/rows", "significant"],
               rows, "table")
    for line in verdict_lines(result):
        out.print(line)


@app.command("report")
@handled
def report_cmd(
    ctx: typer.Context,
    execution_id: str = typer.Argument(...),
    out_file: Path = typer.Option(..., "--out", help="FILE.html (one self-contained file, works offline)."),
    baseline: Optional[str] = typer.Option(None, "--baseline", help="Another execution of the same scenario."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Write the HTML report of an execution: the verdict against the baseline (or production) and
    the CI gate, KPI cards, each conversation's deltas with a regressed/improved filter, and each
    conversation side by side (production | baseline | candidate)."""
    from tasks.report import run_report

    path = run_report(ctx.obj.settings(), execution_id, out_file, baseline)
    result = {"execution_id": execution_id, "baseline": baseline, "out": str(path)}
    if _json_flag(ctx, json_out):
        _emit_json(result)
    else:
        out.print(f"wrote {path}")
        out.print(f"open it: {Path(path).resolve().as_uri()}", highlight=False)


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


# --------------------------------------------------------------------------- nightly
def _nightly_params(ctx: typer.Context, params_json: Optional[str], sample: bool, given: dict[str, Any]):
    """NightlyParams from PARAMS_JSON (text or a file), --sample, and the options (which win);
    the data dir is --data-dir's (or REPLAY_DATA_DIR's), else the parameters' data_dir, else the
    default. Invalid: one line naming the option (or the JSON field)."""
    from pydantic import ValidationError

    from models.nightly import NightlyParams

    base: dict[str, Any] = {}
    if sample:
        base = NightlyParams.sample().model_dump(exclude_unset=True)
    if params_json:
        text = Path(params_json).read_text() if not params_json.lstrip().startswith("{") else params_json
        try:
            base.update(orjson.loads(text))
        except orjson.JSONDecodeError as exc:
            raise UserError(f"PARAMS_JSON is not a JSON object: {exc}") from None
    base.update({k: v for k, v in given.items() if v not in (None, [])})
    if not base.get("project") or not base.get("agent"):
        raise UserError("replay nightly needs --project P --agent REF (or PARAMS_JSON with both, or --sample for the "
                        "bundled sample)")
    if ctx.obj.data_dir is not None or not base.get("data_dir"):  # --data-dir (or REPLAY_DATA_DIR) wins
        base["data_dir"] = str(ctx.obj.settings().data_dir)
    try:
        return NightlyParams.model_validate(base)
    except ValidationError as exc:
        raise UserError("; ".join(f"--{'-'.join(str(p) for p in e['loc']).replace('_', '-') or 'params'}: {e['msg']}"
                                  for e in exc.errors())) from None


@app.command("nightly")
@handled
def nightly_cmd(
    ctx: typer.Context,
    params_json: Optional[str] = typer.Argument(None, help="The flow's parameters as a JSON object (or a file of "
                                                           "it); the options below override its fields."),
    sample: bool = typer.Option(False, "--sample", help="The bundled sample's night (what `python flows/nightly.py` "
                                                        "runs)."),
    project: Optional[str] = typer.Option(None, "--project", help="The project whose sessions are replayed."),
    agent: Optional[str] = typer.Option(None, "--agent", help="The dev agent: module:function or an http(s) URL."),
    path: Optional[list[str]] = typer.Option(None, "--path", help="OTLP/JSON files or folders to ingest first "
                                                                  "(repeatable)."),
    phoenix_url: Optional[str] = typer.Option(None, "--phoenix-url", help="Pull new spans from this Phoenix server."),
    phoenix_project: Optional[str] = typer.Option(None, "--phoenix-project", help="Default: --project."),
    select_where: Optional[str] = typer.Option(None, "--select-where", help="A predicate over the sessions view "
                                                                            "(default: yesterday's with an error)."),
    regression_scenario: Optional[str] = typer.Option(None, "--regression-scenario",
                                                      help="A fixed scenario also run every night."),
    agent_name: Optional[str] = typer.Option(None, "--agent-name", help="Default: {project}_agent."),
    rows: Optional[int] = typer.Option(None, "--rows", help="Scenario rows (default 20)."),
    mode: Optional[str] = typer.Option(None, "--mode", help="replay | simulate | hybrid"),
    tools: Optional[str] = typer.Option(None, "--tools", help="recorded | live"),
    concurrency: Optional[int] = typer.Option(None, "--concurrency"),
    repeat: Optional[int] = typer.Option(None, "--repeat"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size"),
    max_failure_rate: Optional[float] = typer.Option(None, "--max-failure-rate"),
    evaluator: Optional[list[str]] = typer.Option(None, "--evaluator", help="Custom module:Class (repeatable)."),
    report_dir: Optional[str] = typer.Option(None, "--report-dir", help="Default: <data dir>/reports/nightly."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """One night of the nightly flow: pull, select, scenario, run, score, compare with the
    previous night, report; prints the night's summary. In this process unless PREFECT_API_URL
    is set (then as the `nightly` flow on that server, Secret blocks allowed)."""
    params = _nightly_params(ctx, params_json, sample, dict(
        project=project, agent=agent, paths=path, phoenix_url=phoenix_url, phoenix_project=phoenix_project,
        select_where=select_where, regression_scenario_id=regression_scenario, agent_name=agent_name, rows=rows,
        mode=mode, tools=tools, concurrency=concurrency, repeat=repeat, batch_size=batch_size,
        max_failure_rate=max_failure_rate, evaluators=evaluator, report_dir=report_dir))
    from models.nightly import NightlyResult
    from tasks.nightly.stage import failures
    from tasks.report import nightly_markdown

    settings = ctx.obj.settings()
    if settings.prefect_api_url:
        from flows.nightly import nightly_flow

        state = nightly_flow(params, return_state=True)
        if not state.is_completed():
            raise UserError(f"the nightly flow run {state.state_details.flow_run_id} ended {state.name}: "
                            f"{state.message} (its summary, when it got that far: the artifact "
                            f"nightly-{params.project} on the Prefect server)")
        result = NightlyResult.model_validate(state.result())
    else:
        result = _nightly_in_process(params)
    summary = nightly_markdown(result, params)
    if _json_flag(ctx, json_out):
        _emit_json({**result.model_dump(mode="json"), "summary": summary})
    else:
        from replay import views

        views.print_markdown(out, summary)
    failed = failures(result)
    if failed:
        _say_error(failed)
        raise typer.Exit(1)


def _nightly_in_process(params):
    """The night in this process (no Prefect server): keys from the environment only."""
    from models.nightly import SECRET_FIELDS
    from models.settings import load_settings
    from tasks.nightly import run_nightly

    named = [p for p in SECRET_FIELDS if getattr(params, p)]
    if named:
        raise UserError(f"{', '.join(named)}: Prefect Secret blocks need a Prefect server (PREFECT_API_URL); in "
                        "process, set REPLAY_PHOENIX_API_KEY / REPLAY_AGENT_API_KEY / REPLAY_LLM_API_KEY instead")
    settings = load_settings(data_dir=params.data_dir)
    sources = {f: "environment" for f in SECRET_FIELDS.values() if getattr(settings, f)}
    return run_nightly(settings, params, secret_sources=sources, say=lambda line: sys.stderr.write(f"replay nightly: {line}\n"))


# --------------------------------------------------------------------------- demo
DEMO_HELP = ("The whole loop on the bundled sample, then the commands to try next.\n\n"
             "It ingests data/samples/otlp, makes a replay of every session and its scenario (a row a session), "
             "runs the example agent v1 and v2 on it (v2: a prompt change that issues the refunds v1 only offered "
             "and no longer hands customers over to a human), each row 5 times, scores both, compares v2 with v1 "
             "and writes the report. It ends with the commands to read the result, with the ids it made.\n\n"
             "--simulate adds a simulate-mode run: a small local model (the optional dependency group local-llm) "
             "plays the users of 3 rows against the example agent, and the demo shows one conversation.")


@app.command(help=DEMO_HELP)
@handled
def demo(ctx: typer.Context, json_out: bool = typer.Option(False, "--json"),
         simulate: bool = typer.Option(False, "--simulate", help="Add a simulate-mode run with the local model as "
                                                               "the users (uv run --group local-llm ...).")) -> None:
    """``replay demo`` (DEMO_HELP)."""
    from replay.demo import demo_lines, run_demo

    settings = ctx.obj.settings()
    result = run_demo(settings, simulate=simulate)
    if _json_flag(ctx, json_out):
        _emit_json(result)
        return
    lines = demo_lines(result)
    out.print(f"[bold]Replay demo[/] — data dir {settings.data_dir}")
    out.print(lines[0])
    print_rows(result["session_columns"], [tuple(r.values()) for r in result["sessions"]], "table")
    for line in lines[1:]:
        out.print(line, highlight=False, markup=False, soft_wrap=True)  # the next commands stay whole


def main() -> None:
    app()


if __name__ == "__main__":
    main()
