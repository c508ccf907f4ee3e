"""Built-in evaluators, custom evaluators and run_evaluators (tasks/evaluators.py): pure
functions on constructed chats; the LLM judge against the real loopback stub."""

from __future__ import annotations

import json
import textwrap

import pytest
from llm_stub import llm_stub

from models.evals import EvalContext, EvalResult, EvalScore
from models.scenario import Persona, ScenarioRow, ToolCall, Turn
from models.simulate import ChatRecord, ChatTurnRecord, ToolCallLog
from tasks.evaluate import evaluators as ev
from tasks.evaluate.evaluators import (
    Csat,
    EvaluatorLoadError,
    GroundTruthMatch,
    InputTokens,
    Latency,
    OutputTokens,
    TaskCompletion,
    ToolCallMatch,
    ToolNameMatch,
    TurnCount,
    default_evaluators,
    heuristic_csat,
    heuristic_task_completion,
    load_evaluator,
    run_evaluators,
    tool_call_scores,
)

pytestmark = pytest.mark.timeout(30)

# --------------------------------------------------------------------------- builders


def row(turns: list[tuple[str, str | None, list[dict]]], index: int = 0) -> ScenarioRow:
    """A scenario row from (user, production answer, production tool calls) triples."""
    return ScenarioRow(
        row_index=index, origin_id=f"sess-{index}", persona=Persona(name="Ann"),
        situation="A customer whose order is late wants to know where it is.",
        outcome="The agent looked the order up and gave the delivery date.",
        conversation_branch="start -> end", branch_category="resolved",
        user_turns=[u for u, _, _ in turns],
        expected_turns=[Turn(turn_index=i, trace_id=f"t{i}", user_message=u, assistant_message=a,
                             tool_calls=[ToolCall(**c) for c in calls])
                        for i, (u, a, calls) in enumerate(turns)])


def turn(i: int, user: str, answer: str | None, *, calls=(), orig: str | None = None,
         orig_calls=(), source: str = "original", latency: float | None = 100.0,
         error: str | None = None, tin: int = 10, tout: int = 5) -> dict:
    return {"chat_id": "c1", "turn_index": i, "user_message": user, "assistant_message": answer,
            "tool_calls": [dict({"status": "ok", "source": "recorded"}, **c) for c in calls],
            "latency_ms": latency, "input_tokens": tin, "output_tokens": tout,
            "original_assistant_message": orig,
            "original_tool_calls": [dict({"status": "ok"}, **c) for c in orig_calls],
            "user_source": source, "similarity": None, "attempts": 1, "error": error}


def chat(chat_id: str = "c1", *, status: str = "completed", ended: str = "script_done",
         row_index: int = 0, turns: list[dict] | None = None, repetition: int = 0, **kw) -> dict:
    turns = turns or []
    lat = [t["latency_ms"] for t in turns if t["latency_ms"] is not None]
    base = {"chat_id": chat_id, "execution_id": "e1", "scenario_id": "s1", "row_index": row_index,
            "repetition": repetition, "origin_id": f"sess-{row_index}", "status": status,
            "ended_reason": ended, "divergence_turn": None, "turn_count": len(turns),
            "input_tokens": sum(t["input_tokens"] for t in turns),
            "output_tokens": sum(t["output_tokens"] for t in turns),
            "avg_latency_ms": sum(lat) / len(lat) if lat else None, "error": None}
    base.update(kw)
    return base


def ctx(c: dict, turns: list[dict], r: ScenarioRow | None = None, turn_index: int | None = None,
        settings=None) -> EvalContext:
    return EvalContext(chat=c, turns=turns, row=r, turn_index=turn_index, settings=settings)


LOOKUP = {"name": "lookup_order", "arguments": {"order_id": "A1234"}}
REFUND = {"name": "issue_refund", "arguments": {"order_id": "A1234", "amount": 20}}
PROD = row([("Where is my order A1234?", "Your order A1234 ships tomorrow.", [LOOKUP]),
            ("Thanks!", "You're welcome, anything else?", [])])


def good_turns() -> list[dict]:
    return [turn(0, "Where is my order A1234?", "Your order A1234 ships tomorrow.", calls=[LOOKUP],
                 orig="Your order A1234 ships tomorrow.", orig_calls=[LOOKUP]),
            turn(1, "Thanks!", "You're welcome! Anything else?",
                 orig="You're welcome, anything else?")]


# --------------------------------------------------------------------------- ground_truth_match
# the real default embedding model (wordllama, loaded from its package, offline)


def gt(answer, orig, *, threshold=None, model=None, source="original", r=None):
    t = turn(0, "q", answer, orig=orig, source=source)
    return GroundTruthMatch(threshold, model=model).evaluate(ctx(chat(turns=[t]), [t], r, 0))


