"""What ``replay sql`` accepts, decided by DuckDB's parser and tokenizer (no regex): one SELECT,
or an EXPLAIN of one SELECT without ANALYZE (issue 11, finding 3). Pure: nothing is run."""

from __future__ import annotations

import pytest

from tasks.store.catalog import CatalogError, read_only_statement

ACCEPTED = [
    "select 1",
    "  -- a comment first\nselect count(*) from spans",
    "/* c */ select 1",
    "from spans limit 3",
    "with t as (select 1 as a) select * from t",
    "select 1 as analyze_count",
    "explain select * from spans",
    "/* c */ explain select 1",
    "explain (format json) select 1",
    "explain select 'analyze' as analyze",
    "describe spans",
    "summarize select 1",
    "select 1;",
]

REFUSED = {
    "/* c */ explain analyze copy (select 1) to '/tmp/x.csv'": "EXPLAIN ANALYZE",
    "explain (analyze) copy (select 1) to '/tmp/x.csv'": "EXPLAIN ANALYZE",
    "explain (format json, analyze true) select 1": "EXPLAIN ANALYZE",
    "explain analyse select 1": "EXPLAIN ANALYZE",
    "EXPLAIN/**/ANALYZE select 1": "EXPLAIN ANALYZE",
    "explain copy (select 1) to '/tmp/x.csv'": "EXPLAIN of a COPY",
    "copy (select 1) to '/tmp/x.csv'": "COPY statement",
    "create table x as select 1": "CREATE statement",
    "attach '/tmp/x.duckdb' as x": "ATTACH statement",
    "set enable_external_access = true": "SET statement",
    "install httpfs": "read-only",
    "pragma version": "PRAGMA statement",
    "call pragma_version()": "CALL statement",
    "select 1; select 2": "one read-only statement",
    "select 1; copy (select 1) to '/tmp/x.csv'": "one read-only statement",
    "": "empty query",
    "-- only a comment": "empty query",
    "selec 1": "syntax error",
}


@pytest.mark.parametrize("query", ACCEPTED)
def test_accepted(query):
    assert read_only_statement(query).strip().rstrip(";").strip()


@pytest.mark.parametrize("query,reason", list(REFUSED.items()))
def test_refused_in_one_line(query, reason):
    with pytest.raises(CatalogError) as exc:
        read_only_statement(query)
    assert reason in str(exc.value) and "\n" not in str(exc.value)
