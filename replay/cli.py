"""The ``replay`` command line (Typer). Commands compose flows/ and tasks/; no logic here.

Contract (DESIGN.md): ``--data-dir``/``REPLAY_DATA_DIR`` everywhere, ``--json`` prints exactly
one JSON object on stdout, exit 0 on success, else non-zero with a one-line reason on
stderr (a traceback only with ``--debug``).
"""

from __future__ import annotations

import csv
import io
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import orjson
import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Replay: turn production LLM-agent conversations into repeatable tests.")
out = Console() if sys.stdout.isatty() else Console(width=240)
err = Console(stderr=True)


@dataclass
class Ctx:
    data_dir: Optional[Path]
    json: bool
    debug: bool

    def settings(self, **overrides: Any):
        from models.settings import load_settings

        return load_settings(data_dir=self.data_dir, **overrides)


class UserError(Exception):
    """A problem the user can fix; printed as one line."""


def _known_errors() -> tuple[type[BaseException], ...]:
    from pydantic import ValidationError

    from tasks.catalog import CatalogError
    from tasks.extract import SourceError
    from tasks.sources.phoenix import PhoenixError

    return (UserError, CatalogError, SourceError, PhoenixError, ValidationError, OSError)



def _fail(exc: BaseException, debug: bool) -> None:
    if debug:
        traceback.print_exception(exc)
    msg = str(exc).strip() or type(exc).__name__
    _say_error(msg)
    raise typer.Exit(1)


def _say_error(msg: str) -> None:
    """One line on stderr, never wrapped."""
    sys.stderr.write(f"replay: error: {' '.join(msg.split())}\n")


def _run(ctx: typer.Context, fn, *args, **kwargs):
    c: Ctx = ctx.obj
    try:
        return fn(*args, **kwargs)
    except typer.Exit:
        raise
    except KeyboardInterrupt:
        _say_error("interrupted")
        raise typer.Exit(130)
    except Exception as exc:  # noqa: BLE001 - the CLI boundary: one line, no traceback
        if not c.debug and not isinstance(exc, _known_errors()):
            msg = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} (run with --debug for the traceback)"
            _say_error(msg)
            raise typer.Exit(1)
        _fail(exc, c.debug)


def _emit_json(obj: Any) -> None:
    sys.stdout.write(orjson.dumps(obj, default=str).decode() + "\n")


@app.callback()
def main_options(
    ctx: typer.Context,
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", envvar="REPLAY_DATA_DIR",
                                            help="Data dir (lake/ and replay.duckdb). Default: ./data of the project."),
    json_out: bool = typer.Option(False, "--json", help="Print exactly one JSON object on stdout."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
) -> None:
    ctx.obj = Ctx(data_dir=data_dir, json=json_out, debug=debug)


def _json_flag(ctx: typer.Context, local: bool) -> bool:
    return local or ctx.obj.json