def test_ground_truth_exact_after_normalisation():
    res = gt("Done!", "  done ")
    assert (res.value, res.label, res.passed, res.source) == (1.0, "equivalent", True, "semantic")


def test_ground_truth_a_paraphrase_with_the_same_facts_passes():
    res = gt("Order A1042 left our warehouse on 18 November; it should arrive by Friday.",
             "Your order A1042 was shipped on Nov 18th and will arrive by Friday.")
    assert (res.label, res.passed) == ("equivalent", True), res.reason
    assert res.detail["facts_missing"] == [] and 0.58 <= res.value < 1.0
    assert res.detail["similarity"] == round(res.value, 4)


REFUNDED = "I've issued a refund of $54.00 for order A1077; it arrives in 5-7 business days."


@pytest.mark.parametrize(("answer", "expected", "why"), [
    ("I've issued a refund of $45.00 for order A1077; it arrives in 5-7 business days.", REFUNDED,
     "missing 1 fact(s): 54"),  # another amount
    ("yo my order A1077 came w the wrong color", REFUNDED, "missing"),  # an echo of the user
    ("Your order A1042 has not shipped yet.", "Your order A1042 has shipped.", "negated in one answer only"),
    ("We have running shorts with zip pockets in stock.", "Your refund is on its way.", "similarity 0."),
])
def test_ground_truth_another_fact_an_echo_or_a_negation_fails(answer, expected, why):
    res = gt(answer, expected)
    assert (res.label, res.passed) == ("different", False)
    assert why in res.reason, res.reason


def test_ground_truth_threshold_is_configurable_and_recorded_in_the_spec():
    a, b = "Your order ships on Monday.", "We will send your parcel out Monday."
    low, high = gt(a, b, threshold=0.1), gt(a, b, threshold=0.99)
    assert low.passed is True and high.passed is False and low.value == pytest.approx(high.value)
    assert GroundTruthMatch(0.4).spec.threshold == 0.4 and GroundTruthMatch().spec.threshold == 0.58
    assert GroundTruthMatch.spec.threshold == 0.58  # the class's own spec is untouched
    with pytest.raises(ValueError):
        GroundTruthMatch(1.5)


def test_ground_truth_without_an_embedding_model_is_lexical():
    res = gt("Your order A1042 ships tomorrow morning.", "Your order A1042 ships tomorrow.", model="none")
    assert res.passed is True and res.detail["threshold"] == 0.53
    assert gt("I cannot find that order.", "Your order A1042 ships tomorrow.", model="none").passed is False


def test_ground_truth_no_production_answer_is_not_a_failure():
    # a simulated user turn: production never answered that message
    res = gt("Sure, here you go.", "Your order ships tomorrow.", source="simulated")
    assert (res.value, res.passed, res.label) == (None, None, None)
    assert res.reason == "no production answer to compare"
    # a turn past production's turns
    t = turn(5, "one more thing", "ok")
    res = GroundTruthMatch().evaluate(ctx(chat(turns=[t]), [t], PROD, 5))
    assert res.value is None and res.reason == "no production answer to compare"
    # production's turn had no answer
    r = row([("hi", None, [])])
    t = turn(0, "hi", "hello")
    assert GroundTruthMatch().evaluate(ctx(chat(turns=[t]), [t], r, 0)).value is None


def test_ground_truth_missing_originals_fall_back_to_the_row():
    t = turn(0, "Where is my order A1234?", "Your order A1234 ships tomorrow.")
    del t["original_assistant_message"], t["original_tool_calls"]
    res = GroundTruthMatch().evaluate(ctx(chat(turns=[t]), [t], PROD, 0))
    assert res.label == "equivalent" and res.value == 1.0
    # no originals and no row: nothing to compare
    res = GroundTruthMatch().evaluate(ctx(chat(turns=[t]), [t], None, 0))
    assert res.value is None and res.reason == "no production answer to compare"


def test_ground_truth_turn_without_answer_fails():
    t = turn(0, "q", None, orig="An answer.", error="TimeoutError: agent took too long")
    res = GroundTruthMatch().evaluate(ctx(chat(turns=[t]), [t], None, 0))
    assert (res.value, res.label, res.passed) == (0.0, "different", False)
    assert "TimeoutError" in res.reason


# --------------------------------------------------------------------------- tool_call_match


def tcm(calls, orig_calls, *, source="original", r=None, idx=0):
    t = turn(idx, "q", "a", calls=calls, orig_calls=orig_calls, source=source)
    return ToolCallMatch().evaluate(ctx(chat(turns=[t]), [t], r, idx))


