"""Tool calls matched like a careful reviewer: argument kinds, normalisation, the args and
trajectory modes, write-tool inference, the config file, and recorded tools / divergence
using them. Pure: no servers."""

from __future__ import annotations

import asyncio
import json

import pytest

from models.scenario import ToolCall, Turn
from models.simulate import RunOptions, ToolMatchConfig, ToolRule
from tasks.simulate.divergence import diverged, tool_call_differences, tool_calls_match
from tasks.simulate.recorded_tools import OffScriptError, RecordedTools
from tasks.simulate.toolmatch import (
    ToolMatchConfigError,
    arg_kind,
    call_match,
    is_write_tool,
    load_config,
    match_turn,
    normalize_key,
    split_args,
    text_similarity,
)

REASON = "Customer reports a duplicate charge of $64.90 for order A1150; only one payment on our side."
REWORDED = "The customer was charged twice ($64.90) for order A1150 and wants it sorted out by a person."


def call(name, **arguments):
    return {"name": name, "arguments": arguments}


# --------------------------------------------------------------------------- kinds


@pytest.mark.parametrize("path, value, kind", [
    ("order_id", "A1077", "key"),
    ("orderId", "A1077", "key"),
    ("amount", 49.99, "key"),
    ("amount", "49.99", "key"),
    ("quantity", 2, "key"),
    ("express", True, "key"),
    ("date", "2024-05-01", "key"),
    ("delivery_date", "March 3rd, 2024", "key"),  # three words, but a date
    ("created_at", "2024-05-01T10:00:00Z", "key"),
    ("since", "2024-05-01 10:00", "key"),  # a space, but an ISO timestamp
    ("reason", "wrong_size", "key"),  # an enum, even under a free-text name
    ("reason_code", "WRONG_SIZE", "key"),
    ("promo", "SAVE20", "key"),
    ("currency", "EUR", "key"),
    ("email", "sam@example.com", "key"),
    ("city", "New York", "key"),  # two words: a value, not prose
    ("status", "waiting for the customer to send photos", "text"),  # prose under a key name
    ("reason", REASON, "text"),
    ("reason", "damaged", "text"),  # a plain word under a free-text name stays text
    ("query", "black everyday hoodie size L", "text"),
    ("search_query", "hoodie", "text"),
    ("note", "call back after 5pm", "text"),
    ("customerMessage", "Where is my parcel?", "text"),
    ("summary", "Refund issued for a damaged jacket", "text"),
    ("shipping_address", "12 Rue de la Paix, 75002 Paris", "text"),
    ("address.street", "12 Rue de la Paix", "text"),
    ("address.zip", "75002", "key"),
    ("items.0.sku", "HD-BLK-L", "key"),
    ("items.0.comment", "gift wrap it please", "text"),
    ("idempotency_key", "b7f0c2", "ignore"),
    ("$", "not json", "key"),  # arguments that are not an object: by value
])
def test_arg_kind_by_name_and_value(path, value, kind):
    assert arg_kind(path, value) == kind


def test_split_args_flattens_nested_objects_and_normalises_keys():
    args = {"order_id": "A1077", "amount": 54.0, "reason": REASON, "idempotency_key": "k-1",
            "items": [{"sku": "HD-BLK-L", "qty": 1.0, "note": "the black one, not the grey one"}],
            "address": {"street": "12 Rue de la Paix", "zip": "75002", "country": "FR"},
            "tags": ["gift", "Urgent"], "coupon": None, "comment": ""}
    key, text = split_args("issue_refund", json.dumps(args))
    assert key == {"order_id": "A1077", "amount": 54, "items.0.sku": "hd-blk-l", "items.0.qty": 1,
                   "address.zip": 75002, "address.country": "fr", "tags.0": "gift", "tags.1": "urgent"}
    assert text == {"reason": REASON, "items.0.note": "the black one, not the grey one",
                    "address.street": "12 Rue de la Paix"}
    assert split_args("f", None) == split_args("f", "") == split_args("f", {}) == ({}, {})