# --------------------------------------------------------------------------- ingest
@app.command()
def ingest(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(None, help="OTLP/JSON lines files or folders (.gz too)."),
    phoenix: Optional[str] = typer.Option(None, "--phoenix", help="Pull from a Phoenix server at this URL."),
    project: Optional[str] = typer.Option(None, "--project", help="Project name (Phoenix project; overrides service.name)."),
    api_key: Optional[str] = typer.Option(None, "--api-key", envvar="REPLAY_PHOENIX_API_KEY",
                                          help="Phoenix API key (or REPLAY_PHOENIX_API_KEY)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Extract spans (files or Phoenix) into the lake, then rebuild turns and sessions."""
    def go():
        if phoenix and paths:
            raise UserError("give either PATH... or --phoenix URL, not both")
        if not phoenix and not paths:
            raise UserError("nothing to ingest: give PATH... or --phoenix URL --project NAME")
        if phoenix and not project:
            raise UserError("--phoenix needs --project NAME (the Phoenix project to pull)")
        settings = ctx.obj.settings(phoenix_api_key=api_key)
        if settings.prefect_api_url:
            from flows.ingest import ingest_flow

            result = ingest_flow(paths=[str(p) for p in paths or []], project=project, phoenix_url=phoenix,
                                 data_dir=str(settings.data_dir))
            from models.ingest import IngestInfo

            info = IngestInfo.model_validate(result)
        else:
            from flows.local import ingest_local

            info = ingest_local(settings, paths=list(paths or []), project=project, phoenix_url=phoenix)
        if _json_flag(ctx, json_out):
            _emit_json(info.model_dump(mode="json"))
        else:
            out.print(f"read {info.read} span records: ingested {info.ingested}, rejected {info.rejected}, "
                      f"duplicates {info.duplicates} ({info.seconds:.2f} s, {info.mode})")
            out.print(f"catalog: {info.sessions} sessions, {info.turns} turns "
                      f"({info.sessionize.turns_written} turns rebuilt)")
            if info.rejected:
                out.print(f"[yellow]{info.rejected} rejected records: replay sql \"select * from rejects\"[/]")
    _run(ctx, go)


# --------------------------------------------------------------------------- sql
@app.command("sql")
def sql_cmd(
    ctx: typer.Context,
    query: str = typer.Argument(..., help="Read-only SQL over the views (spans, turns, sessions, rejects, ...)."),
    fmt: str = typer.Option("table", "--format", "-f", help="table | json | csv"),
    json_out: bool = typer.Option(False, "--json", help="Same as --format json."),
) -> None:
    """Run a read-only SQL query on the catalog (never starts Prefect)."""
    def go():
        fmt_ = "json" if _json_flag(ctx, json_out) else fmt
        if fmt_ not in ("table", "json", "csv"):
            raise UserError(f"unknown --format {fmt_!r}: use table, json or csv")
        from tasks import catalog

        with catalog.reader(ctx.obj.settings()) as con:
            cols, rows = catalog.run_read_only(con, query)
        print_rows(cols, rows, fmt_)
    _run(ctx, go)


def _cell(v: Any) -> Any:
    if isinstance(v, (dict, list)):
        return orjson.dumps(v, default=str).decode()
    return v


def print_rows(cols: list[str], rows: list[tuple], fmt: str) -> None:
    if fmt == "json":
        _emit_json([dict(zip(cols, r)) for r in rows])
    elif fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        for r in rows:
            w.writerow(["" if v is None else _cell(v) for v in r])
        sys.stdout.write(buf.getvalue())
    else:
        t = Table(show_lines=False)
        for c in cols:
            t.add_column(c, overflow="fold")
        for r in rows:
            t.add_row(*("" if v is None else str(_cell(v)) for v in r))
        out.print(t)
        out.print(f"({len(rows)} rows)")


# --------------------------------------------------------------------------- demo
@app.command()
def demo(ctx: typer.Context, json_out: bool = typer.Option(False, "--json")) -> None:
    """The whole loop on the bundled sample (for now: ingest it and summarise its sessions)."""
    def go():
        from flows.local import ingest_local
        from models.settings import SAMPLES_DIR
        from tasks import catalog

        settings = ctx.obj.settings()
        info = ingest_local(settings, paths=[SAMPLES_DIR / "otlp"])
        with catalog.reader(settings) as con:
            cols, rows = catalog.run_read_only(con, catalog.sql("demo_sessions"))
        if _json_flag(ctx, json_out):
            _emit_json({"ingest": info.model_dump(mode="json"), "sessions": [dict(zip(cols, r)) for r in rows],
                        "data_dir": str(settings.data_dir)})
            return
        out.print(f"[bold]Replay demo[/] — data dir {settings.data_dir}")
        out.print(f"ingested {info.ingested} spans ({info.duplicates} duplicates, {info.rejected} rejected) "
                  f"→ {info.sessions} sessions, {info.turns} turns in {info.seconds:.2f} s")
        print_rows(cols, rows, "table")
        out.print('next: replay sql "select session_id, turn_index, user_message, assistant_message from turns '
                  'order by session_id, turn_index"')
    _run(ctx, go)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
