#!/usr/bin/env python
"""(Re)generate the bundled sample traces in data/samples/.

    uv run python scripts/make_sample.py        # from the project root

A small customer-support agent for an online store ("Northwind Outfitters") talks with five
customers over three days (2026-11-20..22, UTC). Every user turn is one trace. The spans are
made with the real OpenTelemetry SDK and captured by an InMemorySpanExporter:

* OpenInference sessions: the real `openinference-instrumentation-openai` instruments the real
  `openai` client, whose HTTP goes to a scripted stub model (httpx.MockTransport; no network).
  AGENT and TOOL spans are made by the agent code with the SDK tracer.
* OTel GenAI sessions (current form: gen_ai.input/output.messages JSON; and one in the
  deprecated span-event form), and one Future AGI traceAI session: made with the SDK tracer,
  answers from the same stub model.

Output (OTLP/JSON lines, one ExportTraceServiceRequest a line, ~20 spans a line, spans in the
order they ended, as a BatchSpanProcessor + the Collector's file exporter would write them):
data/samples/otlp/*.jsonl[.gz], data/samples/expected.json, data/samples/README.md.

Deterministic: seeded ids (custom IdGenerator), a fake clock (explicit start/end times on the
spans made here; the SDK's clock is patched for the spans the instrumentation makes), fixed
resource, explicit span limits, sampler and OpenInference TraceConfig (no env lookups), gzip
without mtime, and absolute paths scrubbed from exception stack traces.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import string
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import openai  # noqa: E402
import opentelemetry.sdk.trace as sdk_trace  # noqa: E402
from openinference.instrumentation import TraceConfig, using_session, using_user  # noqa: E402
from openinference.instrumentation.openai import OpenAIInstrumentor  # noqa: E402
from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import SpanLimits, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from opentelemetry.sdk.trace.id_generator import IdGenerator  # noqa: E402
from opentelemetry.sdk.trace.sampling import ALWAYS_ON  # noqa: E402
from opentelemetry.trace import SpanKind, Status, StatusCode  # noqa: E402

from tests.support.otlp_helpers import (  # noqa: E402
    iter_spans,
    read_otlp_file,
    request_to_line,
    spans_to_requests,
    write_otlp_file,
)

SEED = 20261120
OUT = ROOT / "data" / "samples"
BATCH = 20
PROJECT = "support-agent"
AGENT_NAME = "support_agent"
APP_VERSION = "2.14.0"

OI, GENAI, GENAI_EVENTS, TRACEAI = "openinference", "genai", "genai_events", "traceai"
# request model -> the model name the (stub) API answers with
MODELS = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4o": "gpt-4o-2024-08-06",
}
MODEL_FOR = {OI: "gpt-4o-mini", GENAI: "gpt-4.1-mini", GENAI_EVENTS: "gpt-4o-mini", TRACEAI: "gpt-4o"}

SYSTEM_PROMPT = (
    "You are Ava, the customer support assistant of Northwind Outfitters, an online shop for "
    "outdoor and running gear.\n"
    "- Be friendly, concise and accurate; match the customer's tone.\n"
    "- Use the tools to look up orders, products and the refund policy. Never invent order "
    "details, prices or stock.\n"
    "- Only issue a refund when the customer asks for it and the amount is clear.\n"
    "- Shipping: US and Canada. Standard 3-5 business days (free over $50), express 1-2 "
    "business days ($9.90).\n"
    "- Human support: Monday-Friday, 8:00-18:00 UTC. If you cannot solve the problem, or the "
    "customer asks for a person, use transfer_to_human."
)


def _fn(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


TOOLS = [
    _fn(
        "lookup_order",
        "Look up an order by its id (e.g. A1042): status, items, payments, shipping, tracking.",
        {"order_id": {"type": "string"}},
        ["order_id"],
    ),
    _fn("get_refund_policy", "Get the current return and refund policy.", {}, []),
    _fn(
        "issue_refund",
        "Refund an amount in USD for an order, to the original payment method.",
        {"order_id": {"type": "string"}, "amount": {"type": "number"}},
        ["order_id", "amount"],
    ),
    _fn(
        "search_products",
        "Search the catalog; returns matching products with price, sizes and stock.",
        {"query": {"type": "string"}},
        ["query"],
    ),
    _fn(
        "transfer_to_human",
        "Hand the conversation over to a human agent; creates a support ticket.",
        {"reason": {"type": "string"}},
        ["reason"],
    ),
]
TOOL_BY_NAME = {t["function"]["name"]: t["function"] for t in TOOLS}

# --------------------------------------------------------------------------- the store backend

_ORDERS: dict[str, dict[str, Any]] = {
    "A1042": {
        "order_id": "A1042", "status": "shipped", "placed_at": "2026-11-15",
        "shipped_at": "2026-11-18", "carrier": "UPS", "tracking_number": "1Z84A0X70312345678",
        "estimated_delivery": "2026-11-22",
        "items": [{"sku": "TR2-W", "name": "Trail Runner 2 (women's)", "size": "39", "qty": 1,
                   "price": 119.0}],
        "total": 119.0, "currency": "USD",
    },
    "A1077": {
        "order_id": "A1077", "status": "delivered", "placed_at": "2026-11-12",
        "delivered_at": "2026-11-18",
        "items": [{"sku": "HD-EVR-BLK", "name": "Everyday Hoodie", "color": "black", "size": "L",
                   "qty": 1, "price": 54.0}],
        "total": 54.0, "currency": "USD",
    },
    "A1101": {
        "order_id": "A1101", "status": "delivered", "placed_at": "2026-11-10",
        "delivered_at": "2026-11-17",
        "items": [{"sku": "CKS-WHT", "name": "Cloud Knit Sneaker", "color": "white", "size": "38",
                   "qty": 1, "price": 89.0}],
        "total": 89.0, "currency": "USD",
    },
    "A1130": {
        "order_id": "A1130", "status": "delivered", "placed_at": "2026-11-14",
        "delivered_at": "2026-11-19",
        "items": [{"sku": "TRK-X2", "name": "Trekker X2 GPS Watch", "qty": 1, "price": 129.99}],
        "total": 129.99, "currency": "USD",
    },
    "A1150": {
        "order_id": "A1150", "status": "delivered", "placed_at": "2026-11-13",
        "delivered_at": "2026-11-18",
        "items": [
            {"sku": "MW-SOCK-3P", "name": "Merino Hiking Socks (3-pack)", "qty": 1, "price": 34.9},
            {"sku": "BTL-INS-750", "name": "Insulated Bottle 750 ml", "qty": 1, "price": 30.0},
        ],
        "total": 64.9, "currency": "USD",
        "payments": [{"amount": 64.9, "status": "captured", "captured_at": "2026-11-13"}],
    },
    "A1188": {
        "order_id": "A1188", "status": "processing", "placed_at": "2026-11-20",
        "ships_on": "2026-11-21", "shipping": "standard",
        "items": [{"sku": "TRL-SHT-7", "name": "Trail Shorts 7\"", "size": "M", "qty": 1,
                   "price": 42.0}],
        "total": 42.0, "currency": "USD",
    },
    "A1204": {
        "order_id": "A1204", "status": "out_for_delivery", "placed_at": "2026-11-18",
        "carrier": "DHL", "tracking_number": "JD014600006281234567",
        "estimated_delivery": "2026-11-22",
        "items": [{"sku": "HL-LUX-400", "name": "Lumen 400 Headlamp", "qty": 1, "price": 44.0}],
        "total": 44.0, "currency": "USD",
    },
    "A1211": {
        "order_id": "A1211", "status": "processing", "placed_at": "2026-11-21",
        "ships_on": "2026-11-23", "estimated_delivery": "2026-11-26",
        "items": [{"sku": "YM-CORK-5", "name": "Cork Yoga Mat 5 mm", "qty": 1, "price": 72.0}],
        "total": 72.0, "currency": "USD",
    },
    "A1220": {
        "order_id": "A1220", "status": "delivered", "placed_at": "2026-11-08",
        "delivered_at": "2026-11-12",
        "items": [{"sku": "JKT-SUM", "name": "Summit Shell Jacket", "color": "glacier blue",
                   "size": "M", "qty": 1, "price": 149.0}],
        "total": 149.0, "currency": "USD",
    },
    "A1233": {
        "order_id": "A1233", "status": "partially_delivered", "placed_at": "2026-11-17",
        "parcels": [
            {"carrier": "UPS", "tracking_number": "1Z84A0X70398765432", "status": "delivered",
             "delivered_at": "2026-11-21", "items": ["Merino Base Layer Top"]},
            {"carrier": "UPS", "tracking_number": "1Z84A0X70398765449", "status": "in_transit",
             "estimated_delivery": "2026-11-24", "items": ["Trail Gaiters"]},
        ],
        "total": 98.0, "currency": "USD",
    },
    "A1240": {
        "order_id": "A1240", "status": "shipped", "placed_at": "2026-11-19", "carrier": "USPS",
        "tracking_number": "9400111202555842761023", "estimated_delivery": "2026-11-24",
        "items": [{"sku": "CMP-MUG", "name": "Camp Mug 350 ml", "qty": 2, "price": 16.0}],
        "total": 32.0, "currency": "USD",
    },
}
_PRODUCTS: dict[str, dict[str, Any]] = {
    "HD-EVR-BLK": {"sku": "HD-EVR-BLK", "name": "Everyday Hoodie", "color": "black",
                   "price": 54.0, "sizes": ["S", "M", "L", "XL"], "in_stock_sizes": ["S", "M", "L"]},
    "CKS-WHT": {"sku": "CKS-WHT", "name": "Cloud Knit Sneaker", "color": "white", "price": 89.0,
                "sizes": ["36", "37", "38", "39", "40", "41", "42"],
                "in_stock_sizes": ["37", "39", "40", "41"]},
    "PCR-SHT": {"sku": "PCR-SHT", "name": "Pacer Running Shorts", "price": 38.0,
                "pockets": "1 back zip pocket", "sizes": ["S", "M", "L", "XL"],
                "in_stock_sizes": ["M", "L", "XL"]},
    "TRL-SHT-7": {"sku": "TRL-SHT-7", "name": "Trail Shorts 7\"", "price": 42.0,
                  "pockets": "2 side pockets, 1 zip pocket", "sizes": ["S", "M", "L"],
                  "in_stock_sizes": ["S", "M"]},
    "JKT-SUM": {"sku": "JKT-SUM", "name": "Summit Shell Jacket", "price": 149.0,
                "waterproof_mm": 20000, "weight_g": 380, "sizes": ["S", "M", "L", "XL"],
                "in_stock": {"glacier blue": ["M", "L"], "black": ["S", "M"]}},
    "JKT-RDG": {"sku": "JKT-RDG", "name": "Ridge Rain Jacket", "price": 89.0,
                "waterproof_mm": 10000, "weight_g": 260, "packable": True,
                "sizes": ["XS", "S", "M", "L", "XL"], "in_stock_sizes": ["S", "M", "L"]},
    "YM-CORK-5": {"sku": "YM-CORK-5", "name": "Cork Yoga Mat 5 mm", "price": 72.0,
                  "surface": "natural cork", "weight_kg": 2.1, "carry_strap": True,
                  "in_stock": True},
    "YM-GRIP-4": {"sku": "YM-GRIP-4", "name": "Grip Pro Yoga Mat 4 mm", "price": 58.0,
                  "surface": "sticky PU", "weight_kg": 1.8, "carry_strap": False,
                  "in_stock": True},
    "TR2-W": {"sku": "TR2-W", "name": "Trail Runner 2", "price": 119.0,
              "care": "hand wash with a soft brush and cold water; do not machine wash; "
                      "air dry away from heat",
              "sizes": ["36", "37", "38", "39", "40", "41", "42"], "in_stock": True},
}
_SEARCHES = {
    "black everyday hoodie size L": ["HD-EVR-BLK"],
    "Cloud Knit Sneaker size 39": ["CKS-WHT"],
    "running shorts with pockets": ["PCR-SHT", "TRL-SHT-7"],
    "waterproof hiking jacket": ["JKT-SUM", "JKT-RDG"],
    "Summit Shell Jacket size M": ["JKT-SUM"],
    "non-slip yoga mat": ["YM-CORK-5", "YM-GRIP-4"],
    "Trail Runner 2": ["TR2-W"],
}
_REFUND_IDS = {"A1077": "RF-48213", "A1130": "RF-48377", "A1220": "RF-48502"}
_NO_RETURN_NEEDED = {"A1077", "A1130"}  # wrong or damaged item: keep it
_TICKETS = [("HD-5531", "billing", 12), ("HD-5602", "general", 25)]
_FAILURES = {("issue_refund", "A1130"): 1}  # the payment gateway times out once
# tool latency in ms: (min, max)
_TOOL_MS = {
    "lookup_order": (60, 140), "get_refund_policy": (12, 30), "issue_refund": (420, 900),
    "search_products": (120, 260), "transfer_to_human": (180, 380),
}
_TIMEOUT_MS = 10_000


class Store:
    """The backend the tools call. Deterministic; advances the fake clock by the tool's latency."""

    def __init__(self, clock: FakeClock, rng: random.Random) -> None:
        self.clock, self.rng = clock, rng
        self.failures = dict(_FAILURES)
        self.tickets = list(_TICKETS)

    def call(self, name: str, args: dict[str, Any]) -> Any:
        key = (name, args.get("order_id"))
        if self.failures.get(key, 0) > 0:
            self.failures[key] -= 1
            self.clock.advance_ms(_TIMEOUT_MS + self.rng.randint(1, 40))
            raise TimeoutError("payment gateway timeout")
        self.clock.advance_ms(self.rng.randint(*_TOOL_MS[name]))
        return getattr(self, name)(**args)

    def lookup_order(self, order_id: str) -> dict[str, Any]:
        return json.loads(json.dumps(_ORDERS[order_id]))

    def get_refund_policy(self) -> dict[str, Any]:
        return {
            "return_window_days": 30,
            "condition": "unworn/unused, in the original packaging",
            "return_shipping": "free prepaid label sent by email",
            "exchanges": "free size exchanges if the new size is in stock",
            "refund_method": "original payment method",
            "refund_time": "5-7 business days after approval",
        }

    def issue_refund(self, order_id: str, amount: float) -> dict[str, Any]:
        return {
            "refund_id": _REFUND_IDS[order_id], "order_id": order_id, "amount": amount,
            "currency": "USD", "status": "approved", "method": "original payment method",
            "expected_in_account": "5-7 business days",
            "return_required": order_id not in _NO_RETURN_NEEDED,
        }

    def search_products(self, query: str) -> dict[str, Any]:
        return {"query": query, "results": [_PRODUCTS[sku] for sku in _SEARCHES[query]]}

    def transfer_to_human(self, reason: str) -> dict[str, Any]:
        ticket, queue, wait = self.tickets.pop(0)
        return {"ticket_id": ticket, "queue": queue, "estimated_wait_minutes": wait,
                "channel": "email", "status": "open"}


