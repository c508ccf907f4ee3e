"""`replay sql` can neither write a file nor read one outside the lake (issue 11, finding 3).

A data dir made by a real ingest of the sample; each attack from the issue runs as the CLI does
(a fresh interpreter, the real catalog file) and must be refused in one line, with no file
written, no secret on stdout and the lake's span count unchanged. ``--allow-files DIR`` opens a
directory on purpose; ordinary queries (and EXPLAIN without ANALYZE) still work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import assert_one_line_error, replay, replay_all

from models.settings import SAMPLES_DIR, load_settings

SECRET = "s3cr3t-marker-7f1c"
SAMPLE_SPANS = 139


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    """{data, lake_day, outside}: the sample ingested in-process; a directory outside the data dir
    holding a secret file (a CSV, a text and a Parquet file)."""
    from tasks.ingest import run_ingest

    root = tmp_path_factory.mktemp("sqlbox")
    data = root / "data"
    run_ingest(load_settings(data_dir=data), paths=[SAMPLES_DIR / "otlp"])
    outside = root / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text(f"name,value\nkey,{SECRET}\n")
    (outside / "secret.txt").write_text(SECRET + "\n")
    lake_day = sorted((data / "lake" / "spans").glob("day=*"))[0]
    return {"data": data, "lake_day": lake_day, "outside": outside, "root": root}


def span_count(data: Path) -> int:
    r = replay(data, "sql", "select count(*) as n from spans", "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)[0]["n"]


def attacks(box) -> dict[str, str]:
    day, out = box["lake_day"], box["outside"]
    return {
        # writes: EXPLAIN ANALYZE runs its statement; a comment or the option list hid it from a regex
        "comment-explain-analyze-copy": f"/* c */ explain analyze copy (select * from spans limit 1) "
                                        f"to '{day}/part-forged-1.parquet'",
        "explain-options-analyze-copy": f"explain (analyze) copy (select * from spans limit 1) "
                                        f"to '{day}/part-forged-2.parquet'",
        "explain-options-analyze-true": f"explain (format json, analyze true) copy (select 1 as a) "
                                        f"to '{out}/written-3.csv'",
        "explain-analyse-spelling": f"explain analyse copy (select 1 as a) to '{out}/written-4.csv'",
        "explain-of-explain": f"explain explain analyze copy (select 1 as a) to '{out}/written-5.csv'",
        "plain-copy": f"copy (select * from spans limit 1) to '{day}/part-forged-6.parquet'",
        "two-statements": f"select 1; copy (select 1 as a) to '{out}/written-7.csv'",
        # reads outside the lake
        "read_csv-passwd": "select * from read_csv('/etc/passwd')",
        "read_csv": f"select * from read_csv('{out}/secret.csv')",
        "read_text": f"select * from read_text('{out}/secret.txt')",
        "read_blob-dotdot": f"select * from read_blob('{box['data']}/lake/../../outside/secret.txt')",
        "glob": f"select * from glob('{out}/*')",
        "subquery-read": f"select (select content from read_text('{out}/secret.txt')) as c",
        "set-access": "set enable_external_access = true",
        "attach": f"attach '{out}/other.duckdb' as other",
    }


def _nothing_written(box) -> None:
    assert sorted(p.name for p in box["outside"].iterdir()) == ["secret.csv", "secret.txt"]
    assert not list(box["lake_day"].glob("part-forged-*"))


@pytest.mark.parametrize("name", list(attacks({"lake_day": "d", "outside": "o", "data": "x"})))
def test_each_attack_is_refused_on_the_sql_connection(box, name):
    """The connection and the check ``replay sql`` uses, in-process on the real catalog file."""
    from tasks.store import catalog

    query = attacks(box)[name]
    with catalog.sql_reader(load_settings(data_dir=box["data"])) as con:
        with pytest.raises(catalog.CatalogError) as exc:
            cols, batches = catalog.stream_read_only(con, query)
            list(batches)
        assert "\n" not in str(exc.value) and SECRET not in str(exc.value)
        assert catalog.run_read_only(con, "select count(*) from spans")[1] == [(SAMPLE_SPANS,)]
    _nothing_written(box)


CLI_ATTACKS = ("comment-explain-analyze-copy", "explain-options-analyze-copy", "read_csv-passwd", "read_text",
               "glob")


def test_cli_refuses_the_issues_attacks_in_one_line(box):
    cases = {name: attacks(box)[name] for name in CLI_ATTACKS}
    results = replay_all([(box["data"], ["sql", q]) for q in cases.values()], timeout=120)
    for name, r in zip(cases, results, strict=True):
        assert r.returncode != 0, (name, r.stdout[:500])
        assert_one_line_error(r)
        assert r.stdout == "" and SECRET not in r.stderr, name
    _nothing_written(box)
    assert span_count(box["data"]) == SAMPLE_SPANS


def test_ordinary_queries_and_allow_files(box):
    out = box["outside"]
    explain, spans, allowed, outside_allowed = replay_all([
        (box["data"], ["sql", "explain select count(*) from spans"]),
        (box["data"], ["sql", "/* a comment */ select count(*) as n from spans where kind = 'LLM'", "--format", "csv"]),
        (box["data"], ["sql", f"select value from read_csv('{out}/secret.csv')", "--format", "csv",
                       "--allow-files", str(out)]),
        (box["data"], ["sql", f"select * from read_text('{box['root']}/data/replay.duckdb')", "--allow-files",
                       str(out)]),
    ], timeout=120)
    assert explain.returncode == 0 and "physical_plan" in explain.stdout, explain.stderr
    assert spans.returncode == 0 and int(spans.stdout.splitlines()[1]) > 0, spans.stderr
    assert allowed.returncode == 0 and allowed.stdout.splitlines() == ["value", SECRET], allowed.stderr
    assert_one_line_error(outside_allowed)  # the catalog file itself is outside the lake


def test_replays_create_where_attacks_are_one_line(box):
    """The CLI face of finding 4 (tests/sql/scenario/test_where_predicate.py has every case)."""
    secret = box["outside"] / "secret.csv"
    r1, r2 = (replay(box["data"], "replays", "create", "--project", "support-agent", "--type", "session",
                     "--where", where, timeout=120)
              for where in ("true) OR (true",
                            f"false) UNION SELECT value FROM read_csv('{secret}') --"))
    for r in (r1, r2):
        assert "--where must be one predicate" in assert_one_line_error(r)
        assert SECRET not in r.stdout + r.stderr
    listed = replay(box["data"], "--json", "replays", "list")
    assert listed.returncode == 0 and SECRET not in listed.stdout
