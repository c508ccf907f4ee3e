"""Redaction of e-mails, phones, cards and configured patterns (and what must stay)."""

import json
import sys
from pathlib import Path

import pytest

from models.scenario import ToolCall, Turn
from tasks.scenario.redact import Redactor, luhn_ok

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_scenario_text import SAMPLE  # noqa: E402


def test_email():
    r = Redactor()
    assert r.redact("write to jay.kim+shop@mail.example.co.uk today") == "write to [EMAIL] today"
    assert r.counts["email"] == 1 and r.total == 1


@pytest.mark.parametrize("text", ["+1 415 555 2671", "(415) 555-2671", "415-555-2671", "415.555.2671",
                                  "4155552671", "+44 20 7946 0958", "+49 30 1234567", "555-1234",
                                  "+33 1 23 45 67 89", "030 1234567", "+14155552671"])
def test_phone_formats(text):
    r = Redactor()
    assert r.redact(f"call me at {text}, thanks") == "call me at [PHONE], thanks"
    assert r.counts["phone"] == 1


@pytest.mark.parametrize("text", [
    "order A1042", "on 2026-11-20", "at 2026-11-20T09:00:12Z", "20.11.2026", "11/20/2026", "12345", "123456",
    "refund RF-48213", "ticket HD-5531", "$129.99", "in 5-7 business days", "tracking 1Z84A0X70312345678",
    "tracking 9400111202555842761023", "JD014600006281234567", "sizes 36 37 38 39 40 41 42", "192.168.1.10",
    "20,000 mm", "1234567",  # a plain 7-digit number is an id, not a phone
])
def test_not_a_phone_or_card(text):
    r = Redactor()
    assert r.redact(text) == text and r.total == 0


def test_cards_are_luhn_checked():
    r = Redactor()
    assert r.redact("card 4111 1111 1111 1111 ok") == "card [CARD] ok"
    assert r.redact("card 4111-1111-1111-1111") == "card [CARD]"
    assert r.redact("amex 378282246310005") == "amex [CARD]"
    assert r.redact("card 4111 1111 1111 1112") == "card 4111 1111 1111 1112"  # fails Luhn
    assert r.counts["card"] == 3 and r.counts["phone"] == 0
    assert luhn_ok("79927398713") and not luhn_ok("79927398710")


def test_named_patterns_first():
    r = Redactor({"order_id": r"\bA\d{4}\b", "ticket": r"\bHD-\d+\b"})
    out = r.redact("order A1042, ticket HD-5531, mail a@b.io")
    assert out == "order [ORDER_ID], ticket [TICKET], mail [EMAIL]"
    assert r.counts == {"order_id": 1, "ticket": 1, "email": 1, "card": 0, "phone": 0} and r.total == 3


def test_redact_obj_walks_dicts_lists_and_models():
    r = Redactor()
    obj = {"a": ["mail x@y.com", {"b": "call 415-555-2671"}], "n": 3, "none": None, "ok": True}
    assert r.redact_obj(obj) == {"a": ["mail [EMAIL]", {"b": "call [PHONE]"}], "n": 3, "none": None, "ok": True}
    turn = Turn(turn_index=0, trace_id="t", user_message="I am x@y.com",
                tool_calls=[ToolCall(name="lookup", arguments={"email": "x@y.com"},
                                     result=json.dumps({"phone": "+1 415 555 2671"}))])
    out = r.redact_obj(turn)
    assert isinstance(out, Turn) and out.user_message == "I am [EMAIL]"
    assert out.tool_calls[0].arguments == {"email": "[EMAIL]"}
    assert json.loads(out.tool_calls[0].result) == {"phone": "[PHONE]"}  # JSON text stays JSON
    assert r.counts == {"email": 3, "card": 0, "phone": 2}


def test_sample_conversations_have_nothing_to_mask():
    """The sample has order ids, dates, prices, tracking numbers and ticket ids, but no personal data."""
    r = Redactor()
    for transcript in SAMPLE.values():
        turns = [t.model_dump() for t in transcript.turns]
        assert r.redact_obj(turns) == turns
    assert r.total == 0