# --------------------------------------------------------------------------- conversations


@dataclass(frozen=True)
class Call:
    name: str
    args: dict[str, Any]


@dataclass(frozen=True)
class Step:
    """One scripted answer of the model: tool calls, a final text, or an API error."""

    calls: tuple[Call, ...] = ()
    text: str | None = None
    error: int | None = None  # HTTP status the model API fails with


def use(*calls: Call) -> Step:
    return Step(calls=calls)


def say(text: str) -> Step:
    return Step(text=text)


def tool(name: str, **args: Any) -> Call:
    return Call(name, args)


@dataclass
class Turn:
    at: str  # "2026-11-20T09:00:12" (UTC)
    user: str
    steps: list[Step]


@dataclass
class Conversation:
    key: str  # stable name used in the README
    convention: str
    user_id: str | None
    session: bool  # False: a lone trace, no session id anywhere
    turns: list[Turn]
    ids_on_root: bool = False  # OpenInference: session.id/user.id also on the AGENT root
    tool_id_key: str = "tool.id"  # OpenInference TOOL spans: key of the tool call id
    system_in_messages: bool = False  # GenAI: system prompt in gen_ai.input.messages
    note: str = ""
    session_id: str | None = None  # filled in by make_ids()


def conversations() -> list[Conversation]:
    maria, jay, priya, tom, lena = "maria_garcia", "jay_kim", "priya_shah", "tom_becker", "lena_wolff"
    d1, d2, d3 = "2026-11-20T", "2026-11-21T", "2026-11-22T"
    return [
        Conversation("S01", OI, maria, True, ids_on_root=True,
                     note="order status, return policy", turns=[
            Turn(d1 + "09:00:12",
                 "Good morning. I placed order A1042 on 15 November and have not yet received a "
                 "shipping confirmation. Could you kindly advise on its status?",
                 [use(tool("lookup_order", order_id="A1042")),
                  say("Good morning! Order A1042 (Trail Runner 2, women's size 39) shipped on 18 "
                      "November with UPS, tracking number 1Z84A0X70312345678, and is expected to "
                      "arrive on 22 November. I'm sorry the shipping confirmation didn't reach "
                      "you; it may be worth checking your spam folder.")]),
            Turn(d1 + "09:03:40",
                 "Thank you. Should the shoes not fit, what is your return policy?",
                 [use(tool("get_refund_policy")),
                  say("You can return unworn items in their original packaging within 30 days. "
                      "The return label is free and is sent by email, and size exchanges are free "
                      "if the new size is in stock. Refunds go back to your original payment "
                      "method within 5-7 business days.")]),
            Turn(d1 + "09:06:05",
                 "Understood. That will be all, thank you for your assistance.",
                 [say("You're very welcome. Enjoy your new Trail Runners, and have a lovely day!")]),
        ]),
        Conversation("S02", OI, jay, True, note="wrong item, refund", turns=[
            Turn(d1 + "09:04:30",
                 "yo my order A1077 came w the wrong color lol i orderd the black hoodie n got "
                 "like neon green",
                 [use(tool("lookup_order", order_id="A1077")),
                  say("Oh no, sorry about that! Order A1077 was for the Everyday Hoodie in black, "
                      "size L, so we sent you the wrong color. I can refund the $54.00 right away, "
                      "or check if the black one is in stock so you can reorder it. What works "
                      "for you?")]),
            Turn(d1 + "09:07:02", "do u even have it in black rn? size L",
                 [use(tool("search_products", query="black everyday hoodie size L")),
                  say("Good news: the Everyday Hoodie in black is in stock in size L ($54.00). "
                      "Want a refund for the green one so you can reorder the black one?")]),
            Turn(d1 + "09:09:15", "nah just refund me tbh",
                 [use(tool("issue_refund", order_id="A1077", amount=54.0)),
                  say("Done! Refund RF-48213 for $54.00 is approved and will be back on your "
                      "original payment method in 5-7 business days. No need to send the green "
                      "hoodie back.")]),
            Turn(d1 + "09:10:01", "bet thx",
                 [say("Anytime! Sorry again for the mix-up.")]),
        ]),
        Conversation("S03", OI, priya, True, ids_on_root=True,
                     note="return + exchange; two tool calls in one LLM answer", turns=[
            Turn(d1 + "10:15:08",
                 "Hi!! 😊 My sneakers from order A1101 are way too small 😩 can I return them? 👟",
                 [use(tool("lookup_order", order_id="A1101"), tool("get_refund_policy")),
                  say("Hi! 😊 Sorry they don't fit! Your Cloud Knit Sneakers (size 38) from order "
                      "A1101 were delivered on 17 November, so you're well within our 30-day "
                      "return window. If they're unworn and in the original box, you can return "
                      "them for a refund, or exchange them for another size for free if it's in "
                      "stock. 👟")]),
            Turn(d1 + "10:17:30", "Yay 🎉 Can I exchange them for a size 39 instead? 🙏",
                 [use(tool("search_products", query="Cloud Knit Sneaker size 39")),
                  say("Good news: the Cloud Knit Sneaker in white is in stock in size 39, so a "
                      "free exchange works! 🎉")]),
            Turn(d1 + "10:19:52", "Perfect!! 😍 How do I send the old ones back? 📦",
                 [say("Easy! 📦 We email you a free prepaid return label. Pack the sneakers in "
                      "their original box, stick the label on and drop the parcel at any UPS "
                      "point. Once it's scanned, we ship your size 39.")]),
            Turn(d1 + "10:21:40", "Got it 👍 Will I get the label today? 📧",
                 [say("The label goes to the email address on your order, usually within a few "
                      "hours. If you can't find it, check your spam folder or just message us "
                      "again! 📧")]),
            Turn(d1 + "10:24:10",
                 "Oh and one more thing 🙈 do you have a discount code for my next order? 🛍️",
                 [say("I don't have any discount codes I can share right now, sorry! 🙈 If you "
                      "sign up for our newsletter, you'll hear about sales first.")]),
            Turn(d1 + "10:25:02", "Okayy thank youuu 💖",
                 [say("You're welcome! Enjoy the new sneakers! 👟💖")]),
        ]),
        Conversation("L01", OI, None, False, note="lone trace, anonymous", turns=[
            Turn(d1 + "12:00:30", "hi what are your customer service hours?",
                 [say("Hi! I'm available 24/7 right here in the chat. Our human support team "
                      "works Monday to Friday, 8:00-18:00 UTC.")]),
        ]),
        Conversation("S04", OI, tom, True,
                     note="FAILED tool call (issue_refund: payment gateway timeout), then retry",
                     turns=[
            Turn(d1 + "14:30:20", "Order A1130 arrived damaged. Screen cracked. I want a refund.",
                 [use(tool("lookup_order", order_id="A1130")),
                  use(tool("issue_refund", order_id="A1130", amount=129.99)),
                  say("I'm sorry about the cracked screen. I tried to refund $129.99 for order "
                      "A1130, but our payment system timed out, so the refund did not go "
                      "through. I can try again now, or pass this to a colleague. Which do you "
                      "prefer?")]),
            Turn(d1 + "14:34:05", "Try again.",
                 [use(tool("issue_refund", order_id="A1130", amount=129.99)),
                  say("Done. Refund RF-48377 of $129.99 for order A1130 is approved and will "
                      "reach your original payment method in 5-7 business days. You don't need "
                      "to return the damaged watch.")]),
        ]),
        Conversation("S05", OI, jay, True, ids_on_root=True,
                     note="product questions; the session goes on the next morning", turns=[
            Turn(d1 + "17:50:03", "hey do u guys have running shorts w pockets",
                 [use(tool("search_products", query="running shorts with pockets")),
                  say("We do! Two options: the Pacer Running Shorts ($38.00) with a zip pocket at "
                      "the back, and the Trail Shorts 7\" ($42.00) with two side pockets and a zip "
                      "pocket. Want details on either?")]),
            Turn(d1 + "17:52:30", "the 2nd one, wat sizes",
                 [say("The Trail Shorts 7\" come in S, M and L. Right now S and M are in stock; "
                      "L is sold out.")]),
            Turn(d2 + "09:10:44", "ok ordered em last nite, order A1188. when do they ship??",
                 [use(tool("lookup_order", order_id="A1188")),
                  say("Nice pick! Order A1188 (Trail Shorts 7\", size M) is being packed and "
                      "ships today, 21 November. With standard shipping it should arrive in 3-5 "
                      "business days, and you'll get a tracking link by email.")]),
        ]),
        Conversation("S06", OI, lena, True,
                     note="duplicate charge; TRANSFER TO HUMAN", turns=[
            Turn(d2 + "08:45:10",
                 "Hello, I hope you are well. I was charged two times for my order A1150, on my "
                 "bank statement I see two payments of $64.90. Can you please help me?",
                 [use(tool("lookup_order", order_id="A1150")),
                  say("Hello, I'm sorry for the worry! On our side I can see only one payment of "
                      "$64.90 for order A1150, captured on 13 November. A second charge is often a "
                      "temporary card authorisation that your bank releases within 3-5 business "
                      "days. Could you check whether the second payment is still marked as "
                      "pending?")]),
            Turn(d2 + "08:50:30",
                 "It is already 8 days and both payments are booked, not pending. I would really "
                 "like that someone checks this properly.",
                 [use(tool("transfer_to_human",
                           reason="Customer reports a duplicate charge of $64.90 for order A1150; "
                                  "both payments booked for 8 days, only one payment on our "
                                  "side.")),
                  say("I understand, and I'm sorry this is taking so long. I've passed your case "
                      "to our billing team (ticket HD-5531) with all the details. A colleague "
                      "will contact you by email, usually within 12 minutes.")]),
            Turn(d2 + "08:53:45",
                 "Okay, thank you. Will I get the money back on my card or as a voucher?",
                 [use(tool("get_refund_policy")),
                  say("Refunds always go back to the original payment method, so if the billing "
                      "team confirms the double charge, the money goes back to your card, "
                      "usually within 5-7 business days.")]),
            Turn(d2 + "08:56:20", "Thank you very much for your help, have a nice day.",
                 [say("Thank you, you too! Our billing team will be in touch soon.")]),
        ]),
        Conversation("S07", OI, maria, True, tool_id_key="tool_call.id",
                     note="product advice; TOOL spans carry tool_call.id instead of tool.id",
                     turns=[
            Turn(d2 + "11:00:15",
                 "Good afternoon. I am looking for a waterproof jacket suitable for hiking. "
                 "Could you recommend one?",
                 [use(tool("search_products", query="waterproof hiking jacket")),
                  say("Good afternoon! I would recommend the Summit Shell Jacket ($149.00): fully "
                      "waterproof (20,000 mm), breathable and 380 g, a good choice for longer "
                      "hikes. A lighter, more affordable option is the Ridge Rain Jacket ($89.00, "
                      "10,000 mm, 260 g, packable).")]),
            Turn(d2 + "11:04:02",
                 "Thank you. Is the Summit Shell available in size M, and how long would "
                 "delivery take?",
                 [use(tool("search_products", query="Summit Shell Jacket size M")),
                  say("Yes, the Summit Shell Jacket is in stock in size M, in both glacier blue "
                      "and black. Standard delivery takes 3-5 business days and is free on "
                      "orders over $50; express delivery takes 1-2 business days for $9.90.")]),
        ]),
        Conversation("S08", GENAI, priya, True,
                     note="GenAI current form, system prompt in gen_ai.system_instructions",
                     turns=[
            Turn(d2 + "13:20:05", "Hiii 👋 Do you have yoga mats? Something non-slip pls 🧘‍♀️",
                 [use(tool("search_products", query="non-slip yoga mat")),
                  say("Hi! 👋 Yes, two non-slip mats: the Cork Yoga Mat 5 mm ($72.00), natural "
                      "cork that gets grippier when you sweat, and the Grip Pro Yoga Mat 4 mm "
                      "($58.00) with a sticky PU surface. Both are in stock! 🧘‍♀️")]),
            Turn(d2 + "13:23:30",
                 "Ooh the cork one looks nice 😍 is it heavy? I carry it to class on my bike 🚲",
                 [say("It weighs 2.1 kg and comes with a carry strap, so it works on a bike. 🚲 "
                      "If you want something lighter, the Grip Pro is 1.8 kg.")]),
            Turn(d2 + "13:26:12", "Ordered!! 🥳 Order A1211, when will it arrive?",
                 [use(tool("lookup_order", order_id="A1211")),
                  say("Yay, great choice! 🥳 Order A1211 (Cork Yoga Mat 5 mm) ships on 23 "
                      "November and should arrive around 26 November. You'll get a tracking link "
                      "by email. 📦")]),
        ]),
        Conversation("L02", OI, tom, False, note="lone trace with user.id (on the LLM spans)",
                     turns=[
            Turn(d2 + "16:30:10", "Trail Runner 2. Machine washable?",
                 [use(tool("search_products", query="Trail Runner 2")),
                  say("No, the Trail Runner 2 is not machine washable. Hand wash it with a soft "
                      "brush and cold water, then let it air dry away from heat.")]),
        ]),
        Conversation("L03", GENAI, None, False, note="lone trace, GenAI form, anonymous", turns=[
            Turn(d2 + "19:05:44", "Do you ship to Canada?",
                 [say("Yes, we ship to Canada! Standard delivery takes 3-5 business days (free on "
                      "orders over $50), and express takes 1-2 business days for $9.90.")]),
        ]),
        Conversation("S09", GENAI, lena, True, system_in_messages=True,
                     note="GenAI current form, system prompt inside gen_ai.input.messages; "
                          "two tools in one turn (two LLM round trips)", turns=[
            Turn(d3 + "09:30:18",
                 "Good morning, I would like to return a jacket from order A1220 because the "
                 "colour is different than on the pictures. Is this possible?",
                 [use(tool("lookup_order", order_id="A1220")),
                  use(tool("get_refund_policy")),
                  say("Good morning! Yes, that's possible. Your Summit Shell Jacket (glacier blue, "
                      "size M) from order A1220 was delivered on 12 November, so it is within our "
                      "30-day return window. If the jacket is unworn, you can return it for free "
                      "with a prepaid label, and the $149.00 will be refunded to your original "
                      "payment method. Would you like me to start the refund?")]),
            Turn(d3 + "09:34:00", "Yes, please make the refund for the jacket.",
                 [use(tool("issue_refund", order_id="A1220", amount=149.0)),
                  say("Done! Refund RF-48502 for $149.00 is approved. Please send the jacket back "
                      "with the prepaid return label we will email you; the money will be on your "
                      "original payment method within 5-7 business days.")]),
            Turn(d3 + "09:37:05", "Thank you, that was very easy.",
                 [say("I'm glad to hear that! Have a wonderful day.")]),
        ]),
        Conversation("S10", OI, tom, True,
                     note="first turn FAILS: the model API answers 503, no assistant message",
                     turns=[
            Turn(d3 + "10:05:33", "Where is order A1204.", [Step(error=503)]),
            Turn(d3 + "10:06:40", "Hello? Where is order A1204.",
                 [use(tool("lookup_order", order_id="A1204")),
                  say("Sorry for the delay. Order A1204 is out for delivery with DHL today "
                      "(tracking JD014600006281234567) and should arrive by this evening.")]),
            Turn(d3 + "10:09:02", "Ok.",
                 [say("Glad I could help. If anything else comes up, just ask.")]),
        ]),
        Conversation("S11", TRACEAI, maria, True, note="Future AGI traceAI form", turns=[
            Turn(d3 + "11:15:40",
                 "Good morning. I received order A1233 yesterday; however, one of the two items "
                 "is missing. Could you please look into this?",
                 [use(tool("lookup_order", order_id="A1233")),
                  say("Good morning! I'm sorry for the confusion. Order A1233 was shipped in two "
                      "parcels: the Merino Base Layer Top was delivered yesterday, and the Trail "
                      "Gaiters are in a second parcel that is still in transit with UPS, expected "
                      "on 24 November.")]),
            Turn(d3 + "11:18:20",
                 "I see. Could you confirm the tracking number of the second parcel?",
                 [say("Of course: the tracking number of the second parcel is "
                      "1Z84A0X70398765449 (UPS).")]),
            Turn(d3 + "11:20:05", "Very well. Thank you for clarifying.",
                 [say("You're welcome! Have a pleasant day.")]),
        ]),
        Conversation("S12", GENAI_EVENTS, jay, True,
                     note="deprecated GenAI span-event form; TRANSFER TO HUMAN", turns=[
            Turn(d3 + "15:40:11",
                 "my promo code SAVE20 isnt working?? says expired but i got the email yesterday",
                 [say("Sorry about that! I can't check or apply promo codes myself, but a "
                      "teammate can look into why SAVE20 shows as expired. Want me to connect "
                      "you with a human?")]),
            Turn(d3 + "15:41:30", "ya pls get me a human",
                 [use(tool("transfer_to_human",
                           reason="Promo code SAVE20 shows as expired; the customer got the "
                                  "promo email yesterday (21 Nov).")),
                  say("Done! I've handed you over to our team (ticket HD-5602). Someone will get "
                      "back to you by email in about 25 minutes.")]),
        ]),
        Conversation("L04", TRACEAI, None, False, note="lone trace, traceAI form, anonymous",
                     turns=[
            Turn(d3 + "17:20:15", "track order A1240",
                 [use(tool("lookup_order", order_id="A1240")),
                  say("Order A1240 shipped with USPS (tracking 9400111202555842761023) and should "
                      "arrive on 24 November.")]),
        ]),
    ]