def test_tool_call_scores_known_values():
    assert tool_call_scores([], []) == (1.0, 1.0, 1.0)
    assert tool_call_scores([LOOKUP], []) == (0.0, 1.0, 0.0)
    assert tool_call_scores([], [LOOKUP]) == (1.0, 0.0, 0.0)
    p, r, f1 = tool_call_scores([LOOKUP], [LOOKUP, REFUND])
    assert (p, r) == (1.0, 0.5) and f1 == pytest.approx(2 / 3)
    p, r, f1 = tool_call_scores([LOOKUP, REFUND, LOOKUP], [LOOKUP, REFUND])
    assert (p, r) == (pytest.approx(2 / 3), 1.0) and f1 == pytest.approx(0.8)


def test_tool_call_match_both_empty_is_a_match():
    res = tcm([], [])
    assert (res.value, res.passed, res.label) == (1.0, True, "match")
    assert "no tool calls" in res.reason


def test_tool_call_match_ignores_order_key_order_and_number_forms():
    calls = [{"name": "issue_refund", "arguments": '{"amount": 20.0, "order_id": "A1234"}'}, LOOKUP]
    res = tcm(calls, [LOOKUP, REFUND])
    assert res.value == 1.0 and res.passed is True


def test_tool_call_match_missing_extra_and_differing_calls():
    res = tcm([LOOKUP], [LOOKUP, REFUND])
    assert res.value == pytest.approx(2 / 3) and res.passed is False and res.label == "tools_differ"
    assert "recall 0.50" in res.reason and "issue_refund" in res.reason and "missing" in res.reason
    res = tcm([LOOKUP, REFUND], [LOOKUP])
    assert "precision 0.50" in res.reason and "extra" in res.reason
    res = tcm([{"name": "lookup_order", "arguments": {"order_id": "B9"}}], [LOOKUP])
    assert res.value == 0.0 and res.label == "arguments_differ"
    assert res.detail["names_ok"] is True and res.detail["args_ok"] is False
    assert "A1234" in res.reason and "B9" in res.reason


def test_tool_call_match_free_text_is_compared_by_meaning_not_required():
    # the same refund with its reason in other words: the same action
    prod = {"name": "issue_refund", "arguments": {"order_id": "A1234", "amount": 20,
                                                  "reason": "The parcel arrived damaged, refund in full."}}
    mine = {"name": "issue_refund", "arguments": {"order_id": "A1234", "amount": 20.0,
                                                  "reason": "Customer says the box came broken; full refund."}}
    res = tcm([mine], [prod])
    assert res.passed is True and res.label == "match" and res.detail["args_ok"] is True
    assert any("reason" in n for n in res.detail["notes"])
    # another amount is another action, whatever the reason says
    other = {"name": "issue_refund", "arguments": {**mine["arguments"], "amount": 25}}
    assert tcm([other], [prod]).passed is False
    # the names alone
    t = turn(0, "q", "a", calls=[other], orig_calls=[prod])
    assert ToolNameMatch().evaluate(ctx(chat(turns=[t]), [t], None, 0)).passed is True


def test_tool_call_match_without_a_production_turn_is_none():
    res = tcm([LOOKUP], [], source="simulated")
    assert res.value is None and res.passed is None
    res = tcm([LOOKUP], [], r=PROD, idx=4)
    assert res.value is None


def test_tool_call_match_falls_back_to_the_row():
    t = turn(0, "q", "a", calls=[LOOKUP])
    t["original_tool_calls"] = None
    res = ToolCallMatch().evaluate(ctx(chat(turns=[t]), [t], PROD, 0))
    assert res.value == 1.0


# --------------------------------------------------------------------------- task_completion


def test_task_completion_by_actions_completed():
    ts = good_turns()
    res = heuristic_task_completion(ctx(chat(turns=ts), ts, PROD))
    assert (res.value, res.passed, res.label, res.source) == (1.0, True, "completed", "actions")


@pytest.mark.parametrize("status,ended", [("failed", "error"), ("completed", "max_turns"),
                                          ("failed", "timeout")])
def test_task_completion_abnormal_end(status, ended):
    ts = good_turns()
    res = heuristic_task_completion(ctx(chat(turns=ts, status=status, ended=ended), ts, PROD))
    assert res.value == 0.0 and res.passed is False
    assert "ended abnormally" in res.reason and ended in res.reason


def test_task_completion_user_ended_is_normal():
    ts = good_turns()
    assert heuristic_task_completion(ctx(chat(turns=ts, ended="user_ended"), ts, PROD)).value == 1.0


REFUND_PROD = row([("My parcel A1234 arrived broken, I want a refund", "Refunded 20 EUR.",
                    [LOOKUP, dict(REFUND, arguments={**REFUND["arguments"], "reason": "arrived broken"})])])