def test_field_overrides_by_dotted_path():
    address = "12 Rue de la Paix, 75002 Paris"
    assert split_args("ship", {"address": address}) == ({}, {"address": address})
    cfg = ToolMatchConfig(tools={"ship": ToolRule(fields={"address": "key", "items.note": "ignore",
                                                          "gift.*.to": "text", "order_id": "ignore"})})
    key, text = split_args("ship", {"address": address, "order_id": "A1", "items": [{"note": "x y z"}],
                                    "gift": [{"to": "SAM"}]}, cfg)
    assert key == {"address": address} and text == {"gift.0.to": "SAM"}
    # another tool keeps the inference; "*" is every other tool's rule
    assert split_args("other", {"address": address})[1] == {"address": address}
    star = ToolMatchConfig(tools={"*": ToolRule(fields={"address": "key"})})
    assert split_args("other", {"address": address}, star)[0] == {"address": address}
    # an override on an object applies to everything under it
    obj = {"address": {"street": "12 Rue de la Paix", "city": "Paris"}}
    cfg = ToolMatchConfig(tools={"ship": ToolRule(fields={"address": "text"})})
    assert split_args("ship", obj, cfg) == ({}, {"address.street": "12 Rue de la Paix", "address.city": "Paris"})


@pytest.mark.parametrize("a, b, equal", [
    (1, 1.0, True),
    (54, "54", True),
    (49.99, "49.99", True),
    (0.1 + 0.2, 0.3, True),
    ("$54.00", 54, True),
    (True, 1, False),  # a bool is not a number
    ("true", True, False),
    ("  A1077 ", "A1077", True),
    ("A1077", "a1077", False),  # ids with digits keep their case
    ("WRONG_SIZE", "wrong_size", True),  # codes do not
    ("New  York", "new york", True),
    ("Sam@Example.COM", "sam@example.com", True),
    ("0042", 42, False),  # a leading zero keeps a string a string
    ("2024-05-01T10:00:00+02:00", "2024-05-01T08:00:00Z", True),
    ("2024-05-01T08:00:00z", "2024-05-01 08:00:00+00:00", True),
    ("May 1, 2024", "2024-05-01", True),
    ("1st May 2024", "2024-05-01", True),
    ("2024-05-01", "2024-05-02", False),
])
def test_normalize_key(a, b, equal):
    na, nb = normalize_key(a), normalize_key(b)
    assert (na == nb and type(na) is type(nb)) == equal


def test_codes_named_so_ignore_case_with_digits():
    assert normalize_key("save20", "promo_code") == normalize_key("SAVE20", "promo_code")
    assert normalize_key("a1077", "order_id") != normalize_key("A1077", "order_id")
    assert call_match(call("apply_coupon", code="save20"), call("apply_coupon", code="SAVE20")).key_ok


# --------------------------------------------------------------------------- one call


def test_call_match_reworded_reason_is_not_a_difference():
    m = call_match(call("transfer_to_human", reason=REWORDED), call("transfer_to_human", reason=REASON))
    assert m.name_ok and m.key_ok and m.matched
    assert m.text_similarity is not None and 0.0 < m.text_similarity < 1.0
    assert m.text_similarity == pytest.approx(text_similarity(REWORDED, REASON))
    assert m.differences == [f"transfer_to_human: reason reworded (similarity {m.text_similarity:.2f}), "
                             "not compared"] == m.notes


def test_call_match_key_differences_one_line_each():
    m = call_match(call("issue_refund", order_id="A1077", amount=49.99, reason="too small"),
                   call("issue_refund", order_id="A1077", amount=59.99, reason="too small"))
    assert not m.key_ok and m.text_similarity == 1.0
    assert m.differences == ["issue_refund: amount 49.99 != 59.99"] and m.notes == []
    m = call_match(call("lookup_order", order_id="A1078"), call("lookup_order", order_id="A1077"))
    assert m.differences == ['lookup_order: order_id "A1078" != "A1077"'] and m.text_similarity is None
    m = call_match(call("lookup_order", order_id="A1"), call("get_order", order_id="A1"))
    assert not m.name_ok and not m.matched and m.differences == ["lookup_order called instead of get_order"]
    # a text argument on one side only: noted, not failing
    m = call_match(call("transfer_to_human"), call("transfer_to_human", reason=REASON))
    assert m.key_ok and m.text_similarity == 0.0
    assert m.notes == ["transfer_to_human: reason only in production, not compared"]