# --------------------------------------------------------------------------- determinism


class FakeClock:
    """Nanoseconds since the epoch; moves only when told (and 50 us per SDK clock read)."""

    def __init__(self) -> None:
        self.ns = 0

    def set(self, when: str) -> None:
        ns = int(datetime.fromisoformat(when).replace(tzinfo=UTC).timestamp()) * 1_000_000_000
        if ns < self.ns:
            raise ValueError(f"clock would go back to {when}")
        self.ns = ns

    def now(self) -> int:
        return self.ns

    def advance_ms(self, ms: float) -> None:
        self.ns += int(ms * 1_000_000)

    def sdk_time_ns(self) -> int:  # replaces opentelemetry.sdk.trace.time_ns
        self.ns += 50_000
        return self.ns


class SeededIdGenerator(IdGenerator):
    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def generate_span_id(self) -> int:
        while not (value := self._rng.getrandbits(64)):
            pass
        return value

    def generate_trace_id(self) -> int:
        while not (value := self._rng.getrandbits(128)):
            pass
        return value


@contextlib.contextmanager
def patched_sdk_clock(clock: FakeClock) -> Iterator[None]:
    original = sdk_trace.time_ns
    sdk_trace.time_ns = clock.sdk_time_ns  # type: ignore[attr-defined]
    try:
        yield
    finally:
        sdk_trace.time_ns = original  # type: ignore[attr-defined]