def refund_turns(calls) -> list[dict]:
    return [turn(0, "My parcel A1234 arrived broken, I want a refund", "Done.", calls=calls,
                 orig="Refunded 20 EUR.", orig_calls=[c.model_dump() for c in REFUND_PROD.expected_turns[0].tool_calls])]


def test_task_completion_needs_production_s_state_changing_actions():
    # the refund done, with its reason in other words: completed
    mine = dict(REFUND, arguments={**REFUND["arguments"], "reason": "the customer says it came damaged"})
    ts = refund_turns([LOOKUP, mine])
    assert heuristic_task_completion(ctx(chat(turns=ts), ts, REFUND_PROD)).passed is True
    # skipped (reads only): not completed, and the reason names the action
    ts = refund_turns([LOOKUP])
    res = heuristic_task_completion(ctx(chat(turns=ts), ts, REFUND_PROD))
    assert res.passed is False and "not done: issue_refund" in res.reason
    assert res.detail["missing"] and not res.detail["extra"]
    # another amount is another action: missing, and an action production did not take
    ts = refund_turns([LOOKUP, dict(REFUND, arguments={"order_id": "A1234", "amount": 200})])
    res = heuristic_task_completion(ctx(chat(turns=ts), ts, REFUND_PROD))
    assert res.passed is False and res.detail["missing"] and res.detail["extra"]
    # a failed call is not the action done
    ts = refund_turns([LOOKUP, dict(mine, status="error")])
    assert heuristic_task_completion(ctx(chat(turns=ts), ts, REFUND_PROD)).passed is False
    # reads are not actions: other read arguments do not matter to completion
    ts = good_turns()
    ts[0]["tool_calls"] = [{"name": "lookup_order", "arguments": {"order_id": "X"}, "status": "ok"}]
    assert heuristic_task_completion(ctx(chat(turns=ts), ts, PROD)).passed is True
    # production's failed actions are not expected
    prod = row([("q", "a", [dict(REFUND, status="error")])])
    t = [turn(0, "q", "a")]
    assert heuristic_task_completion(ctx(chat(turns=t), t, prod)).passed is True


def test_task_completion_transfer_and_refusal_only_when_production_did():
    ts = good_turns()
    ts[1]["tool_calls"] = [{"name": "transfer_to_human", "arguments": {"reason": "wants a person"}, "status": "ok"}]
    res = heuristic_task_completion(ctx(chat(turns=ts), ts, PROD))
    assert res.value == 0.0 and "not take: transfer_to_human" in res.reason
    prod = row([("Where is my order A1234?", "Let me check.", [LOOKUP]),
                ("Thanks!", "I'll pass you to a colleague.",
                 [{"name": "transfer_to_human", "arguments": {"reason": "customer asked for a person"}}])])
    assert heuristic_task_completion(ctx(chat(turns=ts), ts, prod)).value == 1.0  # reason reworded: same action

    ts = good_turns()
    ts[1]["assistant_message"] = "I’m sorry, but I can’t help with that."  # typographic quotes
    res = heuristic_task_completion(ctx(chat(turns=ts), ts, PROD))
    assert res.value == 0.0 and "refused" in res.reason
    prod = row([("Where is my order A1234?", "ok", [LOOKUP]), ("Thanks!", "I cannot assist further.", [])])
    assert heuristic_task_completion(ctx(chat(turns=ts), ts, prod)).value == 1.0


def test_task_completion_without_the_row_uses_the_turns_originals():
    ts = refund_turns([LOOKUP])
    res = heuristic_task_completion(ctx(chat(turns=ts), ts, None))
    assert res.value == 0.0 and "issue_refund" in res.reason
    for t in ts:
        t["original_tool_calls"] = []
        t["original_assistant_message"] = None
    assert heuristic_task_completion(ctx(chat(turns=ts), ts, None)).value == 1.0


def test_task_completion_write_tools_follow_the_config_and_descriptions():
    from models.simulate import ToolMatchConfig, ToolRule

    prod = row([("q", "a", [{"name": "ping_warehouse", "arguments": {"order_id": "A1234"}}])])
    t = [turn(0, "q", "a")]
    # no verb the inference knows: not an action by default
    assert heuristic_task_completion(ctx(chat(turns=t), t, prod)).passed is True
    c = EvalContext(chat=chat(turns=t), turns=t, row=prod, tool_match=ToolMatchConfig(
        tools={"ping_warehouse": ToolRule(write=True)}))
    assert heuristic_task_completion(c).passed is False


# --------------------------------------------------------------------------- csat


def users(*msgs: str, last_answer: str | None = "ok", error: str | None = None) -> list[dict]:
    ts = [turn(i, m, "Here is the answer.") for i, m in enumerate(msgs)]
    ts[-1]["assistant_message"] = last_answer
    ts[-1]["error"] = error
    return ts