def test_key_on_one_side_text_on_the_other_is_compared_as_text():
    m = call_match(call("issue_refund", order_id="A1", reason="wrong_size"),
                   call("issue_refund", order_id="A1", reason="The hoodie is a size too small"))
    assert m.key_ok and m.text_similarity is not None and m.text_similarity < 0.6
    m = call_match(call("issue_refund", order_id="A1", reason="damaged_item"),
                   call("issue_refund", order_id="A1", reason="wrong_size"))
    assert not m.key_ok and m.differences == ['issue_refund: reason "damaged_item" != "wrong_size"']


@pytest.mark.parametrize("mode, replay, ok", [
    ("exact", {"order_id": "A1", "amount": 5}, True),
    ("exact", {"order_id": "A1"}, False),
    ("exact", {"order_id": "A1", "amount": 5, "notify": True}, False),
    ("ignore", {"order_id": "B2", "amount": 9, "notify": True}, True),
    ("subset", {"order_id": "A1"}, True),  # the replay's keys are a subset of production's
    ("subset", {"order_id": "A1", "amount": 5, "notify": True}, False),
    ("subset", {"order_id": "A1", "amount": 6}, False),
    ("superset", {"order_id": "A1", "amount": 5, "notify": True}, True),  # production's are a subset
    ("superset", {"order_id": "A1"}, False),
    ("superset", {"order_id": "A1", "amount": 6, "notify": True}, False),
])
def test_args_modes(mode, replay, ok):
    cfg = ToolMatchConfig(tools={"issue_refund": ToolRule(args=mode)})
    production = call("issue_refund", order_id="A1", amount=5.0)
    m = call_match({"name": "issue_refund", "arguments": replay}, production, cfg)
    assert m.key_ok is ok
    if not ok:
        assert m.differences and all(d.startswith("issue_refund: ") for d in m.differences)


def test_args_mode_differences_wording():
    cfg = ToolMatchConfig(tools={"issue_refund": ToolRule(args="exact")})
    m = call_match(call("issue_refund", order_id="A1", notify=True), call("issue_refund", order_id="A1", amount=5),
                   cfg)
    assert m.differences == ["issue_refund: amount missing (production 5)", "issue_refund: notify true not in production"]


# --------------------------------------------------------------------------- one turn

LOOKUP = call("lookup_order", order_id="A1077")
POLICY = call("get_refund_policy")
REFUND = call("issue_refund", order_id="A1077", amount=54.0, reason="hoodie too small")


def test_unordered_pairs_as_multisets():
    tm = match_turn([REFUND, LOOKUP, POLICY], [LOOKUP, POLICY, REFUND])
    assert (tm.mode, tm.passed, tm.names_ok, tm.args_ok) == ("unordered", True, True, True)
    assert (tm.precision, tm.recall, tm.f1) == (1.0, 1.0, 1.0)
    assert tm.missing == tm.extra == tm.differing == [] and tm.text_similarity == 1.0
    assert sorted((i, j) for i, j, _ in tm.pairs) == [(0, 2), (1, 0), (2, 1)]
    tm = match_turn([LOOKUP, LOOKUP], [LOOKUP])  # a repeated call is not the same as one
    assert not tm.passed and tm.extra == ['lookup_order(order_id="A1077") extra']
    assert (tm.precision, tm.recall) == (0.5, 1.0)
    empty = match_turn([], [])
    assert empty.passed and (empty.precision, empty.recall, empty.f1) == (1.0, 1.0, 1.0) and empty.text_similarity is None


def test_turn_reports_missing_extra_differing_and_scores():
    other = call("issue_refund", order_id="A1077", amount=59.99, reason="the customer changed their mind")
    tm = match_turn([other, call("search_products", query="hoodie")], [LOOKUP, REFUND])
    assert not tm.passed and not tm.names_ok and not tm.args_ok
    assert tm.missing == ['lookup_order(order_id="A1077") missing']
    assert tm.extra == ["search_products() extra"]
    assert tm.differing == ["issue_refund: amount 59.99 != 54"]
    assert tm.notes and tm.notes[0].startswith("issue_refund: reason reworded (similarity ")
    assert (tm.precision, tm.recall, tm.f1) == (0.0, 0.0, 0.0)
    half = match_turn([LOOKUP, other], [LOOKUP, REFUND])
    assert (half.precision, half.recall, half.f1) == (0.5, 0.5, 0.5) and half.names_ok and not half.args_ok


