"""Fitting Replay's own prompts into a model's context window: the refusal read, the longest
messages cut in the middle, the size remembered per endpoint (tests/llm_stub.py for the client)."""

from __future__ import annotations

import pytest
from llm_stub import StubResponse, llm_stub

from tasks.common.llm import ChatClient, ContextOverflow
from tasks.common.llm_context import estimate_tokens, fit_messages, forget_contexts, known_context, overflow

pytestmark = pytest.mark.timeout(20)
# llama-cpp-python's server, OpenAI and vLLM word it this way
OPENAI_400 = ("This model's maximum context length is 2048 tokens. However, you requested 2610 tokens "
              "(2210 in the messages, 400 in the completion). Please reduce the length of the messages or completion.")
LLAMACPP_400 = "the request exceeds the available context size, try increasing it (n_ctx: 4096)"


@pytest.fixture(autouse=True)
def _fresh():
    forget_contexts()
    yield
    forget_contexts()


def test_the_refusals_of_known_servers_are_read():
    assert overflow(400, OPENAI_400).context_tokens == 2048
    assert overflow(400, OPENAI_400).prompt_tokens == 2210
    assert overflow(400, LLAMACPP_400).context_tokens == 4096
    assert overflow(400, "Requested tokens (3000) exceed context window of 2048").context_tokens == 2048
    assert overflow(400, "model 'x' not found") is None
    assert overflow(503, OPENAI_400) is None  # not a refusal of the request's size


def test_fit_cuts_the_longest_message_in_its_middle_and_keeps_its_ends():
    msgs = [{"role": "system", "content": "rubric " * 50},
            {"role": "user", "content": "START " + "turn text " * 3000 + " END"}]
    fitted = fit_messages(msgs, 2048, 400)
    assert fitted is not msgs and fitted[0] == msgs[0]
    user = fitted[1]["content"]
    assert user.startswith("START") and user.endswith("END") and "characters cut to fit the model's context" in user
    assert estimate_tokens(fitted) <= 2048 - 400
    assert msgs[1]["content"].endswith("END") and len(msgs[1]["content"]) > 30_000  # the caller's list untouched


def test_fit_leaves_what_fits_alone_and_says_when_nothing_can_fit():
    msgs = [{"role": "user", "content": "short"}]
    assert fit_messages(msgs, 2048, 400) is msgs
    many = [{"role": "user", "content": "x" * 150} for _ in range(200)]  # each already short
    assert fit_messages(many, 512, 100) is None


def test_fit_ends_when_cutting_a_message_would_not_make_it_shorter():
    # messages just above the kept minimum: a cut's marker costs more than it saves (this looped
    # forever: the scenario writer spun for 10 min on a 3-turn transcript)
    many = [{"role": "user", "content": "y" * 230} for _ in range(40)]
    assert fit_messages(many, 1024, 100) is None
    mixed = [{"role": "system", "content": "z" * 5000}, *many[:5]]
    fitted = fit_messages(mixed, 1024, 100)
    assert fitted is not None and estimate_tokens(fitted) <= 1024 - 100
    assert fitted[0]["content"].count("characters cut") == 1 and fitted[1:] == many[:5]


def test_the_client_cuts_after_a_refusal_and_remembers_the_size():
    seen = []

    def script(req):
        chars = sum(len(m["content"]) for m in req["messages"])
        seen.append(chars)
        if chars > 2048 * 3:
            return StubResponse(400, {"error": {"message": OPENAI_400}})
        return {"content": "fine"}

    long = [{"role": "user", "content": "word " * 4000}]
    with llm_stub(script) as server, ChatClient(server.base_url, model="m", max_retries=0) as c:
        assert c.chat(long, max_tokens=400)["content"] == "fine"
        assert len(seen) == 2 and seen[1] < seen[0]
        assert known_context((c.base_url, "m")) == 2048
        assert c.chat(long, max_tokens=400)["content"] == "fine"  # cut before it is sent
        assert len(seen) == 3


def test_a_request_that_cannot_be_cut_is_one_context_overflow():
    def script(req):
        return StubResponse(400, {"error": {"message": OPENAI_400}})

    many = [{"role": "user", "content": "x" * 100} for _ in range(100)]
    with llm_stub(script) as server, ChatClient(server.base_url, model="m", max_retries=0) as c:
        with pytest.raises(ContextOverflow) as err:
            c.chat(many, max_tokens=400)
    assert "maximum context length is 2048" in str(err.value) and "\n" not in str(err.value)


def test_a_reply_cap_past_the_context_is_lowered_with_the_cut():
    seen = []
    refusal = ("This model's maximum context length is 2048 tokens. However, you requested 2500 tokens "
               "(1500 in the messages, 1000 in the completion). Please reduce the length of the messages or "
               "completion.")

    def script(req):  # a server that counts prompt + max_tokens against its context (llama.cpp)
        seen.append((len(req["messages"][0]["content"]), req["max_tokens"]))
        if len(req["messages"][0]["content"]) // 4 + req["max_tokens"] > 2048:
            return StubResponse(400, {"error": {"message": refusal}})
        return {"content": "fine"}

    prompt = [{"role": "user", "content": "word " * 1200}]  # ~1,500 tokens
    with llm_stub(script) as server, ChatClient(server.base_url, model="m", max_retries=0) as c:
        assert c.chat(prompt, max_tokens=1000)["content"] == "fine"
        assert c.chat(prompt, max_tokens=1000)["content"] == "fine"  # the size known: capped before sending
    assert seen[0] == (6000, 1000) and seen[1][1] < 1000  # lowered (the prompt cut to the estimate too)
    assert len(seen) == 3 and seen[2] == seen[1]


def test_a_prompt_that_fits_keeps_its_words_and_only_the_reply_cap_is_lowered():
    seen = []

    def script(req):
        seen.append((req["messages"][0]["content"], req["max_tokens"]))
        asked = len(req["messages"][0]["content"]) // 4 + req["max_tokens"]
        if asked > 2048:  # the server's own count: 750 in the messages
            return StubResponse(400, {"error": {"message": (
                f"This model's maximum context length is 2048 tokens. However, you requested {asked} tokens "
                f"(750 in the messages, {req['max_tokens']} in the completion).")}})
        return {"content": "fine"}

    prompt = [{"role": "user", "content": "word " * 600}]  # 750 tokens: fits, but not with 1,500 more
    with llm_stub(script) as server, ChatClient(server.base_url, model="m", max_retries=0) as c:
        assert c.chat(prompt, max_tokens=1500)["content"] == "fine"
    assert [s[1] for s in seen][0] == 1500 and 512 <= seen[1][1] < 1500
    assert seen[1][0] == prompt[0]["content"]  # not cut