def csat(ts, **kw):
    return heuristic_csat(ctx(chat(turns=ts, **kw), ts))


def test_csat_neutral_chat_is_seven():
    res = csat(users("Where is my order?", "ok and when will it arrive?"))
    assert res.value == 7.0 and res.label == "neutral" and res.passed is None
    assert res.source == "heuristic" and "no cues" in res.reason


def test_csat_positive_cues_in_reactions_only():
    assert csat(users("Where is my order?", "Perfect, thanks!")).value == 8.0
    assert csat(users("Where is my order?", "great", "awesome 👍")).value == 9.0
    # the opening message's politeness is not the agent's doing
    assert csat(users("Thanks in advance, where is my order?")).value == 7.0


def test_csat_negative_cues_shouting_and_repeats():
    ts = users("Where is my order A1234?", "This is useless!!", "Where is my order A1234??",
               "STILL NOT DELIVERED, RIDICULOUS")
    res = csat(ts)
    # turn 1: -1 negative ("useless"), -1 shouting ("!!"); turn 2: -1 repeat of turn 0
    # ("??" is not shouting); turn 3: -1 negative ("still not", "ridiculous"), -1 shouting (caps)
    assert "-1 repeated question (turn 2)" in res.reason
    assert "-1 shouting (turn 3)" in res.reason and "-1 negative cue (turn 3)" in res.reason
    assert res.value == 7 - 2 - 1 - 2
    assert res.label == "dissatisfied"


def test_csat_negated_praise_counts_as_negative():
    res = csat(users("Where is my order?", "That was not great."))
    assert res.value == 6.0 and "+1" not in res.reason


def test_csat_ending_after_an_error_or_without_answer():
    assert csat(users("q", "ok then", error="Boom"), status="failed", ended="error").value == 5.0
    assert csat(users("q", "fine", last_answer=""), ).value == 6.0


def test_csat_is_clamped():
    angry = users("q", *["THIS IS USELESS!!!"] * 6)
    res = csat(angry, status="failed", ended="error")
    assert res.value == 1.0 and "clamped" in res.reason
    happy = users("q", "thanks", "perfect", "great", "awesome", "excellent")
    assert csat(happy).value == 10.0


def test_csat_zero_turns():
    res = heuristic_csat(ctx(chat(turns=[], status="failed", ended="error"), []))
    assert res.value == 5.0


def test_csat_and_completion_rules_are_documented():
    doc = ev.__doc__
    for word in ("start at 7", "thanks", "still not", "repeats", "ended after an error",
                 "transfer", "refusal", "clamped to 1..10"):
        assert word in doc


# --------------------------------------------------------------------------- metrics


def test_metric_evaluators():
    ts = [turn(0, "a", "b", latency=100.0, tin=10, tout=4), turn(1, "c", "d", latency=300.0,
                                                                    tin=20, tout=6)]
    c = chat(turns=ts)
    cx = ctx(c, ts)
    assert Latency().evaluate(cx).value == 200.0
    assert InputTokens().evaluate(cx).value == 30.0
    assert OutputTokens().evaluate(cx).value == 10.0
    assert TurnCount().evaluate(cx).value == 2.0
    assert all(e.evaluate(cx).source == "metric" and e.evaluate(cx).passed is None
               for e in (Latency(), InputTokens(), OutputTokens(), TurnCount()))
    # a chat row without the numbers: computed from its turns
    bare = {"chat_id": "c1", "execution_id": "e1", "row_index": 0, "status": "completed"}
    cx = ctx(bare, ts)
    assert (Latency().evaluate(cx).value, OutputTokens().evaluate(cx).value,
            TurnCount().evaluate(cx).value) == (200.0, 10.0, 2.0)
    none = Latency().evaluate(ctx(bare, []))
    assert none.value is None and none.reason == "no turns to measure"


# --------------------------------------------------------------------------- run_evaluators


def test_run_evaluators_zero_chats():
    assert run_evaluators(default_evaluators(), [], {}, {}, None) == []


