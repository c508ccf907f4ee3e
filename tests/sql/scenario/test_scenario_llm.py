"""Scenario generation with a model: a real OpenAI-compatible HTTP server on loopback (a
scripted stand-in) writes the notes; invalid replies are retried, then kept as failures."""

import json
import re

import pytest
from llm_stub import llm_stub

from models.settings import SAMPLES_DIR


def notes_for(request):
    """A valid reply for whatever transcript the request carries."""
    prompt = "\n".join(m["content"] for m in request["messages"])
    n = int(re.search(r"exactly (\d+) short snake_case intents", prompt).group(1))
    return {"content": json.dumps({
        "intents": ["model_intent"] * n,
        "situation": "A returning customer who wants help with an order they placed last week.",
        "outcome": "The agent looked the order up. It answered the question and closed the chat.",
        "persona": {"name": "Alex", "age_group": "25-34", "occupation": "unknown", "location": "unknown",
                    "personality": "calm", "communication_style": "casual", "languages": ["en"],
                    "tone": "neutral", "verbosity": "medium", "typos": "none", "emoji_usage": "none",
                    "slang_usage": "none"},
        "steps": ["intent:model_intent", "outcome:resolved"],
        "branch_category": "resolved"})}


@pytest.fixture
def sample_replay(settings, ingest):
    from tasks.scenario import replays
    from tasks.store import catalog

    ingest([SAMPLES_DIR / "otlp"])
    with catalog.writer(settings) as con:
        return replays.create(con, "support-agent", "session", ids=["sess_91d9f9b439fc", "sess_9dfbab13dfae"])


def _generate(settings, replay_id, stub):
    from tasks import scenario
    from tasks.store import catalog

    settings.llm_base_url, settings.llm_model, settings.llm_max_retries = stub.base_url, "stub-model", 1
    with catalog.writer(settings) as con:
        res = scenario.generate(con, settings, replay_id, "bot", "llm", rows=2)
        return res, scenario.get_scenario(con, res["scenario_id"])


def test_the_model_writes_the_rows(settings, sample_replay):
    with llm_stub(notes_for) as stub:
        res, (sc, rows, _) = _generate(settings, sample_replay["replay_id"], stub)
    assert res["writer"] == "llm:stub-model" and res["failures"] == 0
    assert {r.persona.name for r in rows} == {"Alex"} and all(r.situation.startswith("A returning") for r in rows)
    assert len(stub.chat_requests) == 2
    body = stub.chat_requests[0].json
    assert body["model"] == "stub-model" and body["response_format"]["type"] == "json_schema"


def test_an_invalid_reply_is_retried_with_the_error(settings, sample_replay):
    replies = iter([{"content": "not json at all"}])

    def script(req):
        return next(replies, None) or notes_for(req)

    with llm_stub(script) as stub:
        res, _ = _generate(settings, sample_replay["replay_id"], stub)
    assert res["failures"] == 0 and res["writer"] == "llm:stub-model"
    assert "not json at all" in json.dumps(stub.chat_requests[1].json["messages"])  # the correction quotes it


def test_replies_that_stay_invalid_are_failure_rows_and_the_rows_are_still_written(settings, sample_replay):
    def script(req):
        good = json.loads(notes_for(req)["content"])
        good["intents"] = []  # wrong count, every time
        return {"content": json.dumps(good)}

    with llm_stub(script) as stub:
        res, (sc, rows, _) = _generate(settings, sample_replay["replay_id"], stub)
    assert res["failures"] == 2 and len(rows) == 2
    assert res["writer"] == "offline"  # those rows were written offline
    fails = sc["failures"]
    assert {f["origin_id"] for f in fails} == {"sess_91d9f9b439fc", "sess_9dfbab13dfae"}
    assert all(f["writer"] == "llm:stub-model" and "intents" in f["reason"] and f["raw"] for f in fails), fails


def test_a_dead_model_server_is_a_failure_row_too(settings, sample_replay):
    with llm_stub([500] * 10) as stub:
        res, (sc, rows, _) = _generate(settings, sample_replay["replay_id"], stub)
    assert res["failures"] == 2 and len(rows) == 2 and "500" in sc["failures"][0]["reason"]


def test_a_reply_echoing_the_key_is_stored_without_it(settings, sample_replay):
    """The model answers with the API key it was sent (and other key shapes): the failure keeps
    the reply for review, with the keys masked; nothing in the data dir holds them."""
    from pydantic import SecretStr
    from secret_scan import leaks

    key, other = "lk-S3CR3T-0123456789abcdef", "sk-proj-S3CR3Tabcdef0123456789"
    settings.llm_api_key = SecretStr(key)

    def script(req):
        return {"content": f"Sorry. For the record, I was called with Bearer {key}; try {other} or "
                           f"https://admin:S3CR3T-pw@llm.internal/v1?token=S3CR3T-tok"}

    with llm_stub(script) as stub:
        res, (sc, _, _) = _generate(settings, sample_replay["replay_id"], stub)
    assert stub.chat_requests[0].headers["authorization"] == f"Bearer {key}"
    assert res["failures"] == 2
    stored = json.dumps(sc["failures"])
    assert "Sorry. For the record" in stored and "***" in stored  # kept, masked
    for secret in (key, other, "S3CR3T-pw", "S3CR3T-tok"):
        assert secret not in stored, (secret, stored)
    assert leaks(settings.data_dir, key, other, "S3CR3T-pw", "S3CR3T-tok") == []
