"""Golden test: the bundled sample (real OTel SDK + OpenInference instrumentation spans, GenAI
current and deprecated forms, traceAI; spec and proto-JSON files, .gz) rebuilds exactly the
conversations scripts/make_sample.py recorded in data/samples/expected.json."""

import json

import pytest

from models.settings import SAMPLES_DIR

EXPECTED = json.loads((SAMPLES_DIR / "expected.json").read_text())


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from models.settings import load_settings
    from tasks.ingest import run_ingest
    from tasks.store import catalog

    s = load_settings(data_dir=tmp_path_factory.mktemp("golden") / "data")
    info = run_ingest(s, paths=[SAMPLES_DIR / "otlp"])
    with catalog.reader(s) as con:
        turns = con.sql("select * exclude (tool_calls), to_json(tool_calls)::varchar as tool_calls from turns").fetchall()
        cols = [d[0] for d in con.sql("select * exclude (tool_calls), to_json(tool_calls)::varchar as tool_calls "
                                      "from turns").description]
        sess_cols = [d[0] for d in con.sql("select * from sessions").description]
        sessions = con.sql("select * from sessions").fetchall()
    return info, {r["trace_id"]: r for r in (dict(zip(cols, t, strict=False)) for t in turns)}, \
        {r["session_id"]: r for r in (dict(zip(sess_cols, x, strict=False)) for x in sessions)}


def _expected_turns():
    for sid, sess in EXPECTED["sessions"].items():
        for t in sess["turns"]:
            yield sid, sess, t
    for t in EXPECTED["lone_traces"]:
        yield None, t, dict(t, turn_index=0)


def test_counts(sample):
    info, turns, sessions = sample
    summary = EXPECTED["summary"]
    assert info.read == info.ingested == summary["spans"] and info.rejected == info.duplicates == 0
    assert len(turns) == summary["traces"] and len(sessions) == summary["sessions"]


@pytest.mark.parametrize("sid,sess,exp", list(_expected_turns()),
                         ids=[f"{s.get('key')}-{t['turn_index']}" for _, s, t in _expected_turns()])
def test_every_turn(sample, sid, sess, exp):
    _, turns, _ = sample
    got = turns[exp["trace_id"]]
    assert got["session_id"] == sid
    assert got["turn_index"] == exp["turn_index"]
    assert got["user_id"] == sess["user_id"]
    assert got["user_message"] == exp["user_message"]
    assert got["assistant_message"] == exp["assistant_message"]
    assert (got["llm_calls"], got["input_tokens"], got["output_tokens"]) == (
        exp["llm_calls"], exp["input_tokens"], exp["output_tokens"])
    assert got["model"] == exp["model"]
    assert got["status"] == exp["status"]
    calls = json.loads(got["tool_calls"])
    assert [c["name"] for c in calls] == exp["tool_calls"]
    for c, e in zip(calls, exp["tool_call_details"], strict=False):
        if e.get("id"):
            assert c["id"] == e["id"]
        assert c["arguments"] == e["arguments"]  # the view types arguments as JSON
        assert c["status"] == ("error" if e["status"] == "error" else "ok")
        if e["result"] is not None:
            assert (json.loads(c["result"]) if c["result"][:1] in "{[" else c["result"]) == e["result"]


@pytest.mark.parametrize("sid", list(EXPECTED["sessions"]))
def test_every_session(sample, sid):
    _, _, sessions = sample
    exp, got = EXPECTED["sessions"][sid], sample[2][sid]
    assert got["user_id"] == exp["user_id"] and got["project"] == EXPECTED["project"]
    assert (got["turn_count"], got["input_tokens"], got["output_tokens"], got["tool_call_count"]) == (
        exp["turn_count"], exp["input_tokens"], exp["output_tokens"], exp["tool_call_count"])
    assert got["first_user_message"] == exp["first_user_message"]
    assert got["last_assistant_message"] == exp["last_assistant_message"]
    assert got["error_count"] >= exp["tool_error_count"] + exp["turn_error_count"]