def test_run_evaluators_one_row_per_chat_and_per_turn():
    c1, c2 = chat("c1", turns=good_turns()), chat("c2", row_index=1, turns=[turn(0, "hi", "hello")])
    evs = default_evaluators()
    scores = run_evaluators(evs, [c1, c2], {"c1": good_turns(), "c2": [turn(0, "hi", "hello")]},
                            {0: PROD}, None)
    # 3 turn-level evaluators x 3 turns + 6 chat-level x 2 chats
    assert len(scores) == 3 * 3 + 6 * 2
    assert all(isinstance(s, EvalScore) and s.execution_id == "e1" and s.error is None
               for s in scores)
    keys = [(s.chat_id, s.turn_index, s.evaluator) for s in scores]
    assert len(set(keys)) == len(keys)
    turn_rows = [s for s in scores if s.evaluator == "ground_truth_match"]
    assert [(s.chat_id, s.turn_index) for s in turn_rows] == [("c1", 0), ("c1", 1), ("c2", 0)]
    assert all(s.turn_index is None for s in scores if s.evaluator == "csat")
    # c2's row is missing: nothing to compare, not a failure
    c2_gt = next(s for s in scores if s.chat_id == "c2" and s.evaluator == "ground_truth_match")
    assert c2_gt.value is None and c2_gt.reason == "no production answer to compare"
    by = {(s.chat_id, s.evaluator): s for s in scores if s.turn_index is None}
    assert by[("c1", "task_completion")].value == 1.0
    assert by[("c1", "csat")].value == 8.0  # "Thanks!" in turn 1
    assert by[("c1", "latency")].value == 100.0


def test_run_evaluators_all_failed_chats():
    t = [turn(0, "Where is my order A1234?", None, error="ConnectError: refused",
              orig="Your order A1234 ships tomorrow.", orig_calls=[LOOKUP])]
    chats = [chat(f"c{i}", status="failed", ended="error", turns=t, error="ConnectError")
             for i in range(3)]
    scores = run_evaluators(default_evaluators(), chats, {c["chat_id"]: t for c in chats},
                            {0: PROD}, None)
    assert len(scores) == 3 * (3 + 6) and all(s.error is None for s in scores)
    assert {s.value for s in scores if s.evaluator == "task_completion"} == {0.0}
    assert {s.passed for s in scores if s.evaluator == "ground_truth_match"} == {False}
    assert {s.value for s in scores if s.evaluator == "tool_call_match"} == {0.0}


def test_run_evaluators_accepts_records_and_row_dicts():
    t = ChatTurnRecord(chat_id="c1", turn_index=0, user_message="Where is my order A1234?",
                       assistant_message="Your order A1234 ships tomorrow.",
                       tool_calls=[ToolCallLog(name="lookup_order", arguments={"order_id": "A1234"})],
                       latency_ms=50.0, original_assistant_message="Your order A1234 ships tomorrow.",
                       original_tool_calls=[{"name": "lookup_order",
                                             "arguments": '{"order_id": "A1234"}'}])
    c = ChatRecord(chat_id="c1", execution_id="e1", scenario_id="s1", row_index=0, repetition=0,
                   origin_id="sess-0", turn_count=1, avg_latency_ms=50.0)
    scores = run_evaluators([GroundTruthMatch(), ToolCallMatch(), TaskCompletion()],
                            [c], {"c1": [t]}, {0: PROD.model_dump()}, None)
    assert [s.value for s in scores] == [1.0, 1.0, 1.0]
    assert all(s.error is None for s in scores)


class Boom:
    name, version, level = "boom", "1", "chat"

    def evaluate(self, ctx):
        if ctx.chat["chat_id"] == "c2":
            raise RuntimeError("cannot score\nthis chat")
        return EvalResult(value=0.5, passed=True)


class TurnBoom:
    name, version, level = "turn_boom", "2", "turn"

    def evaluate(self, ctx):
        if ctx.turn_index == 1:
            raise KeyError("x")
        return 1.0


def test_a_failing_evaluator_becomes_a_failure_row_and_the_rest_goes_on():
    chats = [chat("c1", turns=good_turns()), chat("c2", turns=good_turns())]
    turns = {"c1": good_turns(), "c2": good_turns()}
    scores = run_evaluators([Boom(), TurnBoom(), TurnCount()], chats, turns, {0: PROD}, None)
    assert len(scores) == 2 * (1 + 2 + 1)
    failed = [s for s in scores if s.error]
    assert [(s.chat_id, s.evaluator, s.turn_index) for s in failed] == [
        ("c1", "turn_boom", 1), ("c2", "boom", None), ("c2", "turn_boom", 1)]
    boom = failed[1]
    assert boom.value is None and boom.passed is None
    assert boom.error == "RuntimeError: cannot score this chat"  # one line
    assert boom.evaluator_version == "1"
    assert failed[0].error.startswith("KeyError")
    ok = [s for s in scores if not s.error]
    assert {s.evaluator for s in ok} == {"boom", "turn_boom", "turn_count"}
    assert next(s for s in ok if s.evaluator == "turn_boom").value == 1.0


def test_a_non_result_or_non_finite_value_is_a_failure_row():
    class Bad:
        name, version = "bad", "1"

        def evaluate(self, ctx):
            return "yes"

    class Nan:
        name, version = "nan", "1"

        def evaluate(self, ctx):
            return EvalResult(value=float("nan"))

    scores = run_evaluators([Bad(), Nan()], [chat()], {}, {}, None)
    assert scores[0].error == "TypeError: bad returned str, not an EvalResult"
    assert "non-finite" in scores[1].error