def _token_estimate(obj: Any) -> int:
    text = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)
    return max(1, (len(text) + 3) // 4)


class StubModel:
    """A scripted OpenAI-compatible chat-completions endpoint (no network)."""

    def __init__(self, clock: FakeClock, rng: random.Random) -> None:
        self.clock, self.rng = clock, rng
        self.steps: list[Step] = []
        self.model = "gpt-4o-mini"

    def script(self, steps: list[Step], model: str) -> None:
        self.steps, self.model = list(steps), model

    def _id(self, prefix: str, n: int) -> str:
        alphabet = string.ascii_letters + string.digits
        return prefix + "".join(self.rng.choice(alphabet) for _ in range(n))

    def complete(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Answer one chat-completions request: (HTTP status, JSON body). Advances the clock."""
        if not self.steps:
            raise AssertionError("the stub model has no scripted answer left for this turn")
        step = self.steps.pop(0)
        if request["model"] != self.model:
            raise AssertionError(f"unexpected model {request['model']!r}")
        if step.error:
            self.clock.advance_ms(self.rng.randint(180, 420))
            return step.error, {"error": {
                "message": "The server is overloaded. Please try again later.",
                "type": "server_error", "param": None, "code": "overloaded"}}
        if step.calls:
            tool_calls = [
                {"id": self._id("call_", 24), "type": "function",
                 "function": {"name": c.name, "arguments": json.dumps(c.args)}}
                for c in step.calls
            ]
            message: dict[str, Any] = {"role": "assistant", "content": None,
                                       "tool_calls": tool_calls, "refusal": None,
                                       "annotations": []}
            finish = "tool_calls"
            completion_tokens = 12 + sum(_token_estimate(c.args) + 6 for c in step.calls)
        else:
            message = {"role": "assistant", "content": step.text, "refusal": None,
                       "annotations": []}
            finish = "stop"
            completion_tokens = _token_estimate(step.text)
        prompt_tokens = _token_estimate(request["messages"]) + (
            _token_estimate(request["tools"]) if request.get("tools") else 0)
        cached = (prompt_tokens - 256) // 128 * 128 if prompt_tokens >= 1024 else 0
        self.clock.advance_ms(280 + completion_tokens * 14 + self.rng.randint(0, 450))
        body = {
            "id": self._id("chatcmpl-", 29),
            "object": "chat.completion",
            "created": self.clock.now() // 1_000_000_000,
            "model": MODELS[request["model"]],
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": finish}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                              "accepted_prediction_tokens": 0,
                                              "rejected_prediction_tokens": 0},
            },
            "service_tier": "default",
            "system_fingerprint": "fp_7fcd609668",
        }
        return 200, body

    def http_handler(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path.endswith("/chat/completions"), request.url
        status, body = self.complete(json.loads(request.content))
        return httpx.Response(status, json=body, headers={"x-request-id": "req_stub"})


# --------------------------------------------------------------------------- the agent


class LLMCallFailed(Exception):
    pass


@dataclass
class ToolRecord:
    id: str
    name: str
    arguments: dict[str, Any]
    status: str = "ok"
    result: Any = None
    error: str | None = None


@dataclass
class TurnRecord:
    trace_id: str = ""
    started_at: int = 0
    ended_at: int = 0
    user_message: str = ""
    assistant_message: str | None = None
    tool_calls: list[ToolRecord] = field(default_factory=list)
    llm_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    request_model: str = ""
    model: str | None = None
    status: str = "ok"
    error: str | None = None


def _genai_parts(message: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI chat message in the OTel GenAI (>= 1.37) message format."""
    role = message["role"]
    if role == "tool":
        content = message["content"]
        try:
            response: Any = json.loads(content)
        except ValueError:
            response = content
        return {"role": "tool", "parts": [{"type": "tool_call_response",
                                           "id": message["tool_call_id"], "response": response}]}
    parts: list[dict[str, Any]] = []
    if message.get("content"):
        parts.append({"type": "text", "content": message["content"]})
    for tc in message.get("tool_calls") or []:
        parts.append({"type": "tool_call", "id": tc["id"], "name": tc["function"]["name"],
                      "arguments": json.loads(tc["function"]["arguments"])})
    return {"role": role, "parts": parts}


class Agent:
    """Runs the turns; subclasses make the spans of one convention."""

    convention = ""
    scope = AGENT_NAME

    def __init__(self, world: World) -> None:
        self.world = world
        self.clock = world.clock
        self.tracer = world.provider.get_tracer(self.scope, APP_VERSION)

    # ---- span helpers
    def start(self, name: str, attrs: dict[str, Any], kind: SpanKind = SpanKind.INTERNAL,
              parent: trace.Span | None = None) -> trace.Span:
        ctx = trace.set_span_in_context(parent) if parent is not None else None
        return self.tracer.start_span(name, context=ctx, kind=kind, attributes=attrs,
                                      start_time=self.clock.now())

    def end(self, span: trace.Span) -> None:
        span.end(end_time=self.clock.now())

    # ---- the loop
    def run_turn(self, conv: Conversation, turn: Turn, history: list[dict[str, Any]]) -> TurnRecord:
        rng = self.world.rng
        rec = TurnRecord(user_message=turn.user, request_model=MODEL_FOR[self.convention])
        self.clock.set(turn.at)
        self.world.model.script(turn.steps, rec.request_model)
        rec.started_at = self.clock.now()
        root = self.start_root(conv, turn)
        rec.trace_id = format(root.get_span_context().trace_id, "032x")
        history.append({"role": "user", "content": turn.user})
        try:
            with trace.use_span(root, end_on_exit=False, record_exception=False,
                                set_status_on_exception=False):
                for _ in range(len(turn.steps)):
                    self.clock.advance_ms(rng.randint(4, 25))
                    request = {"model": rec.request_model,
                               "messages": [{"role": "system", "content": SYSTEM_PROMPT},
                                            *history],
                               "tools": TOOLS, "temperature": 0.2}
                    rec.llm_calls += 1
                    body = self.llm(conv, request, root)
                    usage = body["usage"]
                    rec.input_tokens += usage["prompt_tokens"]
                    rec.output_tokens += usage["completion_tokens"]
                    rec.model = body["model"]
                    message = body["choices"][0]["message"]
                    if message.get("tool_calls"):
                        calls = [{"id": tc["id"], "type": "function",
                                  "function": {"name": tc["function"]["name"],
                                               "arguments": tc["function"]["arguments"]}}
                                 for tc in message["tool_calls"]]
                        history.append({"role": "assistant", "content": None, "tool_calls": calls})
                        for tc in calls:
                            self.clock.advance_ms(rng.randint(1, 6))
                            record = ToolRecord(tc["id"], tc["function"]["name"],
                                                json.loads(tc["function"]["arguments"]))
                            self.tool(conv, record, root)
                            rec.tool_calls.append(record)
                            content = (json.dumps(record.result) if record.status == "ok"
                                       else json.dumps({"error": record.error}))
                            history.append({"role": "tool", "tool_call_id": tc["id"],
                                            "content": content})
                    else:
                        rec.assistant_message = message["content"]
                        history.append({"role": "assistant", "content": message["content"]})
                        break
        except LLMCallFailed as exc:
            cause = exc.__cause__ or exc
            rec.status, rec.error = "error", f"{type(cause).__name__}: {cause}"
            self.clock.advance_ms(rng.randint(2, 9))
            root.record_exception(cause, timestamp=self.clock.now())
            root.set_status(Status(StatusCode.ERROR, rec.error))
        self.clock.advance_ms(rng.randint(2, 12))
        self.finish_root(conv, turn, root, rec)
        rec.ended_at = self.clock.now()
        self.end(root)
        return rec

    # ---- per convention
    def start_root(self, conv: Conversation, turn: Turn) -> trace.Span:
        raise NotImplementedError

    def finish_root(self, conv: Conversation, turn: Turn, root: trace.Span, rec: TurnRecord) -> None:
        raise NotImplementedError

    def llm(self, conv: Conversation, request: dict[str, Any], root: trace.Span) -> dict[str, Any]:
        raise NotImplementedError

    def tool(self, conv: Conversation, record: ToolRecord, root: trace.Span) -> None:
        raise NotImplementedError

    def run_tool(self, record: ToolRecord, span: trace.Span) -> None:
        """Call the store; on failure record the exception on ``span`` the way the SDK does."""
        try:
            record.result = self.world.store.call(record.name, record.arguments)
        except Exception as exc:  # noqa: BLE001 - the agent reports tool errors to the model
            record.status, record.error = "error", str(exc)
            span.record_exception(exc, timestamp=self.clock.now())
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


class OpenInferenceAgent(Agent):
    """AGENT and TOOL spans by hand (OpenInference keys), LLM spans by the real instrumentation."""

    convention = OI

    def start_root(self, conv: Conversation, turn: Turn) -> trace.Span:
        attrs: dict[str, Any] = {
            "openinference.span.kind": "AGENT",
            "agent.name": AGENT_NAME,
            "input.value": turn.user,
            "input.mime_type": "text/plain",
            "metadata": json.dumps({"channel": "web_chat", "app_version": APP_VERSION}),
        }
        if conv.ids_on_root:
            attrs["session.id"] = conv.session_id
            attrs["user.id"] = conv.user_id
        return self.start(AGENT_NAME, attrs)

    def finish_root(self, conv: Conversation, turn: Turn, root: trace.Span, rec: TurnRecord) -> None:
        if rec.assistant_message is not None:
            root.set_attribute("output.value", rec.assistant_message)
            root.set_attribute("output.mime_type", "text/plain")
            root.set_status(Status(StatusCode.OK))

    def llm(self, conv: Conversation, request: dict[str, Any], root: trace.Span) -> dict[str, Any]:
        with contextlib.ExitStack() as stack:
            if conv.session_id:
                stack.enter_context(using_session(conv.session_id))
            if conv.user_id:
                stack.enter_context(using_user(conv.user_id))
            try:
                response = self.world.client.chat.completions.create(**request)
            except openai.APIStatusError as exc:
                raise LLMCallFailed() from exc
        return json.loads(response.model_dump_json())

    def tool(self, conv: Conversation, record: ToolRecord, root: trace.Span) -> None:
        fn = TOOL_BY_NAME[record.name]
        span = self.start(record.name, {
            "openinference.span.kind": "TOOL",
            "tool.name": record.name,
            "tool.description": fn["description"],
            "tool.parameters": json.dumps(fn["parameters"]),  # the JSON schema, as @tracer.tool
            conv.tool_id_key: record.id,
            "input.value": json.dumps(record.arguments),
            "input.mime_type": "application/json",
        }, parent=root)
        self.run_tool(record, span)
        if record.status == "ok":
            span.set_attribute("output.value", json.dumps(record.result))
            span.set_attribute("output.mime_type", "application/json")
            span.set_status(Status(StatusCode.OK))
        self.end(span)


class GenAIAgent(Agent):
    """OTel GenAI semantic conventions, current form (messages as JSON attributes)."""

    convention = GENAI
    scope = AGENT_NAME + ".genai"

    def start_root(self, conv: Conversation, turn: Turn) -> trace.Span:
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": AGENT_NAME,
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": MODEL_FOR[self.convention],
        }
        if conv.session_id:
            attrs["gen_ai.conversation.id"] = conv.session_id
        if conv.user_id:
            attrs["user.id"] = conv.user_id
        attrs["gen_ai.input.messages"] = json.dumps(
            [_genai_parts({"role": "user", "content": turn.user})], ensure_ascii=False)
        return self.start(f"invoke_agent {AGENT_NAME}", attrs)

    def finish_root(self, conv: Conversation, turn: Turn, root: trace.Span, rec: TurnRecord) -> None:
        if rec.assistant_message is not None:
            out = _genai_parts({"role": "assistant", "content": rec.assistant_message})
            out["finish_reason"] = "stop"
            root.set_attribute("gen_ai.output.messages", json.dumps([out], ensure_ascii=False))

    def llm(self, conv: Conversation, request: dict[str, Any], root: trace.Span) -> dict[str, Any]:
        model = request["model"]
        messages = request["messages"]
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": model,
            "gen_ai.request.temperature": request["temperature"],
            "server.address": "api.openai.com",
            "server.port": 443,
        }
        if conv.system_in_messages:
            attrs["gen_ai.system"] = "openai"  # deprecated alias some libraries still add
        if conv.session_id:
            attrs["gen_ai.conversation.id"] = conv.session_id
        span = self.start(f"chat {model}", attrs, kind=SpanKind.CLIENT, parent=root)
        if conv.system_in_messages:
            span.set_attribute("gen_ai.input.messages", json.dumps(
                [_genai_parts(m) for m in messages], ensure_ascii=False))
        else:
            span.set_attribute("gen_ai.system_instructions", json.dumps(
                [{"type": "text", "content": messages[0]["content"]}], ensure_ascii=False))
            span.set_attribute("gen_ai.input.messages", json.dumps(
                [_genai_parts(m) for m in messages[1:]], ensure_ascii=False))
        status, body = self.world.model.complete(request)
        assert status == 200
        choice = body["choices"][0]
        out = _genai_parts(choice["message"])
        out["finish_reason"] = "tool_call" if choice["finish_reason"] == "tool_calls" else "stop"
        span.set_attributes({
            "gen_ai.response.id": body["id"],
            "gen_ai.response.model": body["model"],
            "gen_ai.response.finish_reasons": [choice["finish_reason"]],
            "gen_ai.usage.input_tokens": body["usage"]["prompt_tokens"],
            "gen_ai.usage.output_tokens": body["usage"]["completion_tokens"],
            "gen_ai.output.messages": json.dumps([out], ensure_ascii=False),
        })
        self.end(span)
        return body

    def tool(self, conv: Conversation, record: ToolRecord, root: trace.Span) -> None:
        span = self.start(f"execute_tool {record.name}", {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": record.name,
            "gen_ai.tool.type": "function",
            "gen_ai.tool.description": TOOL_BY_NAME[record.name]["description"],
            "gen_ai.tool.call.id": record.id,
            "gen_ai.tool.call.arguments": json.dumps(record.arguments),
        }, parent=root)
        self.run_tool(record, span)
        if record.status == "ok":
            span.set_attribute("gen_ai.tool.call.result", json.dumps(record.result))
        self.end(span)