def test_pairing_prefers_key_matches_then_similar_text():
    a = [call("search_products", query="running shorts with pockets", limit=5),
         call("search_products", query="black everyday hoodie size L", limit=5)]
    e = [call("search_products", query="black hoodie in L", limit=5),
         call("search_products", query="running shorts that have pockets", limit=5)]
    tm = match_turn(a, e)
    assert tm.passed and sorted((i, j) for i, j, _ in tm.pairs) == [(0, 1), (1, 0)]
    # key arguments first: the only pairing where every call matches wins over text
    a = [call("issue_refund", order_id="A1", reason="same words"), call("issue_refund", order_id="A2", reason="x")]
    e = [call("issue_refund", order_id="A2", reason="same words"), call("issue_refund", order_id="A1", reason="x")]
    assert match_turn(a, e).passed


def test_strict_keeps_the_order():
    cfg = ToolMatchConfig(trajectory="strict")
    assert match_turn([LOOKUP, POLICY, REFUND], [LOOKUP, POLICY, REFUND], cfg).passed
    tm = match_turn([POLICY, LOOKUP, REFUND], [LOOKUP, POLICY, REFUND], cfg)
    assert not tm.passed and len(tm.pairs) == 2 and len(tm.missing) == len(tm.extra) == 1
    assert tool_call_differences([POLICY, LOOKUP, REFUND], [LOOKUP, POLICY, REFUND], cfg) in (
        ["get_refund_policy out of order"], ["lookup_order out of order"])
    assert match_turn([POLICY, LOOKUP, REFUND], [LOOKUP, POLICY, REFUND]).passed  # unordered


def test_subset_and_superset_trajectories():
    sub, sup = ToolMatchConfig(trajectory="subset"), ToolMatchConfig(trajectory="superset")
    # subset: every replayed call pairs with a production one; skipping some is fine
    tm = match_turn([REFUND], [LOOKUP, POLICY, REFUND], sub)
    assert tm.passed and tm.names_ok and len(tm.missing) == 2 and tm.recall == pytest.approx(1 / 3)
    assert not match_turn([REFUND, call("cancel_order", order_id="A1077")], [LOOKUP, REFUND], sub).passed
    assert tool_call_differences([REFUND], [LOOKUP, REFUND], sub) == []
    # superset: every production call is paired; more calls are fine
    tm = match_turn([LOOKUP, POLICY, REFUND], [LOOKUP, REFUND], sup)
    assert tm.passed and tm.extra == ["get_refund_policy() extra"] and tm.precision == pytest.approx(2 / 3)
    assert not match_turn([LOOKUP], [LOOKUP, REFUND], sup).passed
    assert tool_call_differences([LOOKUP], [LOOKUP, REFUND], sup) == ["issue_refund missing"]
    # key arguments still count
    bad = call("issue_refund", order_id="A1077", amount=1)
    assert not match_turn([bad], [REFUND], sub).passed and not match_turn([bad], [REFUND], sup).passed


def test_divergence_uses_the_matcher():
    prod = [call("transfer_to_human", reason=REASON)]
    replay = [call("transfer_to_human", reason=REWORDED)]
    assert tool_calls_match(replay, prod) and tool_call_differences(replay, prod) == []
    assert diverged("ok", "ok", replay, prod, 0.6) == (False, 1.0, "")
    wrong = [call("issue_refund", order_id="A1077", amount=59.99)]
    assert tool_call_differences(wrong, [REFUND]) == ["issue_refund arguments differ"]
    cfg = ToolMatchConfig(tools={"issue_refund": ToolRule(args="ignore")})
    assert tool_calls_match(wrong, [REFUND], cfg) and not diverged("ok", "ok", wrong, [REFUND], 0.6, cfg)[0]


# --------------------------------------------------------------------------- write tools

