"""``replays create --where`` (and the nightly's ``select_where``) is one boolean expression over
the project's own rows, nothing more (issue 11, finding 4). Real catalog: the sample (project
support-agent) and a one-session project 'other', ingested into a tmp data dir."""

from __future__ import annotations

import pytest
from otlp_helpers import make_line, make_span
from pydantic import ValidationError

from models.settings import SAMPLES_DIR

PROJECT = "support-agent"
SECRET_SESSION = "sess_91d9f9b439fc"  # a real session id of the sample, written in a file outside the data dir


@pytest.fixture
def env(settings, ingest, tmp_path):
    other = tmp_path / "other.jsonl"
    other.write_text(make_line({"service.name": "other"}, [make_span(
        0xABC, 0xDEF, None, "agent", 1_763_600_000_000_000_000, 1_763_600_001_000_000_000,
        {"openinference.span.kind": "AGENT", "session.id": "other-session", "input.value": "hi",
         "output.value": "hello"})]) + "\n")
    ingest([SAMPLES_DIR / "otlp", other])
    secret = tmp_path / "outside" / "secret.csv"
    secret.parent.mkdir()
    secret.write_text(f"{SECRET_SESSION}\nroot:x:0:0:root:/root:/bin/bash\n")
    return {"settings": settings, "secret": secret}


def attacks(secret) -> dict[str, str]:
    return {
        "parentheses": "true) OR (true",
        "parentheses-trace": "true) OR (true",
        "union-file": f"false) UNION SELECT column0 FROM read_csv('{secret}', header = false) --",
        "union-no-paren": f"false UNION SELECT column0 FROM read_csv('{secret}', header = false)",
        "comment-hides-rest": "true) OR (true) --",
        "block-comment": "true /*",
        "subquery-file": f"session_id IN (SELECT column0 FROM read_csv('{secret}', header = false))",
        "exists-file": f"EXISTS (FROM read_text('{secret}'))",
        "other-project": "EXISTS (SELECT 1 FROM sessions WHERE project = 'other')",
        "two-statements": "true; DROP TABLE scenarios",
        "two-expressions": "true, false",
        "not-boolean": "turn_count",
        "order-by": "true ORDER BY 1",
    }


@pytest.mark.parametrize("name", list(attacks("x")))
def test_where_attacks_are_refused_in_one_line_and_store_nothing(env, name):
    from tasks.scenario import replays
    from tasks.store import catalog

    where = attacks(env["secret"])[name]
    kind = "trace" if name.endswith("-trace") else "session"
    with catalog.writer(env["settings"]) as con:
        with pytest.raises(replays.ReplaySessionError) as exc:
            replays.create(con, PROJECT, kind, where=where)
        msg = str(exc.value)
        assert "\n" not in msg and (msg.startswith("--where") or "has no sessions matching" in msg), msg
        assert SECRET_SESSION not in msg and "root:" not in msg
        assert replays.list_all(con) == []


def test_where_selects_only_the_projects_rows(env):
    from tasks.scenario import replays
    from tasks.store import catalog

    with catalog.writer(env["settings"]) as con:
        every = replays.create(con, PROJECT, "session", where="true -- a trailing comment is fine")
        assert "other-session" not in every["ids"] and len(every["ids"]) == 12
        assert replays.create(con, "other", "session", where="true")["ids"] == ["other-session"]
        errs = replays.create(con, PROJECT, "session", where="error_count > 0 and turn_count >= 1")
        assert 0 < len(errs["ids"]) < 12
        assert replays.create(con, PROJECT, "trace", where="session_id is null")["ids"]


def test_nightly_select_where_is_checked_too(env):
    from models.nightly import DEFAULT_SELECT_WHERE, NightlyParams
    from tasks.scenario import replays, select_sessions

    for where in ("true) OR (true", "false) UNION SELECT 'x' --", "true; select 1"):
        with pytest.raises(ValidationError, match="one predicate"):
            NightlyParams(project=PROJECT, agent="m:f", select_where=where)
    assert NightlyParams(project=PROJECT, agent="m:f").select_where == DEFAULT_SELECT_WHERE
    with pytest.raises(replays.ReplaySessionError, match="--where"):
        select_sessions(env["settings"], PROJECT, f"false) UNION SELECT column0 FROM read_csv('{env['secret']}') --")
    assert select_sessions(env["settings"], PROJECT, "turn_count > 1000") is None  # empty is not an error
    rs = select_sessions(env["settings"], PROJECT, "error_count > 0")
    assert rs is not None and 0 < len(rs.ids) < 12 and "other-session" not in rs.ids