class GenAIEventsAgent(Agent):
    """OTel GenAI, the deprecated form (semconv <= 1.36): messages as span events."""

    convention = GENAI_EVENTS
    scope = AGENT_NAME + ".genai"

    def start_root(self, conv: Conversation, turn: Turn) -> trace.Span:
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": AGENT_NAME,
            "gen_ai.system": "openai",
        }
        if conv.session_id:
            attrs["session.id"] = conv.session_id
        if conv.user_id:
            attrs["user.id"] = conv.user_id
        return self.start(f"invoke_agent {AGENT_NAME}", attrs)

    def finish_root(self, conv: Conversation, turn: Turn, root: trace.Span, rec: TurnRecord) -> None:
        pass

    def llm(self, conv: Conversation, request: dict[str, Any], root: trace.Span) -> dict[str, Any]:
        model = request["model"]
        span = self.start(f"chat {model}", {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "openai",
            "gen_ai.request.model": model,
            "gen_ai.request.temperature": request["temperature"],
            "server.address": "api.openai.com",
        }, kind=SpanKind.CLIENT, parent=root)
        at = self.clock.now()
        for m in request["messages"]:
            attrs: dict[str, Any] = {"gen_ai.system": "openai"}
            if m["role"] == "tool":
                attrs["id"] = m["tool_call_id"]
            if m.get("content") is not None:
                attrs["content"] = m["content"]
            if m.get("tool_calls"):
                attrs["tool_calls"] = json.dumps(m["tool_calls"])
            span.add_event(f"gen_ai.{m['role']}.message", attributes=attrs, timestamp=at)
        status, body = self.world.model.complete(request)
        assert status == 200
        choice = body["choices"][0]
        message = {k: v for k, v in choice["message"].items()
                   if k in ("role", "content", "tool_calls") and v is not None}
        span.add_event("gen_ai.choice", attributes={
            "gen_ai.system": "openai",
            "index": choice["index"],
            "finish_reason": choice["finish_reason"],
            "message": json.dumps(message, ensure_ascii=False),
        }, timestamp=self.clock.now())
        span.set_attributes({
            "gen_ai.response.id": body["id"],
            "gen_ai.response.model": body["model"],
            "gen_ai.response.finish_reasons": [choice["finish_reason"]],
            "gen_ai.usage.input_tokens": body["usage"]["prompt_tokens"],
            "gen_ai.usage.output_tokens": body["usage"]["completion_tokens"],
        })
        self.end(span)
        return body

    def tool(self, conv: Conversation, record: ToolRecord, root: trace.Span) -> None:
        # that era had no arguments/result attributes: they are only in the chat events
        span = self.start(f"execute_tool {record.name}", {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.system": "openai",
            "gen_ai.tool.name": record.name,
            "gen_ai.tool.call.id": record.id,
        }, parent=root)
        self.run_tool(record, span)
        self.end(span)