WRITES = [
    "issue_refund", "create_ticket", "cancel_order", "update_address", "delete_account", "remove_item_from_cart",
    "add_to_cart", "set_delivery_date", "change_password", "transfer_to_human", "escalate_ticket",
    "refund_payment", "book_flight", "reserve_table", "send_email", "submit_claim", "pay_invoice",
    "charge_card", "apply_coupon", "approve_return", "reject_request", "close_ticket", "assign_agent",
    "handoff_to_agent", "hand_off_to_human", "createTicket", "modify_pending_order_items",
    "exchange_delivered_order_items", "return_delivered_order_items", "update_reservation_flights",
    "process_refund", "place_order", "ticket_create", "order.cancel", "update_status", "send_search_results",
    "checkout", "end_conversation",
]
READS = [
    "get_order_details", "lookup_order", "look_up_order", "search_products", "list_orders",
    "find_user_id_by_email", "check_refund_eligibility", "fetch_invoice", "read_file", "query_database",
    "show_balance", "describe_policy", "get_refund_policy", "getOrderStatus", "search_direct_flight",
    "calculate", "think", "track_parcel", "is_eligible_for_refund", "refund_status", "transfer_lookup",
    "order_refund_status", "exchange_rate", "verify_identity", "user_lookup", "order_status",
]


@pytest.mark.parametrize("name", WRITES)
def test_write_tools_by_name(name):
    assert is_write_tool(name)


@pytest.mark.parametrize("name", READS)
def test_read_tools_by_name(name):
    assert not is_write_tool(name)


@pytest.mark.parametrize("name, description, write", [
    ("order_tool", "Cancels the order and refunds the customer.", True),
    ("shop_action", "This tool can be used to cancel a pending order.", True),
    ("customer_profile", "Returns the customer's profile: name, e-mail, address.", False),
    ("policy", "The refund policy of the shop.", False),
    ("ledger", "Issues a store credit to the customer's account.", True),
    ("catalog", "Searches the catalog for products matching a query.", False),
    ("escalation", "Hand the conversation over to a human agent.", True),
    ("refund_tool", "Read-only: shows whether an order can be refunded.", True),  # the name decides first
    ("eligibility", "Read-only check of whether an order can be refunded.", False),
    ("widget", "Does not modify anything; updates nothing.", False),
    ("widget", None, False),
])
def test_write_tools_with_descriptions(name, description, write):
    assert is_write_tool(name, description) is write


def test_write_tool_override():
    cfg = ToolMatchConfig(tools={"get_and_reserve_seat": ToolRule(write=True), "send_digest": ToolRule(write=False)})
    assert not is_write_tool("get_and_reserve_seat") and is_write_tool("get_and_reserve_seat", config=cfg)
    assert is_write_tool("send_digest") and not is_write_tool("send_digest", config=cfg)


# --------------------------------------------------------------------------- the config


def test_load_config(tmp_path):
    p = tmp_path / "tm.json"
    p.write_text(json.dumps({"trajectory": "superset", "tools": {
        "issue_refund": {"args": "subset", "fields": {"note": "ignore"}}, "ship": {"write": True}}}))
    cfg = load_config(p)
    assert cfg.trajectory == "superset" and cfg.tools["issue_refund"].args == "subset"
    assert cfg.tools["issue_refund"].fields == {"note": "ignore"} and cfg.tools["ship"].write is True


@pytest.mark.parametrize("text, words", [
    (None, "cannot read"),
    ("{not json", "is not JSON"),
    ('{"trajectory": "sideways"}', "bad setting at trajectory"),
    ('{"tools": {"x": {"args": "fuzzy"}}}', "bad setting at tools.x.args"),
    ('{"tools": {"x": {"feilds": {}}}}', "bad setting at tools.x.feilds"),
    ('{"tools": {"x": {"fields": {"reason": "maybe"}}}}', "bad setting at tools.x.fields.reason"),
])
def test_load_config_errors_are_one_line(tmp_path, text, words):
    p = tmp_path / "tm.json"
    if text is not None:
        p.write_text(text)
    with pytest.raises(ToolMatchConfigError) as info:
        load_config(p)
    assert words in str(info.value) and "\n" not in str(info.value) and str(p) in str(info.value)


def test_run_options_keep_loading_without_tool_match():
    old = RunOptions().model_dump(mode="json")
    del old["tool_match"]
    opts = RunOptions.model_validate_json(json.dumps(old))
    assert opts.tool_match == ToolMatchConfig()
    cfg = ToolMatchConfig(trajectory="strict", tools={"ship": ToolRule(fields={"address": "key"})})
    again = RunOptions.model_validate_json(RunOptions(tool_match=cfg).model_dump_json())
    assert again.tool_match == cfg


