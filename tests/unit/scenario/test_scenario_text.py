"""Offline scenario text (persona, intents, situation, outcome, steps) on the real sample."""

import json
import random
import re
from pathlib import Path

import pytest

from models.scenario import Persona, ToolCall, Transcript, Turn
from tasks.scenario.writer_offline import (
    LEVELS,
    branch_category,
    classify_intent,
    describe,
    infer_persona,
    load_personas,
    vary_persona,
)

EXPECTED = Path(__file__).resolve().parents[3] / "data" / "samples" / "expected.json"


def _turn(i: int, t: dict) -> Turn:
    calls = [ToolCall(id=c["id"], name=c["name"], arguments=c["arguments"], status=c["status"],
                      result=None if c["result"] is None else json.dumps(c["result"]))
             for c in t["tool_call_details"]]
    return Turn(turn_index=i, trace_id=t["trace_id"], user_message=t["user_message"],
                assistant_message=t["assistant_message"], tool_calls=calls, status=t["status"], error=t["error"])


def sample_transcripts() -> dict[str, Transcript]:
    """The 12 sessions and 4 lone traces of data/samples, keyed S01..S12, L01..L04."""
    data = json.loads(EXPECTED.read_text())
    out = {s["key"]: Transcript(origin_id=sid, user_id=s["user_id"],
                                turns=[_turn(i, t) for i, t in enumerate(s["turns"])])
           for sid, s in data["sessions"].items()}
    out |= {lt["key"]: Transcript(origin_id=lt["trace_id"], user_id=lt["user_id"], turns=[_turn(0, lt)])
            for lt in data["lone_traces"]}
    return out


SAMPLE = sample_transcripts()


def _messages_of(user: str) -> list[str]:
    return [t.user_message for tr in SAMPLE.values() if tr.user_id == user for t in tr.turns]


def _sentences(text: str) -> int:
    return len(re.findall(r"[.!?]['\"]?(?=\s|$)", text))


def test_sample_has_16_transcripts():
    assert len(SAMPLE) == 16 and sum(len(t.turns) for t in SAMPLE.values()) == 42


# ---------------------------------------------------------------- personas of the 5 sample users
def test_jay_kim_is_casual_with_slang_and_typos():
    p = infer_persona("jay_kim", _messages_of("jay_kim"))
    assert (p.name, p.communication_style, p.slang_usage) == ("Jay Kim", "casual", "high")
    assert p.typos in ("low", "medium", "high") and p.emoji_usage == "none"
    for key in ("S02", "S05", "S12"):
        notes = describe(SAMPLE[key])
        assert notes.persona.communication_style == "casual" and notes.persona.slang_usage != "none", key


def test_priya_shah_uses_emoji():
    p = infer_persona("priya_shah", _messages_of("priya_shah"))
    assert (p.emoji_usage, p.communication_style, p.tone) == ("high", "casual", "friendly")
    assert "expressive" in p.personality
    assert all(describe(SAMPLE[k]).persona.emoji_usage == "high" for k in ("S03", "S08"))


def test_maria_garcia_is_formal_and_polite():
    p = infer_persona("maria_garcia", _messages_of("maria_garcia"))
    assert (p.name, p.communication_style, p.tone, p.slang_usage, p.emoji_usage, p.typos) == (
        "Maria Garcia", "formal", "polite", "none", "none", "none")
    assert all(describe(SAMPLE[k]).persona.communication_style == "formal" for k in ("S01", "S07", "S11"))


def test_tom_becker_is_terse():
    p = infer_persona("tom_becker", _messages_of("tom_becker"))
    assert (p.communication_style, p.verbosity) == ("terse", "low")
    assert all(describe(SAMPLE[k]).persona.communication_style == "terse" for k in ("S04", "S10", "L02"))


def test_lena_wolff_is_polite():
    p = infer_persona("lena_wolff", _messages_of("lena_wolff"))
    assert (p.communication_style, p.tone, p.emoji_usage, p.slang_usage) == ("formal", "polite", "none", "none")