def _flatten_messages(prefix: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """traceAI / OpenInference-style flattened message attributes."""
    out: dict[str, Any] = {}
    for i, m in enumerate(messages):
        base = f"{prefix}.{i}.message."
        out[base + "role"] = m["role"]
        if m.get("content") is not None:
            out[base + "content"] = m["content"]
        if m.get("tool_call_id"):
            out[base + "tool_call_id"] = m["tool_call_id"]
        for j, tc in enumerate(m.get("tool_calls") or []):
            tb = f"{base}tool_calls.{j}.tool_call."
            out[tb + "id"] = tc["id"]
            out[tb + "function.name"] = tc["function"]["name"]
            out[tb + "function.arguments"] = tc["function"]["arguments"]
    return out


class TraceAIAgent(Agent):
    """Future AGI traceAI form: fi.span.kind/gen_ai.span.kind, flattened gen_ai.*.messages."""

    convention = TRACEAI
    scope = AGENT_NAME + ".traceai"

    def _ids(self, conv: Conversation) -> dict[str, Any]:
        ids: dict[str, Any] = {}
        if conv.session_id:
            ids["session.id"] = conv.session_id
        if conv.user_id:
            ids["user.id"] = conv.user_id
        return ids

    def start_root(self, conv: Conversation, turn: Turn) -> trace.Span:
        return self.start(AGENT_NAME, {
            "fi.span.kind": "AGENT", "gen_ai.span.kind": "AGENT",
            "gen_ai.agent.name": AGENT_NAME,
            "input.value": turn.user, "input.mime_type": "text/plain",
            **self._ids(conv),
        })

    def finish_root(self, conv: Conversation, turn: Turn, root: trace.Span, rec: TurnRecord) -> None:
        if rec.assistant_message is not None:
            root.set_attribute("output.value", rec.assistant_message)
            root.set_attribute("output.mime_type", "text/plain")
            root.set_status(Status(StatusCode.OK))

    def llm(self, conv: Conversation, request: dict[str, Any], root: trace.Span) -> dict[str, Any]:
        span = self.start("ChatCompletion", {
            "fi.span.kind": "LLM", "gen_ai.span.kind": "LLM",
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": request["model"],
            "gen_ai.request.parameters": json.dumps({"temperature": request["temperature"]}),
            "input.value": json.dumps({"messages": request["messages"]}, ensure_ascii=False),
            "input.mime_type": "application/json",
            **_flatten_messages("gen_ai.input.messages", request["messages"]),
            **self._ids(conv),
        }, parent=root)
        status, body = self.world.model.complete(request)
        assert status == 200
        choice = body["choices"][0]
        message = {k: v for k, v in choice["message"].items()
                   if k in ("role", "content", "tool_calls") and v is not None}
        usage = body["usage"]
        span.set_attributes({
            "gen_ai.response.model": body["model"],
            "gen_ai.response.finish_reasons": [choice["finish_reason"]],
            **_flatten_messages("gen_ai.output.messages", [message]),
            "gen_ai.usage.input_tokens": usage["prompt_tokens"],
            "gen_ai.usage.output_tokens": usage["completion_tokens"],
            "gen_ai.usage.total_tokens": usage["total_tokens"],
        })
        if message.get("content"):
            span.set_attribute("output.value", message["content"])
            span.set_attribute("output.mime_type", "text/plain")
        span.set_status(Status(StatusCode.OK))
        self.end(span)
        return body

    def tool(self, conv: Conversation, record: ToolRecord, root: trace.Span) -> None:
        arguments = json.dumps(record.arguments)
        span = self.start(record.name, {
            "fi.span.kind": "TOOL", "gen_ai.span.kind": "TOOL",
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": record.name,
            "gen_ai.tool.call.id": record.id,
            "gen_ai.tool.call.arguments": arguments,
            "input.value": arguments, "input.mime_type": "application/json",
            **self._ids(conv),
        }, parent=root)
        self.run_tool(record, span)
        if record.status == "ok":
            result = json.dumps(record.result)
            span.set_attribute("gen_ai.tool.call.result", result)
            span.set_attribute("output.value", result)
            span.set_attribute("output.mime_type", "application/json")
            span.set_status(Status(StatusCode.OK))
        self.end(span)


# --------------------------------------------------------------------------- the world


class World:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.rng = random.Random(SEED + 1)  # latencies, completion/tool-call ids
        self.exporter = InMemorySpanExporter()
        resource = Resource({
            "service.name": PROJECT,
            "service.version": APP_VERSION,
            "deployment.environment.name": "production",
            "telemetry.sdk.language": "python",
            "telemetry.sdk.name": "opentelemetry",
            "telemetry.sdk.version": version("opentelemetry-sdk"),
        })
        limits = SpanLimits(  # explicit: no OTEL_* env lookups; roomy enough for long chats
            max_attributes=4096, max_events=128, max_links=128, max_span_attributes=4096,
            max_event_attributes=128, max_link_attributes=128,
            max_attribute_length=SpanLimits.UNSET, max_span_attribute_length=SpanLimits.UNSET,
        )
        self.provider = TracerProvider(resource=resource, sampler=ALWAYS_ON,
                                       id_generator=SeededIdGenerator(SEED), span_limits=limits)
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.store = Store(self.clock, self.rng)
        self.model = StubModel(self.clock, self.rng)
        self.instrumentor = OpenAIInstrumentor()
        self.instrumentor.instrument(tracer_provider=self.provider, config=TraceConfig(
            hide_llm_invocation_parameters=False, hide_llm_tools=False, hide_inputs=False,
            hide_outputs=False, hide_input_messages=False, hide_output_messages=False,
            hide_input_images=False, hide_input_text=False, hide_output_text=False,
            hide_embedding_vectors=False, hide_embeddings_vectors=False,
            hide_embeddings_text=False, hide_prompts=False, hide_choices=False,
            hide_retrieval_documents=False, enable_genai_semconv=False,
            base64_image_max_length=32_000,
        ))
        self.client = openai.OpenAI(
            base_url="http://stub.invalid/v1", api_key="x", max_retries=0,
            http_client=httpx.Client(transport=httpx.MockTransport(self.model.http_handler)),
        )
        self.agents: dict[str, Agent] = {
            OI: OpenInferenceAgent(self), GENAI: GenAIAgent(self),
            GENAI_EVENTS: GenAIEventsAgent(self), TRACEAI: TraceAIAgent(self),
        }

    def close(self) -> None:
        self.instrumentor.uninstrument()
        self.provider.shutdown()


def make_ids(convs: list[Conversation]) -> None:
    """Session ids in the shapes the different stacks use, from their own seeded stream."""
    rng = random.Random(SEED + 2)
    for c in convs:
        if not c.session:
            continue
        if c.convention == OI:
            c.session_id = "sess_" + format(rng.getrandbits(48), "012x")
        elif c.convention == GENAI:
            c.session_id = "conv_" + "".join(
                rng.choice(string.ascii_lowercase + string.digits) for _ in range(24))
        else:
            c.session_id = str(random_uuid(rng))


def random_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


_PATH_RE = re.compile(r'File "(?:[^"]*/site-packages/)')


def scrub_paths(request: dict[str, Any]) -> dict[str, Any]:
    """Make exception stack traces independent of where the repo and the venv live."""

    def fix(text: str) -> str:
        text = _PATH_RE.sub('File "/app/.venv/lib/python3/site-packages/', text)
        return text.replace(str(ROOT), "/app")

    for rs in request.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for event in span.get("events", []):
                    for kv in event.get("attributes", []):
                        value = kv.get("value", {})
                        if kv["key"] == "exception.stacktrace" and "stringValue" in value:
                            value["stringValue"] = fix(value["stringValue"])
    return request


# --------------------------------------------------------------------------- main


def run() -> tuple[list[Conversation], dict[str, list[TurnRecord]], list[Any]]:
    convs = conversations()
    make_ids(convs)
    world = World()
    schedule = sorted(
        ((turn.at, ci, ti) for ci, c in enumerate(convs) for ti, turn in enumerate(c.turns)))
    histories: dict[str, list[dict[str, Any]]] = {c.key: [] for c in convs}
    records: dict[str, list[TurnRecord]] = {c.key: [] for c in convs}
    with patched_sdk_clock(world.clock):
        for _, ci, ti in schedule:
            conv = convs[ci]
            agent = world.agents[conv.convention]
            rec = agent.run_turn(conv, conv.turns[ti], histories[conv.key])
            if records[conv.key]:
                assert rec.started_at > records[conv.key][-1].ended_at, conv.key
            records[conv.key].append(rec)
    spans = list(world.exporter.get_finished_spans())
    world.close()
    return convs, records, spans


def write_outputs(records: dict[str, list[TurnRecord]], spans: list[Any]) -> dict[str, Any]:
    otlp_dir = OUT / "otlp"
    otlp_dir.mkdir(parents=True, exist_ok=True)
    for old in otlp_dir.iterdir():
        if old.is_file() and old.name.endswith((".jsonl", ".jsonl.gz")):
            old.unlink()

    # spans in the order they ended (what a BatchSpanProcessor exports), cut by the UTC day
    # on which their trace started
    trace_day: dict[int, str] = {}
    for rec_list in records.values():
        for rec in rec_list:
            trace_day[int(rec.trace_id, 16)] = iso(rec.started_at)[:10]
    spans.sort(key=lambda s: s.end_time)  # stable
    days = sorted(set(trace_day.values()))
    by_day = {d: [s for s in spans if trace_day[s.context.trace_id] == d] for d in days}
    assert days == ["2026-11-20", "2026-11-21", "2026-11-22"], days

    files: list[dict[str, Any]] = []

    def emit(name: str, requests: list[dict[str, Any]], form: str) -> None:
        path = write_otlp_file(otlp_dir / name, [request_to_line(r, form) for r in requests])
        files.append({"file": f"otlp/{name}", "form": form, "lines": len(requests),
                      "spans": sum(len(ss["spans"]) for r in requests
                                   for rs in r["resourceSpans"] for ss in rs["scopeSpans"]),
                      "bytes": path.stat().st_size})

    def requests_for(day_spans: list[Any]) -> list[dict[str, Any]]:
        return [scrub_paths(r) for r in spans_to_requests(day_spans, batch=BATCH)]

    day1, day2, day3 = (requests_for(by_day[d]) for d in days)
    emit("day1.jsonl", day1, "spec")
    half = len(day2) // 2
    emit("day2.jsonl", day2[:half], "spec")
    emit("day2-proto.jsonl", day2[half:], "proto")
    emit("day3.jsonl.gz", day3, "spec")
    return {"files": files}


def turn_json(rec: TurnRecord, index: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if index is not None:
        out["turn_index"] = index
    out.update({
        "trace_id": rec.trace_id,
        "started_at": iso(rec.started_at),
        "ended_at": iso(rec.ended_at),
        "user_message": rec.user_message,
        "assistant_message": rec.assistant_message,
        "tool_calls": [t.name for t in rec.tool_calls],
        "tool_call_details": [
            {"id": t.id, "name": t.name, "arguments": t.arguments, "status": t.status,
             "result": t.result, "error": t.error}
            for t in rec.tool_calls
        ],
        "llm_calls": rec.llm_calls,
        "input_tokens": rec.input_tokens,
        "output_tokens": rec.output_tokens,
        "request_model": rec.request_model,
        "model": rec.model,
        "status": rec.status,
        "error": rec.error,
    })
    return out


def build_expected(convs: list[Conversation], records: dict[str, list[TurnRecord]],
                   outputs: dict[str, Any], span_count: int) -> dict[str, Any]:
    sessions: dict[str, Any] = {}
    lone: list[dict[str, Any]] = []
    for c in sorted(convs, key=lambda c: records[c.key][0].started_at):
        recs = records[c.key]
        if c.session:
            tools = [t for r in recs for t in r.tool_calls]
            sessions[c.session_id] = {
                "key": c.key,
                "user_id": c.user_id,
                "convention": c.convention,
                "note": c.note,
                "session_id_on_root": c.convention in (GENAI, GENAI_EVENTS, TRACEAI)
                or c.ids_on_root,
                "turn_count": len(recs),
                "started_at": iso(recs[0].started_at),
                "ended_at": iso(recs[-1].ended_at),
                "input_tokens": sum(r.input_tokens for r in recs),
                "output_tokens": sum(r.output_tokens for r in recs),
                "tool_call_count": len(tools),
                "tool_error_count": sum(t.status == "error" for t in tools),
                "turn_error_count": sum(r.status == "error" for r in recs),
                "first_user_message": recs[0].user_message,
                "last_assistant_message": next(
                    (r.assistant_message for r in reversed(recs) if r.assistant_message), None),
                "turns": [turn_json(r, i) for i, r in enumerate(recs)],
            }
        else:
            (rec,) = recs
            lone.append({"key": c.key, "user_id": c.user_id, "convention": c.convention,
                         "note": c.note, **turn_json(rec, None)})
    all_turns = [r for recs in records.values() for r in recs]
    return {
        "project": PROJECT,
        "generator": "scripts/make_sample.py",
        "summary": {
            "sessions": len(sessions),
            "session_turns": sum(s["turn_count"] for s in sessions.values()),
            "lone_traces": len(lone),
            "traces": len(all_turns),
            "spans": span_count,
            "users": sorted({c.user_id for c in convs if c.user_id}),
            "days": ["2026-11-20", "2026-11-21", "2026-11-22"],
            "conventions": {conv: sum(1 for c in convs if c.session and c.convention == conv)
                            for conv in (OI, GENAI, GENAI_EVENTS, TRACEAI)},
            "tool_calls": sum(len(r.tool_calls) for r in all_turns),
            "failed_tool_calls": sum(t.status == "error" for r in all_turns for t in r.tool_calls),
            "failed_turns": sum(r.status == "error" for r in all_turns),
        },
        "files": outputs["files"],
        "sessions": sessions,
        "lone_traces": lone,
    }


# --------------------------------------------------------------------------- checks


def verify(expected: dict[str, Any]) -> None:
    """Load the files back and check them against expected.json (raises AssertionError)."""
    spans = []
    per_file: dict[str, set[str]] = {}
    for f in expected["files"]:
        path = OUT / f["file"]
        requests = read_otlp_file(path)
        assert len(requests) == f["lines"], f
        if f["form"] == "proto":
            first = requests[0]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
            assert first["kind"].startswith("SPAN_KIND_") and not re.fullmatch(
                "[0-9a-f]{32}", first["traceId"]), first
        else:
            first = requests[0]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
            assert isinstance(first["kind"], int) and re.fullmatch("[0-9a-f]{32}", first["traceId"])
            assert isinstance(first["startTimeUnixNano"], str)
        file_spans = list(iter_spans(requests))
        assert len(file_spans) == f["spans"], f
        per_file[f["file"]] = {s["trace_id"] for s in file_spans}
        spans.extend(file_spans)
    assert len(spans) == expected["summary"]["spans"]
    assert len({(s["trace_id"], s["span_id"]) for s in spans}) == len(spans), "duplicate spans"
    by_trace: dict[str, list[dict[str, Any]]] = {}
    for s in spans:
        by_trace.setdefault(s["trace_id"], []).append(s)
        assert s["resource"]["service.name"] == PROJECT
        assert s["end_ns"] >= s["start_ns"]
    turns = [t for sess in expected["sessions"].values() for t in sess["turns"]]
    turns += expected["lone_traces"]
    assert set(by_trace) == {t["trace_id"] for t in turns}, "traces differ from expected.json"
    for t in turns:
        roots = [s for s in by_trace[t["trace_id"]] if s["parent_span_id"] is None]
        assert len(roots) == 1, t["trace_id"]
        ids = {s["span_id"] for s in by_trace[t["trace_id"]]}
        assert all(s["parent_span_id"] in ids for s in by_trace[t["trace_id"]]
                   if s["parent_span_id"]), "orphan span"
    # the session id appears on some span of every session trace, and on none of the lone ones
    session_keys = ("session.id", "gen_ai.conversation.id")
    for sid, sess in expected["sessions"].items():
        for t in sess["turns"]:
            found = {s["attributes"].get(k) for s in by_trace[t["trace_id"]] for k in session_keys}
            assert sid in found, (sid, t["trace_id"])
    for t in expected["lone_traces"]:
        assert not any(k in s["attributes"] for s in by_trace[t["trace_id"]]
                       for k in session_keys), t["trace_id"]
    # a trace split across files, and a trace split across lines
    split_files = [tid for tid in by_trace if sum(tid in v for v in per_file.values()) > 1]
    assert split_files, "no trace is split across files"
    expected["summary"]["traces_split_across_files"] = sorted(split_files)
    # failed tool call and failed turn visible in the spans
    errors = [s for s in spans if s["status_code"] == 2]
    assert any(e["events"] and e["events"][0]["name"] == "exception" for e in errors)
    assert {f["form"] for f in expected["files"]} == {"spec", "proto"}
    assert any(f["file"].endswith(".gz") for f in expected["files"])


def write_readme(expected: dict[str, Any]) -> None:
    s = expected["summary"]
    lines = [
        "# Sample traces: a customer-support agent",
        "",
        "Generated by `scripts/make_sample.py` (`uv run python scripts/make_sample.py` from the "
        "project root); do not edit by hand. The script is deterministic: running it "
        "again gives the same bytes.",
        "",
        "Northwind Outfitters, an online store, runs a support agent (`support_agent`, tools "
        "`lookup_order`, `get_refund_policy`, `issue_refund`, `search_products`, "
        "`transfer_to_human`). Every user turn is one trace: a root agent span, LLM call spans, "
        "tool spans. The full message history (system prompt, earlier turns, tool calls and "
        "results) goes into every LLM call. All spans have the resource "
        f"`service.name={PROJECT}` (one project).",
        "",
        f"- {s['sessions']} sessions ({s['session_turns']} turns) and {s['lone_traces']} lone "
        f"traces without any session id: {s['traces']} traces, {s['spans']} spans, "
        f"{s['tool_calls']} tool calls.",
        f"- Users ({len(s['users'])}): `maria_garcia` (formal), `jay_kim` (lowercase, typos, "
        "slang), `priya_shah` (emoji), `tom_becker` (terse), `lena_wolff` (polite, non-native "
        "English).",
        "- Days (UTC): 2026-11-20, 2026-11-21, 2026-11-22. Session S05 starts on day 1 and goes "
        "on the next morning.",
        "",
        "## Files (`otlp/`)",
        "",
        "OTLP/JSON lines as the Collector's file exporter writes them: one "
        "`ExportTraceServiceRequest` a line, about 20 spans a line, spans in the order they "
        "ended (children before their parent), so traces are split across lines; one trace is "
        "split across `day2.jsonl` and `day2-proto.jsonl`.",
        "",
        "| file | form | lines | spans |",
        "| --- | --- | --- | --- |",
    ]
    for f in expected["files"]:
        form = ("spec (hex ids, integer enums, int64 as strings)" if f["form"] == "spec"
                else "proto-JSON (`MessageToJson`: base64 ids, enum names, \\u escapes)")
        lines.append(f"| `{f['file']}` | {form} | {f['lines']} | {f['spans']} |")
    lines += [
        "",
        "## Conventions",
        "",
        "- `openinference`: the real `openinference-instrumentation-openai` made the LLM spans "
        "(`ChatCompletion`, `llm.input_messages.*`, `llm.output_messages.*`, "
        "`llm.token_count.*`, `llm.tools.*`); AGENT and TOOL spans by the agent code. "
        "`session.id`/`user.id` are on the LLM spans (`using_session`/`using_user`); only "
        "sessions S01, S03, S05 also have them on the AGENT root. TOOL spans carry the call id "
        "in `tool.id` (S07: in `tool_call.id`), the arguments in `input.value`; "
        "`tool.parameters` is the tool's JSON schema (as OpenInference's `@tracer.tool` does).",
        "- `genai`: OTel GenAI semantic conventions, current form: `invoke_agent support_agent` "
        "root, `chat gpt-4.1-mini` spans with `gen_ai.input.messages`/`gen_ai.output.messages` "
        "(JSON, parts), `execute_tool <name>` spans with `gen_ai.tool.call.*`; session id in "
        "`gen_ai.conversation.id`, user in `user.id` on the root. S08 has the system prompt in "
        "`gen_ai.system_instructions`; S09 has it as a `system` message inside "
        "`gen_ai.input.messages`.",
        "- `genai_events`: the deprecated GenAI form: messages as span events "
        "(`gen_ai.system.message`, `gen_ai.user.message`, `gen_ai.assistant.message`, "
        "`gen_ai.tool.message`, `gen_ai.choice`; attributes `content`, `tool_calls`, `id`, "
        "`index`, `finish_reason`, `message`), `gen_ai.system`; `session.id`/`user.id` only on "
        "the root; `execute_tool` spans without arguments/result.",
        "- `traceai`: Future AGI traceAI: `fi.span.kind` and `gen_ai.span.kind` "
        "(AGENT/LLM/TOOL), flattened `gen_ai.input.messages.{i}.message.*` / "
        "`gen_ai.output.messages.{i}.message.*`, `gen_ai.usage.*`, `session.id`/`user.id` on "
        "every span.",
        "",
        "## Sessions",
        "",
        "| key | session id | user | convention | turns | what happens |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for sid, sess in expected["sessions"].items():
        lines.append(f"| {sess['key']} | `{sid}` | `{sess['user_id']}` | {sess['convention']} | "
                     f"{sess['turn_count']} | {sess['note']} |")
    lines += ["", "Lone traces (no session id):", "",
              "| key | trace id | user | convention | what happens |", "| --- | --- | --- | --- | --- |"]
    for t in expected["lone_traces"]:
        user = f"`{t['user_id']}`" if t["user_id"] else "-"
        lines.append(f"| {t['key']} | `{t['trace_id']}` | {user} | {t['convention']} | "
                     f"{t['note']} |")
    lines += [
        "",
        "Edge cases on purpose: a failed tool call (S04 turn 0: `issue_refund` raises "
        "`TimeoutError: payment gateway timeout`, TOOL span status ERROR with an `exception` "
        "event; the agent recovers and the turn succeeds), a failed turn (S10 turn 0: the model "
        "API answers 503, the LLM and AGENT spans have status ERROR, no assistant message), "
        "two tool calls in one LLM answer (S03 turn 0), two tools in one turn over two LLM calls "
        "(S04 turn 0, S09 turn 0), transfers to a human (S06, S12).",
        "",
        "## expected.json",
        "",
        "What the rebuilt `turns`/`sessions` must show: per session id its user, convention and "
        "turns (trace id, user message, final assistant message, tool call names in order and "
        "their details, LLM calls, token sums, model, status); the same per-turn fields for the "
        "lone traces.",
        "",
    ]
    (OUT / "README.md").write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    convs, records, spans = run()
    outputs = write_outputs(records, spans)
    expected = build_expected(convs, records, outputs, len(spans))
    verify(expected)
    (OUT / "expected.json").write_text(
        json.dumps(expected, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    write_readme(expected)
    s = expected["summary"]
    print(f"wrote {OUT.relative_to(ROOT)}: {s['sessions']} sessions, {s['session_turns']} turns, "
          f"{s['lone_traces']} lone traces, {s['spans']} spans in {len(outputs['files'])} files")


if __name__ == "__main__":
    main()
