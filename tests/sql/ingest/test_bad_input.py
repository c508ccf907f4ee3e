"""Bad input never stops an ingest: every bad record becomes one row in ``rejects``
(source, ``file:line``, a one-line reason, the raw record truncated) and the rest of the same
file -- even the rest of the same line -- is ingested. The counts add up:
read = ingested + rejected + duplicates, in ``IngestInfo`` and in the views.

The CLI part: user mistakes (missing or unreadable paths, write statements in ``replay sql``)
fail with exit code != 0 and ONE line on stderr; ``--json``/``--format`` print exactly what
they promise, on an empty data dir too.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest
from cli_helpers import assert_one_line_error, finish, replay, replay_all, start
from otlp_helpers import make_line, make_span

T0 = 1_795_000_000_000_000_000  # 2026-11-21, ns
RES = {"service.name": "bad-input-svc"}


# --------------------------------------------------------------------------- builders
def span(trace: int, sid: int, **kw) -> dict:
    start = T0 + trace * 1_000_000_000 + sid * 1000
    return make_span(trace, sid, None if sid % 100 == 1 else trace * 100 + 1, f"span-{trace}-{sid}",
                     start, start + 5_000_000, {"k": f"v{sid}"}, **kw)


def good_line(trace: int, n: int = 2) -> bytes:
    """One request: trace ``trace`` with ``n`` spans (span ids trace*100+1 ...)."""
    return make_line(RES, [span(trace, trace * 100 + i) for i in range(1, n + 1)]).encode()


def request_with(mutate) -> bytes:
    req = json.loads(make_line(RES, [span(60, 6001)]))
    mutate(req)
    return json.dumps(req).encode()


def write(path: Path, lines: list[bytes], gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(line + b"\n" for line in lines)
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


def count(query, table: str) -> int:
    return query(f"select count(*) as n from {table}")[0]["n"]


def check_counts(info, query) -> None:
    """read = ingested + rejected + duplicates, and the views hold exactly that (fresh data dir)."""
    assert info.read == info.ingested + info.rejected + info.duplicates, info
    assert info.read == sum(e.read for e in info.extract)
    assert info.ingested == sum(e.ingested for e in info.extract)
    assert info.rejected == sum(e.rejected for e in info.extract)
    assert count(query, "spans") == info.ingested
    assert count(query, "rejects") == info.rejected


def check_reject(row: dict, path: Path, line: int, raw_chars: int) -> None:
    assert row["source"] == "otlp_file"
    assert row["location"] == f"{path}:{line}"
    reason = row["reason"]
    assert reason and reason.strip() == reason and "\n" not in reason and len(reason) < 300, reason
    assert row["raw"] is not None
    assert len(row["raw"]) <= raw_chars + 40  # the "... [N more chars]" marker
    assert row["rejected_at"] is not None


def trace_hex(trace: int) -> str:
    return f"{trace:032x}"


# --------------------------------------------------------------------------- one file, every bad record
# Every case below sits on its own line of ONE file, between good lines, with blank lines and
# CRLF endings mixed in: one ingest, then one test per case on its reject row.
LINE_CASES = {
    # a line the exporter cut off (a full disk, a killed process)
    "truncated-json": (good_line(9)[:70], ["json"]),
    "not-json": (b"INFO 2026-11-21 exporter started, 4 workers", ["json"]),
    # invalid UTF-8, NULs, control bytes; no newline byte inside
    "binary-junk": (bytes(range(0x80, 0x100)) + b"\x00\x01\x02\xc3\x28garbage\x00", ["utf-8"]),
    "json-list": (b'[{"resourceSpans": []}]', ["array"]),
    "json-scalar": (b"42", ["number"]),
    "json-null": (b"null", ["request"]),
    "object-without-resourceSpans": (b'{"resourceLogs": [{"resource": {}}]}', ["resourcespans"]),
    "resourceSpans-not-a-list": (b'{"resourceSpans": {"resource": {"attributes": []}}}', ["resourcespans"]),
    "resourceSpans-entry-not-an-object": (b'{"resourceSpans": ["x"]}', ["resourcespans"]),
    "lone-surrogate": (b'{"resourceSpans": [], "note": "\\ud800"}', ["json"]),
    "long-garbage": (b"{" + b"x" * 100_000, ["json"]),  # raw is truncated
}


def _set(key, value):
    return lambda s: s.__setitem__(key, value)


def _pop(key):
    return lambda s: s.pop(key) and None


NOT_AN_OBJECT = "span?"


SPAN_CASES = {
    "traceId-too-short": (_set("traceId", "abc123"), ["traceid"]),
    "traceId-too-long": (_set("traceId", "ab" * 17), ["traceid"]),
    "traceId-not-hex": (_set("traceId", "zz" * 16), ["traceid"]),
    "traceId-all-zero": (_set("traceId", "0" * 32), ["traceid"]),
    "traceId-not-a-string": (_set("traceId", 1234), ["traceid"]),
    "traceId-missing": (_pop("traceId"), ["traceid"]),
    "spanId-all-zero": (_set("spanId", "0" * 16), ["spanid"]),
    "spanId-not-hex": (_set("spanId", "not-an-id!"), ["spanid"]),
    "start-a-word": (_set("startTimeUnixNano", "yesterday"), ["starttimeunixnano"]),
    "start-zero": (_set("startTimeUnixNano", "0"), ["starttimeunixnano"]),
    "start-negative": (_set("startTimeUnixNano", "-5"), ["starttimeunixnano"]),
    "start-missing": (_pop("startTimeUnixNano"), ["starttimeunixnano"]),
    "end-missing": (_pop("endTimeUnixNano"), ["endtimeunixnano"]),
    "end-before-start": (lambda s: s.__setitem__("endTimeUnixNano", str(int(s["startTimeUnixNano"]) - 1)),
                         ["endtimeunixnano", "before"]),
    "span-not-an-object": (lambda s: NOT_AN_OBJECT, ["span"]),
    "status-not-an-object": (_set("status", "ERROR"), ["status"]),
    "attributes-not-a-list": (_set("attributes", {"k": "v"}), ["attribute"]),
}
GOOD_OF, BAD_OF = {}, {}  # span case -> trace of its good neighbour span / of the bad span


def _span_case_line(i: int, mutate) -> bytes:
    good, bad = span(500 + i, (500 + i) * 100 + 1), span(700 + i, (700 + i) * 100 + 1)
    out = mutate(bad)
    req = json.loads(make_line(RES, [good, bad]))
    if out is NOT_AN_OBJECT:
        req["resourceSpans"][0]["scopeSpans"][0]["spans"][1] = NOT_AN_OBJECT
    return json.dumps(req).encode()


def _all_bad_file(path: Path) -> tuple[Path, dict[str, int], int]:
    """The file, {case: its line number}, the number of good spans in it."""
    lines: list[bytes] = [b"", good_line(1)]
    where: dict[str, int] = {}
    good_spans = 2
    t = 2
    for i, (case, (bad, _)) in enumerate(LINE_CASES.items()):
        lines.append(bad)
        where[case] = len(lines)
        lines += [good_line(t) + (b"\r" if i % 2 else b"")] + ([b"   ", b"\t"] if i % 3 == 0 else [])
        good_spans += 2
        t += 1
    for i, (case, (mutate, _)) in enumerate(SPAN_CASES.items()):
        GOOD_OF[case], BAD_OF[case] = 500 + i, 700 + i
        lines.append(_span_case_line(i, mutate))
        where[case] = len(lines)
        good_spans += 1
        if i % 4 == 0:
            lines += [good_line(t), b""]
            good_spans += 2
            t += 1
    return write(path, lines), where, good_spans


@pytest.fixture(scope="module")
def all_bad(tmp_path_factory, cli):  # cli: its background calls run while this ingests
    from models.settings import load_settings
    from tasks.ingest import run_ingest
    from tasks.store import catalog

    root = tmp_path_factory.mktemp("bad")
    s = load_settings(data_dir=root / "data")
    path, where, good_spans = _all_bad_file(root / "in" / "everything.jsonl")
    info = run_ingest(s, paths=[path])

    def q(sql):
        with catalog.reader(s) as con:
            cols, rows = catalog.run_read_only(con, sql)
        return [dict(zip(cols, r, strict=False)) for r in rows]

    rejects = {r["location"]: r for r in q("select * from rejects")}
    return dict(settings=s, path=path, where=where, good_spans=good_spans, info=info, query=q, rejects=rejects)


def test_bad_records_do_not_stop_the_file_and_the_counts_add_up(all_bad):
    info, q = all_bad["info"], all_bad["query"]
    n_cases = len(LINE_CASES) + len(SPAN_CASES)
    assert info.rejected == n_cases  # blank lines and CRLF endings are not rejects
    assert info.ingested == all_bad["good_spans"]
    assert info.duplicates == 0
    check_counts(info, q)
    assert len(all_bad["rejects"]) == n_cases
    # the good lines around the bad ones become turns as usual
    assert q("select count(*) as n from turns")[0]["n"] == len(q("select distinct trace_id from spans"))


@pytest.mark.parametrize("case", LINE_CASES, ids=LINE_CASES.keys())
def test_bad_line_is_one_reject(all_bad, case):
    line = all_bad["where"][case]
    row = all_bad["rejects"].get(f"{all_bad['path']}:{line}")
    assert row is not None, sorted(all_bad["rejects"])
    check_reject(row, all_bad["path"], line, all_bad["settings"].reject_raw_chars)
    assert any(w in row["reason"].lower() for w in LINE_CASES[case][1]), row["reason"]
    if case == "binary-junk":
        assert "garbage" in row["raw"]  # decoded with replacement characters, not dropped
    if case == "long-garbage":
        assert row["raw"].startswith("{xxxx") and len(row["raw"]) < 3000


@pytest.mark.parametrize("case", SPAN_CASES, ids=SPAN_CASES.keys())
def test_bad_span_is_one_reject_and_its_neighbour_is_ingested(all_bad, case):
    line = all_bad["where"][case]
    row = all_bad["rejects"].get(f"{all_bad['path']}:{line}")
    assert row is not None, sorted(all_bad["rejects"])
    check_reject(row, all_bad["path"], line, all_bad["settings"].reject_raw_chars)
    assert all(w in row["reason"].lower() for w in SPAN_CASES[case][1]), row["reason"]
    q = all_bad["query"]
    assert q(f"select count(*) as n from spans where trace_id = '{trace_hex(GOOD_OF[case])}'") == [{"n": 1}]
    assert q(f"select count(*) as n from spans where trace_id = '{trace_hex(BAD_OF[case])}'") == [{"n": 0}]


NESTED_SHAPES = {
    "resource-not-an-object": lambda r: r["resourceSpans"][0].__setitem__("resource", "svc"),
    "scopeSpans-not-a-list": lambda r: r["resourceSpans"][0].__setitem__("scopeSpans", 5),
    "scope-not-an-object": lambda r: r["resourceSpans"][0]["scopeSpans"][0].__setitem__("scope", "tests"),
    "spans-not-a-list": lambda r: r["resourceSpans"][0]["scopeSpans"][0].__setitem__("spans", 5),
    "events-not-a-list": lambda r: r["resourceSpans"][0]["scopeSpans"][0]["spans"][0].__setitem__("events", 5),
    "event-time-a-word": lambda r: r["resourceSpans"][0]["scopeSpans"][0]["spans"][0].__setitem__(
        "events", [{"name": "exception", "timeUnixNano": "soon"}]),
    "arrayValue-values-not-a-list": lambda r: r["resourceSpans"][0]["scopeSpans"][0]["spans"][0].__setitem__(
        "attributes", [{"key": "tags", "value": {"arrayValue": {"values": 5}}}]),
}


@pytest.mark.parametrize("mutate", NESTED_SHAPES.values(), ids=NESTED_SHAPES.keys())
def test_wrong_nested_shape_is_a_reject_not_a_crash(tmp_path, settings, ingest, query, mutate):
    path = write(tmp_path / "spans.jsonl", [good_line(1), request_with(mutate), good_line(3)])
    info = ingest([path])  # the bad record is a reject (or read leniently): never a crash
    check_counts(info, query)
    assert info.ingested >= 4 and info.ingested + info.rejected == 5
    rows = query("select * from rejects")
    for row in rows:
        check_reject(row, path, 2, settings.reject_raw_chars)


# --------------------------------------------------------------------------- sizes
def test_huge_attribute_value_is_kept_intact(tmp_path, ingest, query):
    big = "é" + "x" * (5 * 1024 * 1024) + "END"
    start = T0
    line = make_line(RES, [make_span(7, 701, None, "big", start, start + 1000, {"big": big, "small": 1})])
    path = write(tmp_path / "big.jsonl", [good_line(1), line.encode(), good_line(2)])
    info = ingest([path])
    assert (info.ingested, info.rejected) == (5, 0)
    check_counts(info, query)
    (row,) = query("select length(attributes->>'big') as n, right(attributes->>'big', 3) as tail, "
                   "left(attributes->>'big', 1) as head, attributes->>'small' as small from spans "
                   f"where trace_id = '{trace_hex(7)}'")
    assert row == {"n": len(big), "tail": "END", "head": "é", "small": "1"}


# --------------------------------------------------------------------------- gzip
def _gz_lines(first: int, n: int) -> list[bytes]:
    return [good_line(t, n=1) for t in range(first, first + n)]


def _truncated_gz(path: Path, lines: list[bytes]) -> Path:
    data = gzip.compress(b"".join(line + b"\n" for line in lines), mtime=0)
    path.write_bytes(data[: len(data) // 2])
    return path


def test_truncated_gz_keeps_what_was_read_and_is_one_reject(tmp_path, settings, ingest, query):
    lines = _gz_lines(1000, 300)
    path = _truncated_gz(tmp_path / "cut.jsonl.gz", lines)
    other = write(tmp_path / "fine.jsonl", [good_line(1)])
    info = ingest([path, other])

    assert info.rejected == 1
    assert 0 < info.ingested - 2 < 300
    check_counts(info, query)
    (row,) = query("select * from rejects")
    assert row["source"] == "otlp_file" and row["location"].startswith(f"{path}:")
    assert "\n" not in row["reason"] and row["reason"]
    # what was kept is exactly a prefix of the file's lines
    kept = {r["trace_id"] for r in query(f"select trace_id from spans where trace_id <> '{trace_hex(1)}'")}
    k = len(kept)
    assert kept == {trace_hex(t) for t in range(1000, 1000 + k)}


def test_truncated_gz_reject_points_at_the_first_lost_line(tmp_path, ingest, query):
    path = _truncated_gz(tmp_path / "cut.jsonl.gz", _gz_lines(1000, 300))
    info = ingest([path])
    (row,) = query("select location from rejects")
    assert row["location"] == f"{path}:{info.ingested + 1}"


def test_two_truncated_gz_files_are_two_rejects(tmp_path, ingest, query):
    a = _truncated_gz(tmp_path / "a.jsonl.gz", _gz_lines(1000, 300))
    b = _truncated_gz(tmp_path / "b.jsonl.gz", _gz_lines(2000, 300))
    info = ingest([a, b])
    assert info.rejected == 2
    assert sorted(r["location"].split(":")[0] for r in query("select location from rejects")) == [str(a), str(b)]
    check_counts(info, query)


def test_a_gz_name_on_plain_text_is_one_reject(tmp_path, ingest, query):
    path = tmp_path / "plain.jsonl.gz"
    path.write_bytes(good_line(1) + b"\n")
    other = write(tmp_path / "ok.jsonl", [good_line(2)])
    info = ingest([path, other])
    assert (info.ingested, info.rejected) == (2, 1)
    check_counts(info, query)
    (row,) = query("select * from rejects")
    assert row["location"].startswith(f"{path}:")


# --------------------------------------------------------------------------- the CLI
# The calls that need nothing from a test start in the background when this module starts
# (``cli`` below) and run while the in-process tests above run; the tests only check results.
def _reader_query(data_dir: Path, sql: str) -> list[dict]:
    from models.settings import load_settings
    from tasks.store import catalog

    with catalog.reader(load_settings(data_dir=data_dir)) as con:
        cols, rows = catalog.run_read_only(con, sql)
    return [dict(zip(cols, r, strict=False)) for r in rows]


EMPTY_Q = "select count(*) as n from spans"
ALL_VIEWS_Q = ("select (select count(*) from spans) as n, (select count(*) from turns) as turns, "
               "(select count(*) from sessions) as sessions, (select count(*) from rejects) as rejects")


@pytest.fixture(scope="module")
def cli():
    """{name: CompletedProcess} of the background CLI calls, plus the paths they used."""
    root = Path(tempfile.mkdtemp(prefix="rp-"))  # short: AF_UNIX socket paths are limited to ~107 bytes
    ctx: dict = {"root": root}
    # paths
    good = write(root / "good.jsonl", [good_line(1)])
    link = root / "rotated.jsonl"  # a dangling link (the file was rotated away): fails as root too
    link.symlink_to(root / "gone.jsonl")
    mixed = write(root / "mixed.jsonl", [good_line(1), b"garbage", good_line(2, n=3)])
    sock = socket.socket(socket.AF_UNIX)  # open() on it fails with ENXIO, for root too
    sock.bind(str(root / "s.jsonl"))
    writes_dir = root / "writes"
    _reader_query(writes_dir, "select 1")  # the catalog exists: the refused calls open it read-only
    ctx.update(good=good, link=link, mixed=mixed, writes_dir=writes_dir, out=root / "out.csv",
               escaped=root / "escaped.csv", other=root / "other.duckdb")
    calls = {
        "missing": (root / "d-missing", ["ingest", str(root / "nope" / "spans.jsonl")]),
        "missing-json": (root / "d-missing", ["--json", "ingest", str(root / "nope.jsonl")]),
        "dangling": (root / "d-dangling", ["ingest", str(good), str(link)]),
        "socket": (root / "d-socket", ["ingest", str(root / "s.jsonl")]),
        "write-create": (writes_dir, ["sql", "create table x as select 1"]),
        "write-copy": (writes_dir, ["sql", f"copy (select 1 as a) to '{ctx['out']}'"]),
        # a write after a read: every statement is checked before any runs
        "write-multi": (writes_dir, ["sql", f"select 1; attach '{ctx['other']}' as other; create table y as select 2"]),
        "explain-copy": (root / "d-explain", ["sql", f"explain analyze copy (select 42 as a) to '{ctx['escaped']}'"]),
        "bad-view": (root / "d-bad", ["sql", "select * from no_such_view"]),
        "empty-csv": (root / "d-e1", ["sql", EMPTY_Q, "--format", "csv"]),
        "empty-json": (root / "d-e2", ["--json", "sql", ALL_VIEWS_Q]),
        "empty-table": (root / "d-e3", ["sql", EMPTY_Q]),
        "ingest-json": (root / "d-ing1", ["--json", "ingest", str(mixed)]),
        "ingest-json-local": (root / "d-ing2", ["ingest", str(mixed), "--json"]),
    }
    procs = {name: start(d, a) for name, (d, a) in calls.items()}
    ctx["dirs"] = {name: d for name, (d, _) in calls.items()}
    done: dict[str, subprocess.CompletedProcess] = {}

    def result(name: str) -> subprocess.CompletedProcess:
        if name not in done:
            done[name] = finish(procs[name])
        return done[name]

    ctx["result"] = result
    try:
        yield ctx
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
            p.communicate()
        sock.close()
        shutil.rmtree(root, ignore_errors=True)


def test_cli_missing_or_dangling_paths_fail_in_one_line(cli):
    r = cli["result"]
    assert "nope" in assert_one_line_error(r("missing"))
    assert_one_line_error(r("missing-json"))
    assert r("missing-json").stdout.strip() == ""
    assert "rotated.jsonl" in assert_one_line_error(r("dangling"))
    # a bad path fails before anything is written, good paths next to it included
    assert not (cli["dirs"]["dangling"] / "lake").exists()
    assert _reader_query(cli["dirs"]["dangling"], ALL_VIEWS_Q) == [{"n": 0, "turns": 0, "sessions": 0, "rejects": 0}]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 file anyway (see the socket test)")
def test_cli_unreadable_file_fails_in_one_line(tmp_path):
    path = write(tmp_path / "secret.jsonl", [good_line(1)])
    path.chmod(0)
    try:
        r = replay(tmp_path / "data", "ingest", str(path))
    finally:
        path.chmod(0o600)
    assert "secret.jsonl" in assert_one_line_error(r)


def test_cli_unopenable_file_fails_in_one_line(cli):
    """What really fails as root too (chmod 000 does not): a Unix socket under a trace-file name,
    open() -> ENXIO for every user."""
    assert "s.jsonl" in assert_one_line_error(cli["result"]("socket"))


def test_cli_pipe_is_read_or_refused(tmp_path):
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    payload = b"".join(good_line(t) + b"\n" for t in (1, 2, 3))

    def writer():
        try:
            with open(fifo, "wb") as f:
                f.write(payload)
        except OSError:
            pass

    th = threading.Thread(target=writer, daemon=True)
    th.start()
    try:
        r = replay(tmp_path / "data", "--json", "ingest", str(fifo), timeout=30)
    finally:
        try:  # release the writer if the CLI never opened the pipe
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
        except OSError:
            pass
        th.join(5)
    if r.returncode == 0:
        assert json.loads(r.stdout)["ingested"] == 6
    else:
        assert_one_line_error(r)


@pytest.mark.parametrize("name", ["write-create", "write-copy", "write-multi"])
def test_cli_sql_refuses_writes_in_one_line(cli, name):
    r = cli["result"](name)
    assert "read-only" in assert_one_line_error(r)
    assert r.stdout == ""
    assert not cli["out"].exists() and not cli["other"].exists()
    assert _reader_query(cli["writes_dir"], "select count(*) as n from duckdb_tables() where table_name in ('x', 'y')") == [
        {"n": 0}]


def test_cli_sql_refuses_explain_analyze_copy(cli):
    r = cli["result"]("explain-copy")
    assert not cli["escaped"].exists()
    assert_one_line_error(r)


def test_cli_sql_bad_query_is_one_line(cli):
    r = cli["result"]("bad-view")
    assert_one_line_error(r)
    assert r.stdout == ""


def test_cli_sql_on_an_empty_data_dir_in_every_format(cli):
    csv_, js, table = (cli["result"](n) for n in ("empty-csv", "empty-json", "empty-table"))
    for r in (csv_, js, table):
        assert r.returncode == 0 and r.stderr == "", r.stderr
    assert csv_.stdout.splitlines() == ["n", "0"]
    assert json.loads(js.stdout) == [{"n": 0, "turns": 0, "sessions": 0, "rejects": 0}]
    assert [line.strip("│┃ ") for line in table.stdout.splitlines() if line.strip("│┃ ") in ("n", "0")] == ["n", "0"]
    assert "(1 rows)" in table.stdout


def test_cli_ingest_prints_one_json_object(cli):
    for name in ("ingest-json", "ingest-json-local"):  # the global --json and the command's own
        r = cli["result"](name)
        assert r.returncode == 0, r.stderr
        assert len(r.stdout.splitlines()) == 1, r.stdout
        info = json.loads(r.stdout)
        assert isinstance(info, dict)
        assert (info["read"], info["ingested"], info["rejected"], info["duplicates"]) == (6, 5, 1, 0)
        assert info["read"] == info["ingested"] + info["rejected"] + info["duplicates"]
        assert _reader_query(cli["dirs"][name], "select location from rejects") == [
            {"location": f"{cli['mixed']}:2"}]


def test_cli_sql_json_is_one_array_and_csv_a_header_then_rows(cli):
    data = cli["dirs"]["ingest-json"]
    assert cli["result"]("ingest-json").returncode == 0
    q = "select trace_id, span_id, name from spans order by trace_id, span_id"
    js, csv_ = replay_all([(data, ["sql", q, "--format", "json"]), (data, ["sql", q, "--format", "csv"])])
    assert js.returncode == csv_.returncode == 0, (js.stderr, csv_.stderr)
    rows = json.loads(js.stdout)  # one JSON array
    assert isinstance(rows, list) and len(rows) == 5 and set(rows[0]) == {"trace_id", "span_id", "name"}
    lines = csv_.stdout.splitlines()  # a header line, then the rows
    assert lines[0] == "trace_id,span_id,name" and len(lines) == 6
    assert [line.split(",") for line in lines[1:]] == [[x["trace_id"], x["span_id"], x["name"]] for x in rows]