def test_personality_has_two_or_three_adjectives():
    for user in ("jay_kim", "priya_shah", "maria_garcia", "tom_becker", "lena_wolff"):
        assert 2 <= len(infer_persona(user, _messages_of(user)).personality.split(", ")) <= 3


# ---------------------------------------------------------------- persona rules
def test_name_from_user_id():
    assert infer_persona("maria_garcia", ["hi"]).name == "Maria Garcia"
    assert infer_persona("jay.kim@example.com", ["hi"]).name == "Jay Kim"
    assert infer_persona(None, ["hi"]).name == "Anonymous user"
    assert infer_persona("12345", ["hi"]).name == "Anonymous user"


def test_about_the_user_only_when_the_text_says_so():
    p = infer_persona("x", ["I'm a teacher and I live in Berlin. I am 42 years old, can you help me?"])
    assert (p.occupation, p.location, p.age_group) == ("teacher", "Berlin", "35-44")
    q = infer_persona("x", ["I placed order A1042 in November, I am looking for shoes."])
    assert (q.occupation, q.location, q.age_group) == ("unknown", "unknown", "unknown")


def test_frustrated_tone():
    p = infer_persona("x", ["my order is STILL not here", "this is ridiculous!!", "where is it??"])
    assert p.tone == "frustrated"
    assert infer_persona("x", ["Yay!! it arrived 😊"]).tone == "friendly"  # "!!" with an emoji is happy


def test_languages():
    assert infer_persona("x", ["Hola, mi pedido no ha llegado, ¿qué pasa con el envío?"]).languages == ["es"]
    assert infer_persona("x", ["Hallo, meine Bestellung ist nicht angekommen, bitte helfen"]).languages == ["de"]
    assert infer_persona("x", ["Where is my order?"]).languages == ["en"]
    assert infer_persona("x", ["A1042"]).languages == ["en"]


def test_typos_and_slang_levels():
    assert infer_persona("x", ["i recieved teh wrong adress", "dont know wat to do"]).typos == "high"
    assert infer_persona("x", ["I received the wrong address."]).typos == "none"
    assert infer_persona("x", ["lol thx u r the best tbh"]).slang_usage == "high"


def test_empty_messages_give_a_valid_persona():
    p = infer_persona(None, [])
    assert p.name == "Anonymous user" and p.verbosity == "low"


# ---------------------------------------------------------------- describe() on the sample
def test_intents_of_sample_sessions():
    assert describe(SAMPLE["S01"]).intents == ["order_status", "policy_question", "small_talk"]
    assert describe(SAMPLE["S02"]).intents == ["order_problem", "product_search", "refund_request", "small_talk"]
    assert describe(SAMPLE["S04"]).intents == ["refund_request", "refund_request"]
    assert describe(SAMPLE["S12"]).intents == ["promo_question", "escalation"]
    assert describe(SAMPLE["L01"]).intents == ["general_question"]


def test_intent_rules():
    assert classify_intent("Thanks, bye!", []) == "small_talk"
    assert classify_intent("thanks, and where is my order?", ["lookup_order"]) == "order_status"
    assert classify_intent("hm", ["check_inventory"]) == "use_check_inventory"
    assert classify_intent("what sizes?", ["check_inventory"]) == "product_search"  # a keyword beats an unknown tool
    assert classify_intent("", []) == "general_question"


@pytest.mark.parametrize("key", sorted(SAMPLE))
def test_situation_outcome_and_steps_shape(key):
    notes = describe(SAMPLE[key])
    assert notes.writer == "offline"
    assert 30 <= len(notes.situation) <= 400
    assert 2 <= _sentences(notes.outcome) <= 4, notes.outcome
    assert len(notes.intents) == len(SAMPLE[key].turns)
    assert notes.steps[0].startswith("intent:") and notes.steps[-1] == f"outcome:{notes.branch_category}"
    assert all(a != b for a, b in zip(notes.steps, notes.steps[1:], strict=False))