# --------------------------------------------------------------------------- recorded tools


def recorded(*calls: ToolCall) -> RecordedTools:
    return RecordedTools([Turn(turn_index=0, trace_id="t0", tool_calls=list(calls))])


def ask(tools: RecordedTools, name, arguments=None):
    return asyncio.run(tools.call(name, arguments))


def test_recorded_tools_answer_a_reworded_reason_from_the_recording():
    tools = recorded(
        ToolCall(name="transfer_to_human", arguments={"reason": REASON}, result='{"ticket": "T-9"}', status="ok"),
        ToolCall(name="issue_refund", arguments={"order_id": "A1077", "amount": 54.0, "reason": "too small"},
                 result='{"refund_id": "RF-1"}', status="ok"))
    assert ask(tools, "transfer_to_human", {"reason": REWORDED}) == {"ticket": "T-9"}
    assert ask(tools, "issue_refund", {"order_id": "A1077", "amount": 54, "reason": "wrong size, sadly"}) == {
        "refund_id": "RF-1"}
    assert ask(tools, "transfer_to_human", {}) == {"ticket": "T-9"}  # no reason at all: still the action
    assert [(e.source, e.status, e.matched_turn) for e in tools.log] == [("recorded", "ok", 0)] * 3
    other = ask(tools, "issue_refund", {"order_id": "A1077", "amount": 59.99, "reason": "too small"})
    assert other["error"].startswith("off-script: no recorded result for issue_refund(")
    assert tools.log[-1].source == "off_script"


def test_recorded_tools_rank_by_turn_then_text_similarity():
    turns = [Turn(turn_index=0, trace_id="t0", tool_calls=[
        ToolCall(name="search_products", arguments={"query": "running shorts with pockets"}, result='{"r": "shorts"}'),
        ToolCall(name="search_products", arguments={"query": "black everyday hoodie size L"}, result='{"r": "hoodie"}'),
    ]), Turn(turn_index=1, trace_id="t1", tool_calls=[
        ToolCall(name="search_products", arguments={"query": "black hoodie L"}, result='{"r": "hoodie again"}')])]
    tools = RecordedTools(turns)
    assert ask(tools, "search_products", {"query": "a black hoodie, size L"}) == {"r": "hoodie"}
    assert ask(tools, "search_products", {"query": "shorts with pockets for running"}) == {"r": "shorts"}
    tools.set_turn(1)
    assert ask(tools, "search_products", {"query": "running shorts with pockets"}) == {"r": "hoodie again"}


def test_recorded_tools_follow_the_config():
    tools = RecordedTools([Turn(turn_index=0, trace_id="t0", tool_calls=[
        ToolCall(name="ship", arguments={"order_id": "A1", "address": "12 Rue de la Paix, 75002 Paris"},
                 result='{"ok": true}')])], config=ToolMatchConfig(tools={
                     "ship": ToolRule(fields={"address": "key"})}))
    assert ask(tools, "ship", {"order_id": "A1", "address": "12 rue de la Paix, 75002 Paris"})["error"]
    assert ask(tools, "ship", {"order_id": "A1", "address": " 12 Rue de la Paix,  75002 Paris"}) == {"ok": True}
    loose = RecordedTools([Turn(turn_index=0, trace_id="t0", tool_calls=[
        ToolCall(name="issue_refund", arguments={"order_id": "A1", "amount": 5}, result='{"ok": 1}')])],
        config=ToolMatchConfig(tools={"issue_refund": ToolRule(args="subset")}))
    assert ask(loose, "issue_refund", {"order_id": "A1"}) == {"ok": 1}
    assert "error" in ask(loose, "issue_refund", {"order_id": "A1", "amount": 5, "notify": True})


def test_off_script_fail_names_the_key_difference():
    tools = RecordedTools([Turn(turn_index=0, trace_id="t0", tool_calls=[
        ToolCall(name="issue_refund", arguments={"order_id": "A1130", "amount": 129.99}, result="{}")])],
        off_script="fail")
    with pytest.raises(OffScriptError) as info:
        ask(tools, "issue_refund", {"order_id": "A1130", "amount": 10, "reason": "whatever"})
    assert "with other key arguments (amount 10 != 129.99)" in str(info.value)