def test_duplicate_evaluator_names_are_refused():
    with pytest.raises(ValueError, match="csat"):
        run_evaluators([Csat(), Csat()], [chat()], {}, {}, None)


def test_an_invalid_row_fails_the_chats_scores_not_the_run():
    scores = run_evaluators([TurnCount()], [chat("c1"), chat("c2", row_index=1)], {},
                            {0: {"row_index": 0}, 1: PROD}, None)
    assert scores[0].error.startswith("scenario row 0 is invalid") and scores[1].error is None


# --------------------------------------------------------------------------- custom evaluators


@pytest.fixture
def custom_module(tmp_path, monkeypatch):
    (tmp_path / "my_evals.py").write_text(textwrap.dedent('''
        from models.evals import EvalResult

        class Polite:
            name = "polite"
            version = "3"

            def evaluate(self, ctx):
                said = " ".join(t["assistant_message"] or "" for t in ctx.turns).lower()
                return EvalResult(value=1.0 if "welcome" in said else 0.0,
                                  passed="welcome" in said, reason="checked")

        class Short:
            name = "short"
            version = "1"
            level = "turn"

            def evaluate(self, ctx):
                return len(ctx.turn["assistant_message"] or "") < 40

        class Sourced:
            name = "sourced"
            version = "1"

            def evaluate(self, ctx):
                return EvalResult(value=2.0, source="llm:mine")

        class NoEvaluate:
            name = "x"
            version = "1"

        class BadLevel:
            name = "y"
            version = "1"
            level = "session"
            def evaluate(self, ctx):
                return 1.0

        class NeedsArgs:
            def __init__(self, key):
                pass

        class BadName:
            name = "has space"
            version = "1"
            def evaluate(self, ctx):
                return 1.0

        instance = Polite()
        '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_evals"


def test_load_a_custom_evaluator(custom_module):
    polite = load_evaluator("my_evals:Polite")
    assert (polite.name, polite.version, polite.level) == ("polite", "3", "chat")
    short = load_evaluator("my_evals:Short")
    assert short.level == "turn"
    assert load_evaluator("my_evals:instance").name == "polite"
    scores = run_evaluators([polite, short, load_evaluator("my_evals:Sourced")],
                            [chat(turns=good_turns())], {"c1": good_turns()}, {0: PROD}, None)
    assert [(s.evaluator, s.value, s.passed, s.source) for s in scores] == [
        ("polite", 1.0, True, "custom"), ("short", 1.0, True, "custom"),
        ("short", 1.0, True, "custom"), ("sourced", 2.0, None, "llm:mine")]
    assert scores[0].evaluator_version == "3"


@pytest.mark.parametrize("ref,msg", [
    ("no_colon", "is not 'module:Class'"),
    ("a:b:c", "is not 'module:Class'"),
    ("no_such_module_xyz:Thing", "cannot import 'no_such_module_xyz'"),
    ("my_evals:Missing", "has no 'Missing'"),
    ("my_evals:NoEvaluate", "lacks evaluate()"),
    ("my_evals:BadLevel", "level 'session'"),
    ("my_evals:NeedsArgs", "must build without arguments"),
    ("my_evals:BadName", "name 'has space'"),
])
def test_load_evaluator_errors_are_one_line(custom_module, ref, msg):
    with pytest.raises(EvaluatorLoadError) as info:
        load_evaluator(ref)
    assert msg in str(info.value) and "\n" not in str(info.value)


def test_default_evaluators_and_settings(custom_module):
    from types import SimpleNamespace

    names = [e.name for e in default_evaluators()]
    assert names == ["ground_truth_match", "tool_call_match", "tool_name_match", "task_completion", "csat",
                     "latency", "input_tokens", "output_tokens", "turn_count"]
    evs = default_evaluators(SimpleNamespace(semantic_threshold=0.5,
                                             evaluators=["my_evals:Polite"]))
    assert evs[0].threshold == 0.5 and evs[-1].name == "polite"
    assert all(hasattr(e, a) for e in evs for a in ("name", "version", "level", "evaluate"))


# --------------------------------------------------------------------------- LLM judge


def judge_settings(settings, server, **kw):
    return settings.model_copy(update=dict(llm_base_url=server.base_url, llm_model="judge-model",
                                           llm_max_retries=0, llm_timeout_s=5.0, **kw))


def test_judges_are_heuristic_without_a_model(settings):
    ts = good_turns()
    scores = run_evaluators([TaskCompletion(), Csat()], [chat(turns=ts)], {"c1": ts}, {0: PROD},
                            settings)
    assert [s.source for s in scores] == ["actions", "heuristic"]


def test_llm_judge_task_completion_and_csat(settings):
    def script(req):
        system = req["messages"][0]["content"]
        if "CSAT" in system:
            return {"content": json.dumps({"score": 9, "reason": "User thanked the agent."})}
        return {"content": json.dumps({"completed": True, "reason": "Order status given."})}

    ts = good_turns()
    with llm_stub(script) as server:
        s = judge_settings(settings, server)
        scores = run_evaluators([TaskCompletion(), Csat()], [chat(turns=ts)], {"c1": ts},
                                {0: PROD}, s)
        reqs = server.chat_requests
    tc, cs = scores
    assert (tc.value, tc.passed, tc.label, tc.source) == (1.0, True, "completed", "actions+llm:judge-model")
    assert tc.reason.endswith("judge: Order status given.") and tc.reason.startswith("actions: ended normally")
    assert (cs.value, cs.label, cs.passed, cs.source) == (9.0, "satisfied", None, "llm:judge-model")
    assert len(reqs) == 2
    body = reqs[0].json
    assert body["model"] == "judge-model" and body["temperature"] == 0
    assert body["response_format"]["type"] == "json_schema"
    user = body["messages"][1]["content"]
    assert "Where is my order A1234?" in user and "lookup_order" in user
    assert PROD.outcome in user and "status completed" in user


def test_llm_judge_decides_ground_truth_and_keeps_the_similarity(settings):
    def script(req):
        user = req["messages"][1]["content"]
        same = "tomorrow" in user.split("Candidate answer")[1]
        return {"content": json.dumps({"equivalent": same, "reason": "same facts" if same else "no date given"})}

    paraphrase = turn(0, "Where is my order A1234?", "Order A1234 goes out tomorrow.",
                      orig="Your order A1234 ships tomorrow.")
    vague = turn(1, "When?", "Soon.", orig="Tomorrow morning.")
    with llm_stub(script) as server:
        scores = run_evaluators([GroundTruthMatch()], [chat(turns=[paraphrase, vague])],
                                {"c1": [paraphrase, vague]}, {0: PROD}, judge_settings(settings, server))
        system = server.chat_requests[0].json["messages"][0]["content"]
    assert "equivalent" in system
    (p, v) = scores
    assert (p.passed, p.label, p.source) == (True, "equivalent", "llm:judge-model")
    assert p.reason.startswith("judge: same facts") and 0 < p.detail["similarity"] < 1
    assert (v.passed, v.label) == (False, "different") and "no date given" in v.reason


def test_llm_judge_corrects_an_out_of_range_reply(settings):
    replies = [{"content": json.dumps({"score": 11, "reason": "great"})},
               {"content": json.dumps({"score": 3, "reason": "User had to repeat."})}]
    ts = good_turns()
    with llm_stub(replies) as server:
        scores = run_evaluators([Csat()], [chat(turns=ts)], {"c1": ts}, {0: PROD},
                                judge_settings(settings, server))
        second = server.chat_requests[1].json["messages"][-1]["content"]
    assert scores[0].value == 3.0 and scores[0].label == "dissatisfied"
    assert "score" in second and "could not be used" in second


def test_llm_judge_invalid_reply_is_a_failure_row(settings):
    ts = good_turns()
    with llm_stub(lambda req: {"content": "I think it went fine."}) as server:
        chats = [chat("c1", turns=ts), chat("c2", turns=ts)]
        scores = run_evaluators([TaskCompletion(), TurnCount()], chats, {"c1": ts, "c2": ts},
                                {0: PROD}, judge_settings(settings, server))
        n_requests = len(server.chat_requests)
    assert n_requests == 2 * 3  # 1 try + 2 corrective retries, per chat
    tc = [s for s in scores if s.evaluator == "task_completion"]
    assert len(tc) == 2
    assert all(s.value is None and s.source == "actions+llm:judge-model" for s in tc)
    assert all(s.error.startswith("InvalidReply: invalid reply: it is not valid JSON") for s in tc)
    assert [s.value for s in scores if s.evaluator == "turn_count"] == [2.0, 2.0]


def test_llm_judge_unreachable_model_is_a_failure_row(settings):
    with llm_stub(lambda req: 400) as server:
        s = judge_settings(settings, server)
        scores = run_evaluators([Csat()], [chat(turns=good_turns())], {"c1": good_turns()},
                                {0: PROD}, s)
    assert scores[0].value is None and scores[0].error.startswith("LLMError")


def test_llm_mode_without_a_model_fails_each_chat(settings):
    scores = run_evaluators([TaskCompletion(mode="llm")], [chat()], {}, {}, settings)
    assert "needs REPLAY_LLM_BASE_URL" in scores[0].error
    assert TaskCompletion(mode="heuristic").evaluate(ctx(chat(), [], settings=settings)).source \
        == "actions"