def test_situation_examples():
    assert describe(SAMPLE["S01"]).situation == (
        "Maria Garcia, a formal customer, wants to know the status of order A1042 and asks about the return policy.")
    assert describe(SAMPLE["S02"]).situation == (
        "Jay Kim, a casual customer, reports a problem with order A1077, is looking for a product "
        "and wants a refund for it.")
    assert describe(SAMPLE["L01"]).situation.startswith("Anonymous user, a terse customer,")


def test_outcome_mentions_failures_and_handover():
    s04 = describe(SAMPLE["S04"]).outcome
    assert "issue_refund call failed" in s04 and "RF-48377" in s04
    assert "Turn 0 failed with an error" in describe(SAMPLE["S10"]).outcome
    assert "handed the conversation over to a human" in describe(SAMPLE["S06"]).outcome


def test_branch_categories_on_sample():
    cats = {k: describe(t).branch_category for k, t in SAMPLE.items()}
    assert cats["S06"] == cats["S12"] == "escalated"
    assert cats["S10"] == "failed"
    assert cats["S04"] == "resolved"  # the failed refund was retried and went through
    assert {k for k, c in cats.items() if c == "resolved"} == set(SAMPLE) - {"S06", "S12", "S10"}


def test_steps_of_failed_then_retried_tool():
    assert describe(SAMPLE["S04"]).steps == ["intent:refund_request", "tool:lookup_order", "tool_error:issue_refund",
                                             "intent:refund_request", "tool:issue_refund", "outcome:resolved"]


def _t(*turns: Turn) -> Transcript:
    return Transcript(origin_id="x", turns=list(turns))


def test_branch_category_tool_error_and_abandoned():
    failed = ToolCall(name="issue_refund", status="error")
    t = _t(Turn(turn_index=0, trace_id="a", user_message="refund pls", assistant_message="Sorry, it failed.",
                tool_calls=[failed]))
    assert branch_category(t) == "tool_error"
    notes = describe(t)
    assert notes.steps == ["intent:refund_request", "tool_error:issue_refund", "outcome:tool_error"]
    t2 = _t(Turn(turn_index=0, trace_id="a", user_message="hello?", assistant_message="Hi!"),
            Turn(turn_index=1, trace_id="b", user_message="where is order A1", assistant_message=None))
    assert branch_category(t2) == "abandoned"
    assert "got no answer" in describe(t2).outcome
    t3 = _t(Turn(turn_index=0, trace_id="a", user_message="help", assistant_message="A colleague will contact you."))
    assert branch_category(t3) == "escalated"


def test_describe_is_deterministic():
    assert [describe(t) for t in SAMPLE.values()] == [describe(t) for t in SAMPLE.values()]


# ---------------------------------------------------------------- persona library and variation
def test_persona_library():
    lib = load_personas()
    assert len(lib) >= 12 and len({p.persona_id for p in lib}) == len(lib)
    assert all(p.persona_id and p.name and p.occupation != "unknown" for p in lib)


def test_vary_persona_takes_identity_from_library_and_keeps_style():
    lib = load_personas()
    jay = infer_persona("jay_kim", _messages_of("jay_kim"))
    a = vary_persona(jay, random.Random(7), lib)
    assert a == vary_persona(jay, random.Random(7), lib)  # seeded: same variation
    source = next(p for p in lib if p.persona_id == a.persona_id)
    assert (a.name, a.occupation, a.location, a.age_group) == (source.name, source.occupation, source.location,
                                                              source.age_group)
    assert (a.communication_style, a.tone, a.languages) == (jay.communication_style, jay.tone, jay.languages)
    moved = [f for f in ("verbosity", "typos", "emoji_usage", "slang_usage") if getattr(a, f) != getattr(jay, f)]
    assert len(moved) <= 1
    for f in moved:
        assert abs(LEVELS.index(getattr(a, f)) - LEVELS.index(getattr(jay, f))) == 1
    names = {vary_persona(jay, random.Random(seed), lib).name for seed in range(30)}
    assert len(names) > 3


def test_vary_persona_without_library():
    p = Persona(name="Tom Becker", communication_style="terse")
    v = vary_persona(p, random.Random(1), [])
    assert v.name == "Tom Becker" and v.persona_id is None and v.communication_style == "terse"
