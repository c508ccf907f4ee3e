"""`replay sql` output on large results (issue 11, finding 9): the table shows at most 100 rows
(``--all`` every row) with long cells cut, and says what it left out; csv and json carry every row
in full, written as they are fetched. Memory and time on ~40k spans: tests/bench/bench_sql.py."""

from __future__ import annotations

import csv
import io
import json

import pytest
from cli_helpers import replay_all

LONG = 1000
N = 250
Q = f"select i, repeat('x', {LONG}) || i::varchar as long, 'short' as s from range({N}) t(i) order by i"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("sqlout") / "data"
    names = ["table", "all", "csv", "json", "small"]
    calls = [(d, ["sql", Q]), (d, ["sql", Q, "--all"]), (d, ["sql", Q, "--format", "csv"]),
             (d, ["sql", Q, "--format", "json"]), (d, ["sql", "select 1 as n, 'a' as t"])]
    # one after another's catalog: the first call makes the empty catalog
    first = replay_all(calls[:1])
    return dict(zip(names, first + replay_all(calls[1:]), strict=True))


def table_rows(stdout: str) -> list[list[str]]:
    """The body rows of a rich table: lines with a first cell holding a number."""
    out = []
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip("│┃").split("│")]
        if len(cells) == 3 and cells[0].isdigit():
            out.append(cells)
    return out


def test_table_caps_rows_and_cuts_long_cells(runs):
    r = runs["table"]
    assert r.returncode == 0, r.stderr
    rows = table_rows(r.stdout)
    assert [int(c[0]) for c in rows] == list(range(100))
    assert "x" * 100 not in r.stdout  # no cell shown in full
    assert all(c[1].startswith("xxx") and c[1].endswith("…") and c[2] == "short" for c in rows)
    assert f"100 of {N} rows shown: {N - 100} not shown" in " ".join(r.stdout.split())
    assert "--all" in r.stdout and "--format csv" in r.stdout


def test_table_all_shows_every_row(runs):
    r = runs["all"]
    assert r.returncode == 0, r.stderr
    assert [int(c[0]) for c in table_rows(r.stdout)] == list(range(N))
    assert "x" * 100 not in r.stdout  # still cut: --format csv|json for full values
    assert f"({N} rows)" in r.stdout


def test_csv_and_json_have_every_row_in_full(runs):
    c, j = runs["csv"], runs["json"]
    assert c.returncode == 0 and j.returncode == 0, (c.stderr, j.stderr)
    rows = list(csv.reader(io.StringIO(c.stdout)))
    assert rows[0] == ["i", "long", "s"] and len(rows) == N + 1
    assert all(r[1] == "x" * LONG + r[0] for r in rows[1:])
    data = json.loads(j.stdout)  # one JSON array, as documented
    assert isinstance(data, list) and len(data) == N
    assert data[7] == {"i": 7, "long": "x" * LONG + "7", "s": "short"}


def test_small_results_are_unchanged(runs):
    r = runs["small"]
    assert r.returncode == 0, r.stderr
    assert "(1 rows)" in r.stdout and "not shown" not in r.stdout


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_a_reader_that_stops_early_ends_the_command_quietly(tmp_path, fmt):
    """`replay sql ... | head`: the closed pipe is the reader's choice, not an error (exit 141,
    as a shell reports a writer stopped by SIGPIPE, and nothing on stderr)."""
    import subprocess

    from cli_helpers import ROOT, replay_cmd, replay_env

    p = subprocess.Popen(replay_cmd(tmp_path / "data", ["sql", "select * from range(200000)", "--all", "--format", fmt]),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=replay_env(), cwd=ROOT)
    p.stdout.read(10)
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 141, err
    assert err == ""
