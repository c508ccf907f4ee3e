"""A generated production set of a support shop whose truth is known (test support).

``write_shop_traces(out_dir, n_sessions=120, seed=7)`` writes the production traces of "Maple &
Pine", an online home-goods shop whose support agent uses seven tools, as OTLP/JSON lines files
(``out_dir/otlp/shop-<day>.jsonl``, OpenInference convention, project ``shop``), and a manifest
(``out_dir/manifest.json``, also returned) that says what every session is: its turns (the user's
message, production's answer, the tool calls with their arguments, results and statuses), which
turns changed state, and the rewording of every answer and of every free-text argument.
Deterministic: the same seed gives the same bytes.

Ingest the trace files (``manifest["files"]``, relative to ``out_dir``) or the ``otlp/`` folder,
not ``out_dir`` itself (``manifest.json`` is not OTLP).

The shop:

- read tools: ``lookup_order {order_id}``, ``search_products {query}``, ``get_refund_policy {}``;
- state-changing tools (:data:`WRITE_TOOLS`), with free-text arguments (:data:`FREE_TEXT_ARGS`):
  ``issue_refund {order_id, amount, reason}``, ``cancel_order {order_id, reason}``,
  ``update_address {order_id, address, note}``, ``transfer_to_human {reason}``. ``address`` has
  spaces and commas ("12 Rue de la Paix, 75002 Paris") but is a KEY argument: the order must go
  to exactly that address (:data:`KEY_OVERRIDES`).

A session (1-4 turns) follows one of the :data:`ARCHETYPES` (an order's status, product advice,
the return policy, a refund offered then issued, a refund at once, a cancellation, an address
change, a hand-over to a person, two state changes in different turns), sometimes with a
closing "thanks" turn. About one write call in ten fails in production (``issue_refund``:
payment gateway timeout; ``cancel_order``: order service unavailable): the TOOL span has status
error and an ``exception`` event, and the agent retries the same call in the same turn, which
succeeds.

Every answer is written from a template of :data:`ANSWERS` that carries the facts of the tool
results (order ids, amounts, dates, tracking numbers, references); each template has three
phrasings of the same facts, and production uses one of them. Its rewording is the next
phrasing (same facts, other words). Free-text arguments are written the same way
(:data:`FREE_TEXTS`). The manifest maps every production answer text to its rewording
(``answer_rewordings``) and every free-text argument value to its rewording
(``argument_rewordings``).
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from otlp_helpers import make_event, make_line, make_span, write_otlp_file

PROJECT = "shop"
READ_TOOLS = ("lookup_order", "search_products", "get_refund_policy")
WRITE_TOOLS = ("issue_refund", "cancel_order", "update_address", "transfer_to_human")
# the arguments of the state-changing tools that are free text (a sentence: any wording will do)
FREE_TEXT_ARGS: dict[str, tuple[str, ...]] = {
    "issue_refund": ("reason",), "cancel_order": ("reason",), "update_address": ("note",),
    "transfer_to_human": ("reason",)}
# a per-tool override for a rule that would take a long string with spaces for free text
KEY_OVERRIDES = {"update_address": {"address": "key"}}

MODEL = "gpt-4.1-mini-2025-04-14"
BASE_TIME = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)
REFUND_DAYS = "5-7 business days"
RETURN_WINDOW_DAYS = 30
SYSTEM_PROMPT = (
    "You are Robin, the support assistant of Maple & Pine, an online shop for home goods.\n"
    "- Be friendly, concise and exact; quote order numbers, amounts, dates and references.\n"
    "- Look an order up before you change it. Refunds go to the original payment method.\n"
    "- Cancel only orders that have not shipped. Change addresses only before shipping.\n"
    "- Hand over to a person (transfer_to_human) when you cannot solve the problem yourself.")

TOOL_SCHEMAS: dict[str, tuple[str, dict[str, str], tuple[str, ...]]] = {
    "lookup_order": ("Look up an order by its id (e.g. A3104): status, items, total, shipping.",
                     {"order_id": "string"}, ("order_id",)),
    "search_products": ("Search the catalog; returns matching products with price and stock.",
                        {"query": "string"}, ("query",)),
    "get_refund_policy": ("Get the current return and refund policy.", {}, ()),
    "issue_refund": ("Refund an amount in EUR for an order, to the original payment method.",
                     {"order_id": "string", "amount": "number", "reason": "string"},
                     ("order_id", "amount", "reason")),
    "cancel_order": ("Cancel an order that has not shipped yet; refunds it in full.",
                     {"order_id": "string", "reason": "string"}, ("order_id", "reason")),
    "update_address": ("Change the delivery address of an order that has not shipped yet.",
                       {"order_id": "string", "address": "string", "note": "string"},
                       ("order_id", "address", "note")),
    "transfer_to_human": ("Hand the conversation over to a person; creates a support ticket.",
                          {"reason": "string"}, ("reason",)),
}

# --------------------------------------------------------------------------- the shop's catalog
# sku, name, price (EUR)
PRODUCTS: dict[str, tuple[str, float]] = {
    "LIN-DUV-W": ("Linen Duvet Cover", 89.0),
    "LIN-DUV-S": ("Stonewashed Linen Duvet Set", 129.0),
    "OAK-BST": ("Oak Bedside Table", 149.0),
    "WAL-BST": ("Walnut Bedside Table", 179.0),
    "CER-POS": ("Ceramic Pour-Over Set", 42.5),
    "GLS-POS": ("Glass Pour-Over Kettle", 36.9),
    "WOL-THR": ("Wool Throw Blanket", 74.0),
    "CSH-THR": ("Cashmere Blend Throw", 119.0),
    "BRS-LMP": ("Brass Desk Lamp", 96.0),
    "PAP-LMP": ("Paper Pendant Lamp", 58.0),
    "CTN-TWL": ("Organic Cotton Towel Set", 48.0),
    "WAF-TWL": ("Waffle Bath Towel Set", 39.5),
    "STN-MUG": ("Stoneware Mug Set", 32.0),
    "ENM-MUG": ("Enamel Camping Mugs", 27.0),
    "JUT-RUG": ("Jute Area Rug", 139.0),
    "WOL-RUG": ("Hand-Tufted Wool Rug", 249.0),
}
# what a user asks for, the query the agent searches, the two products it finds
PRODUCT_QUERIES: tuple[tuple[str, str, tuple[str, str]], ...] = (
    ("a linen duvet cover for a double bed", "linen duvet cover double", ("LIN-DUV-W", "LIN-DUV-S")),
    ("a small bedside table", "bedside table", ("OAK-BST", "WAL-BST")),
    ("something to brew pour-over coffee", "pour-over coffee", ("CER-POS", "GLS-POS")),
    ("a warm throw for the sofa", "throw blanket", ("WOL-THR", "CSH-THR")),
    ("a lamp for my desk or above the table", "lamp", ("BRS-LMP", "PAP-LMP")),
    ("nice bath towels", "bath towels", ("CTN-TWL", "WAF-TWL")),
    ("mugs that survive a camping trip", "mugs", ("ENM-MUG", "STN-MUG")),
    ("a rug for the living room", "living room rug", ("JUT-RUG", "WOL-RUG")),
)
CARRIERS = {"UPS": "1Z9MP", "DHL": "JD0146", "DPD": "0150", "La Poste": "6A"}
ADDRESSES = (
    "12 Rue de la Paix, 75002 Paris",
    "48 Kastanienallee, 10435 Berlin",
    "7 Calle de Serrano, 28001 Madrid",
    "221 King Street West, Toronto ON M5H 1K4",
    "3 Rosemary Lane, Bristol BS1 4QA",
    "90 Via Roma, 10121 Torino",
    "15 Prinsengracht, 1015 DV Amsterdam",
    "8 Rue du Marché, 1204 Genève",
    "27 Quai Saint-Antoine, 69002 Lyon",
    "5 Nørrebrogade, 2200 København N",
)
USERS = ("amelie_roux", "ben_okafor", "chen_wei", "dana_levi", "emma_schulz", "farid_haddad",
         "greta_lind", "hugo_martin", "ines_costa", "jonas_berg", "kim_nguyen", "lucia_ferri",
         "marc_dubois", "nora_aziz", "oscar_reyes", "paula_novak")
QUEUES = {"missing_parcel": "delivery", "invoice": "billing"}

# --------------------------------------------------------------------------- answers
# Each kind: three phrasings of the same facts. Production uses one; its rewording is the next.
ANSWERS: dict[str, tuple[str, str, str]] = {
    "status_shipped": (
        "Order {oid} ({item}) shipped on {shipped} with {carrier}, tracking number {tracking}. "
        "It should arrive on {eta}.",
        "Good news: your {item} from order {oid} left our warehouse on {shipped}. {carrier} is "
        "delivering it under tracking number {tracking}, and the expected delivery date is {eta}.",
        "I've looked up {oid}: it is on its way. {carrier} collected the {item} on {shipped}; you "
        "can follow the parcel with {tracking}, and it is due to reach you on {eta}.",
    ),
    "status_processing": (
        "Order {oid} ({item}) is being prepared and will ship on {ships_on}. Delivery is expected "
        "on {eta}, and you'll get a tracking link by email.",
        "Your {item} (order {oid}) hasn't left us yet: it is packed for dispatch on {ships_on} and "
        "should be with you by {eta}. A tracking link will follow by email.",
        "We're still getting order {oid} ready. The {item} goes out on {ships_on}, with an "
        "estimated arrival of {eta}; we'll email you the tracking details once it's dispatched.",
    ),
    "status_delivered": (
        "Order {oid} ({item}) was delivered by {carrier} on {delivered}. If you can't find it, "
        "let me know and I'll help.",
        "According to {carrier}, the {item} from order {oid} was handed over on {delivered}. Tell "
        "me if it isn't with you and we'll sort it out.",
        "I see that {carrier} completed the delivery of order {oid}, your {item}, on {delivered}. "
        "Should the parcel be missing, just say so and I'll look into it.",
    ),
    "products": (
        "We have two good matches: the {p1} (€{price1}) and the {p2} (€{price2}). Both are in "
        "stock right now.",
        "Two products fit what you're looking for, and both can ship today: the {p1}, priced at "
        "€{price1}, and the {p2}, which costs €{price2}.",
        "I'd suggest the {p1} for €{price1}, or the {p2} if you prefer, at €{price2}. Each of "
        "them is available from stock.",
    ),
    "policy": (
        "You can return any unused item within {window} days of delivery, and the return label is "
        "free. Once we receive it, the refund reaches your original payment method within "
        "{refund_days}.",
        "Our policy gives you {window} days after delivery to send back unused items, with a "
        "prepaid label at no cost. Refunds go back to the card or account you paid with, within "
        "{refund_days} of the parcel arriving at our warehouse.",
        "Returns are accepted for {window} days from the delivery date as long as the item is "
        "unused; we cover the shipping label. After the return is checked in, expect the money "
        "back on your original payment method in {refund_days}.",
    ),
    "closing": (
        "You're welcome! Is there anything else I can help you with today?",
        "Happy to help. Let me know if you need anything more.",
        "Glad I could sort that out for you. Just write again whenever something else comes up.",
    ),
    "ask_order": (
        "Sure, I can help you {task}. Which order is it? Please send me the order number.",
        "Of course, let's {task} together. I'll need the order number first; could you share it?",
        "Happy to help you {task}. To find the right order, please tell me its number.",
    ),
    "refund_offer": (
        "I'm sorry the {item} {problem}. Order {oid} comes to €{amount}, and I can refund the full "
        "amount to your original payment method. Shall I go ahead?",
        "That's frustrating, sorry that the {item} {problem}. I can give you back the whole "
        "€{amount} for order {oid} on the card you paid with. Would you like me to do that?",
        "Apologies that the {item} {problem}. A full refund of €{amount} for order {oid}, to your "
        "original payment method, is possible right away. Do you want me to start it?",
    ),
    "refund_done": (
        "Done! Refund {refund_id} of €{amount} for order {oid} is approved and will reach your "
        "original payment method within {refund_days}.",
        "I've issued the refund: €{amount} for order {oid}, reference {refund_id}. Expect it back "
        "on the payment method you used within {refund_days}.",
        "All set. The €{amount} from order {oid} is on its way back to you under refund number "
        "{refund_id}; your bank should show it within {refund_days}.",
    ),
    "cancel_done": (
        "Order {oid} is cancelled (reference {cancel_id}). The €{amount} you paid will be refunded "
        "to your original payment method within {refund_days}.",
        "I've cancelled order {oid} for you; the cancellation reference is {cancel_id}. You'll get "
        "the full €{amount} back on the card you paid with within {refund_days}.",
        "Your order {oid} won't ship: it's cancelled under {cancel_id}, and the €{amount} goes "
        "back to your original payment method in {refund_days}.",
    ),
    "address_done": (
        "I've updated the delivery address of order {oid} to {address}. It will ship there on "
        "{ships_on}.",
        "Order {oid} will now be delivered to {address}; the change is saved and the parcel "
        "leaves us on {ships_on}.",
        "Done: the new shipping address for {oid} is {address}. We'll dispatch it to that address "
        "on {ships_on}.",
    ),
    "transfer_done": (
        "I've passed your case to our {queue} team (ticket {ticket}). A colleague will contact you "
        "by email within about {minutes} minutes.",
        "A member of our {queue} team will take it from here: I've opened ticket {ticket}, and "
        "they usually reply by email in around {minutes} minutes.",
        "Your request is now with a person from the {queue} team, under ticket {ticket}. Expect "
        "an email from them in roughly {minutes} minutes.",
    ),
}

# --------------------------------------------------------------------------- free-text arguments
FREE_TEXTS: dict[str, tuple[str, str, str]] = {
    "refund:damaged": (
        "The {item} arrived damaged; the customer asked for a full refund.",
        "Customer received a broken {item} and wants their money back.",
        "Item {item} was damaged in transit, so the order is refunded in full.",
    ),
    "refund:wrong_item": (
        "Customer received a different product instead of the {item}.",
        "Wrong item shipped: the parcel did not contain the {item} that was ordered.",
        "We sent the customer something other than the {item}; refunding the order.",
    ),
    "refund:changed_mind": (
        "Customer changed their mind about the {item} and returns it unused.",
        "The {item} is no longer wanted; it will come back unused within the return window.",
        "Return of an unused {item}: the customer decided they don't need it after all.",
    ),
    "cancel": (
        "Customer no longer needs the {item} and asked to cancel before it ships.",
        "Order cancelled at the customer's request: the {item} is not needed anymore and hasn't "
        "shipped yet.",
        "The customer wants to stop the order for the {item} while it is still in preparation.",
    ),
    "note:moved": (
        "Customer has moved; please deliver to the new address.",
        "New address given by the customer after a recent move.",
        "The customer relocated, so the parcel must go to the updated address.",
    ),
    "note:office": (
        "Customer prefers delivery to their office during working hours.",
        "Ship to the customer's workplace instead; someone is there on weekdays.",
        "Deliver at the office: the customer is at work when parcels usually come.",
    ),
    "note:family": (
        "Customer is staying with family for a few weeks; deliver there.",
        "For the next weeks the customer lives at a relative's home, so send it there.",
        "Temporary address: the customer is with their family and wants the parcel delivered "
        "to them.",
    ),
    "transfer:missing_parcel": (
        "Order {oid} is marked delivered by {carrier} on {delivered}, but the customer never "
        "received it.",
        "Customer says the parcel for {oid} never arrived although {carrier} reported it "
        "delivered on {delivered}.",
        "{carrier} shows order {oid} delivered on {delivered}; the customer has not got it and "
        "needs an investigation.",
    ),
    "transfer:invoice": (
        "Customer needs a corrected invoice for order {oid} with their company name.",
        "Invoice for {oid} must be reissued with the customer's company details.",
        "The customer asks for a new invoice for order {oid} made out to their business.",
    ),
}

# --------------------------------------------------------------------------- user messages
USER: dict[str, tuple[str, ...]] = {
    "status": ("Hi, where is my order {oid}?", "Could you tell me the status of order {oid}, please?",
               "hey any news on {oid}? still waiting", "Good morning. I'd like an update on order {oid}."),
    "products": ("Do you have {thing}?", "hi, I'm looking for {thing}", "What would you recommend for {thing}?"),
    "policy": ("What's your return policy?", "How long do I have to send something back?",
               "If something doesn't work out, can I return it?"),
    "refund_ask:damaged": ("My {item} from order {oid} arrived damaged. Can I get a refund?",
                           "order {oid}: the {item} came broken :( what can you do?"),
    "refund_ask:wrong_item": ("Order {oid} came with the wrong product, I had ordered the {item}.",
                              "This isn't the {item} I ordered (order {oid}). Can I get my money back?"),
    "refund_ask:changed_mind": ("I don't need the {item} from order {oid} anymore, can I get my money back?",
                                "Changed my mind about the {item} (order {oid}). Refund possible?"),
    "refund_yes": ("Yes please, refund it.", "Yes, go ahead.", "ok do it", "Please do, thank you."),
    "refund_now:damaged": ("The {item} in order {oid} arrived broken. Please refund me.",
                           "Order {oid}: {item} damaged on arrival. I want a refund."),
    "refund_now:wrong_item": ("You sent me the wrong thing instead of the {item}, order {oid}. Refund it please.",),
    "refund_now:changed_mind": ("Please refund order {oid}, I'm sending the {item} back unused.",),
    "cancel_now": ("Please cancel order {oid}, I don't need the {item} anymore.",
                   "Can you cancel {oid}? Don't need the {item} after all."),
    "cancel_open": ("I want to cancel an order.", "hi, I need to cancel something I ordered"),
    "cancel_give": ("It's {oid}. I don't need the {item} anymore.", "{oid} - the {item}, not needed anymore"),
    "address_now:moved": ("Could you ship order {oid} to {address} instead? I've just moved.",),
    "address_now:office": ("Please send order {oid} to my office: {address}. I'm at work all day.",),
    "address_now:family": ("I'm staying with my family for a while, can order {oid} go to {address}?",),
    "address_open": ("I need to change the delivery address of my order.",
                     "Can I still change where my order is delivered?"),
    "address_give:moved": ("Order {oid}, please send it to {address}. I've moved.",),
    "address_give:office": ("It's {oid}. Deliver to my office please: {address}",),
    "address_give:family": ("{oid}. I'm at my parents' for a few weeks: {address}",),
    "missing_ask": ("My order {oid} says delivered but I don't have it.",
                    "Tracking for {oid} says delivered?? Nothing here."),
    "missing_human": ("It's definitely not here. I want to talk to a real person.",
                      "Not here, I checked with the neighbours. Please get me a human."),
    "invoice": ("I need an invoice with my company name for order {oid}. Can someone help?",
                "Can a person reissue the invoice of order {oid} to my company?"),
    "closing": ("Thanks!", "Great, thank you.", "perfect, thx", "Thank you for your help."),
}
PROBLEMS = {"damaged": "arrived damaged", "wrong_item": "isn't what you ordered",
            "changed_mind": "didn't work out for you"}
NOTE_KINDS = ("moved", "office", "family")
CAUSES = ("damaged", "wrong_item", "changed_mind")
# how a state-changing call fails in production (the exception type, its message)
FAILURES = {"issue_refund": ("TimeoutError", "payment gateway timeout"),
            "cancel_order": ("ConnectionError", "order service unavailable")}
FAIL_RATE = 0.1


# --------------------------------------------------------------------------- the plan of a session
@dataclass
class Call:
    name: str
    arguments: dict[str, Any]
    result: dict[str, Any] | None
    status: str = "ok"
    error: str | None = None
    id: str = ""


@dataclass
class PlannedTurn:
    user: str
    rounds: list[list[Call]]  # the tool calls each model call requested, in order
    answer: str
    answer_reworded: str
    answer_kind: str


@dataclass
class Order:
    order_id: str
    sku: str
    status: str  # processing, shipped, delivered
    placed: date
    carrier: str
    tracking: str
    ships_on: date | None = None
    shipped: date | None = None
    eta: date | None = None
    delivered: date | None = None
    address: str = ""

    @property
    def item(self) -> str:
        return PRODUCTS[self.sku][0]

    @property
    def total(self) -> float:
        return PRODUCTS[self.sku][1]

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"order_id": self.order_id, "status": self.status, "placed_at": self.placed.isoformat()}
        for key, value in (("ships_on", self.ships_on), ("shipped_at", self.shipped),
                           ("estimated_delivery", self.eta), ("delivered_at", self.delivered)):
            if value is not None:
                out[key] = value.isoformat()
        if self.status != "processing":
            out.update(carrier=self.carrier, tracking_number=self.tracking)
        out["items"] = [{"sku": self.sku, "name": self.item, "qty": 1, "price": self.total}]
        out.update(total=self.total, currency="EUR", shipping_address=self.address)
        return out


def day_text(d: date) -> str:
    return f"{d.day} {d:%B}"


def money(x: float) -> str:
    return f"{x:.2f}"


@dataclass
class Shop:
    """The state of the generation: the random source, id counters, the rewordings seen."""

    rng: random.Random
    answers: dict[str, str] = field(default_factory=dict)
    arguments: dict[str, str] = field(default_factory=dict)
    order_no: int = 3100
    ref_no: int = 52000
    today: date = BASE_TIME.date()

    def pick(self, seq):
        return seq[self.rng.randrange(len(seq))]

    def user(self, kind: str, **facts: Any) -> str:
        return self.pick(USER[kind]).format(**facts)

    def _phrase(self, table: dict[str, tuple[str, ...]], seen: dict[str, str], kind: str,
                facts: dict[str, Any]) -> tuple[str, str]:
        phrasings = table[kind]
        i = self.rng.randrange(len(phrasings))
        text = phrasings[i].format(**facts)
        other = phrasings[(i + 1) % len(phrasings)].format(**facts)
        if seen.setdefault(text, other) != other:  # the same text must always have one rewording
            raise AssertionError(f"two rewordings for {text!r}")
        return text, other

    def answer(self, kind: str, **facts: Any) -> tuple[str, str, str]:
        return (*self._phrase(ANSWERS, self.answers, kind, facts), kind)

    def free_text(self, kind: str, **facts: Any) -> str:
        return self._phrase(FREE_TEXTS, self.arguments, kind, facts)[0]

    def next_ref(self) -> int:
        self.ref_no += self.rng.randint(1, 40)
        return self.ref_no

    def order(self, status: str) -> Order:
        self.order_no += self.rng.randint(1, 9)
        rng, today = self.rng, self.today
        carrier = self.pick(list(CARRIERS))
        tracking = CARRIERS[carrier] + "".join(str(rng.randrange(10)) for _ in range(12))
        o = Order(f"A{self.order_no}", self.pick(list(PRODUCTS)), status, today, carrier, tracking,
                  address=self.pick(ADDRESSES))
        if status == "processing":
            o.placed = today - timedelta(days=rng.randint(0, 1))
            o.ships_on = today + timedelta(days=rng.randint(1, 2))
            o.eta = o.ships_on + timedelta(days=rng.randint(2, 4))
        elif status == "shipped":
            o.placed = today - timedelta(days=rng.randint(3, 6))
            o.shipped = o.placed + timedelta(days=rng.randint(1, 2))
            o.eta = today + timedelta(days=rng.randint(1, 3))
        else:
            o.placed = today - timedelta(days=rng.randint(6, 12))
            o.shipped = o.placed + timedelta(days=1)
            o.delivered = today - timedelta(days=rng.randint(1, 4))
        return o

    def write(self, name: str, arguments: dict[str, Any], result: dict[str, Any]) -> list[Call]:
        """A state-changing call: its round(s); a failure in production is retried once."""
        ok = Call(name, arguments, result)
        if name in FAILURES and self.rng.random() < FAIL_RATE:
            failed = Call(name, dict(arguments), None, status="error", error=FAILURES[name][1])
            return [failed, ok]
        return [ok]


# --------------------------------------------------------------------------- turns
def t_status(shop: Shop, order: Order, user: str | None = None) -> PlannedTurn:
    facts = {"oid": order.order_id, "item": order.item, "carrier": order.carrier, "tracking": order.tracking}
    if order.status == "processing":
        a = shop.answer("status_processing", **facts, ships_on=day_text(order.ships_on), eta=day_text(order.eta))
    elif order.status == "shipped":
        a = shop.answer("status_shipped", **facts, shipped=day_text(order.shipped), eta=day_text(order.eta))
    else:
        a = shop.answer("status_delivered", **facts, delivered=day_text(order.delivered))
    lookup = Call("lookup_order", {"order_id": order.order_id}, order.record())
    return PlannedTurn(user or shop.user("status", oid=order.order_id), [[lookup]], *a)


def t_products(shop: Shop) -> PlannedTurn:
    thing, query, (s1, s2) = shop.pick(PRODUCT_QUERIES)
    results = [{"sku": s, "name": PRODUCTS[s][0], "price": PRODUCTS[s][1], "in_stock": True} for s in (s1, s2)]
    call = Call("search_products", {"query": query}, {"query": query, "results": results})
    a = shop.answer("products", p1=PRODUCTS[s1][0], price1=money(PRODUCTS[s1][1]),
                    p2=PRODUCTS[s2][0], price2=money(PRODUCTS[s2][1]))
    return PlannedTurn(shop.user("products", thing=thing), [[call]], *a)


def t_policy(shop: Shop) -> PlannedTurn:
    policy = {"return_window_days": RETURN_WINDOW_DAYS, "condition": "unused",
              "return_shipping": "free prepaid label", "refund_to": "original payment method",
              "refund_time": REFUND_DAYS}
    a = shop.answer("policy", window=RETURN_WINDOW_DAYS, refund_days=REFUND_DAYS)
    return PlannedTurn(shop.user("policy"), [[Call("get_refund_policy", {}, policy)]], *a)


def t_closing(shop: Shop) -> PlannedTurn:
    return PlannedTurn(shop.user("closing"), [], *shop.answer("closing"))


def t_ask_order(shop: Shop, opening: str, task: str) -> PlannedTurn:
    return PlannedTurn(shop.user(opening), [], *shop.answer("ask_order", task=task))


def t_refund_offer(shop: Shop, order: Order, cause: str) -> PlannedTurn:
    lookup = Call("lookup_order", {"order_id": order.order_id}, order.record())
    a = shop.answer("refund_offer", item=order.item, problem=PROBLEMS[cause], oid=order.order_id,
                    amount=money(order.total))
    return PlannedTurn(shop.user(f"refund_ask:{cause}", oid=order.order_id, item=order.item), [[lookup]], *a)


def t_refund(shop: Shop, order: Order, cause: str, user: str, lookup: bool) -> PlannedTurn:
    reason = shop.free_text(f"refund:{cause}", item=order.item)
    ref = f"RF-{shop.next_ref()}"
    result = {"refund_id": ref, "order_id": order.order_id, "amount": order.total, "currency": "EUR",
              "status": "approved", "method": "original payment method", "expected_in_account": REFUND_DAYS}
    rounds = [[Call("lookup_order", {"order_id": order.order_id}, order.record())]] if lookup else []
    rounds += [[c] for c in shop.write("issue_refund", {"order_id": order.order_id, "amount": order.total,
                                                         "reason": reason}, result)]
    a = shop.answer("refund_done", refund_id=ref, amount=money(order.total), oid=order.order_id,
                    refund_days=REFUND_DAYS)
    return PlannedTurn(user, rounds, *a)


def t_cancel(shop: Shop, order: Order, user: str) -> PlannedTurn:
    reason = shop.free_text("cancel", item=order.item)
    ref = f"CX-{shop.next_ref()}"
    result = {"cancellation_id": ref, "order_id": order.order_id, "status": "cancelled",
              "refund_amount": order.total, "currency": "EUR"}
    rounds = [[Call("lookup_order", {"order_id": order.order_id}, order.record())]]
    rounds += [[c] for c in shop.write("cancel_order", {"order_id": order.order_id, "reason": reason}, result)]
    a = shop.answer("cancel_done", oid=order.order_id, cancel_id=ref, amount=money(order.total),
                    refund_days=REFUND_DAYS)
    return PlannedTurn(user, rounds, *a)


def t_address(shop: Shop, order: Order, address: str, note_kind: str, user: str) -> PlannedTurn:
    note = shop.free_text(f"note:{note_kind}")
    result = {"order_id": order.order_id, "status": "address_updated", "address": address,
              "ships_on": order.ships_on.isoformat()}
    rounds = [[Call("lookup_order", {"order_id": order.order_id}, order.record())]]
    rounds += [[c] for c in shop.write("update_address", {"order_id": order.order_id, "address": address,
                                                           "note": note}, result)]
    a = shop.answer("address_done", oid=order.order_id, address=address, ships_on=day_text(order.ships_on))
    return PlannedTurn(user, rounds, *a)


def t_transfer(shop: Shop, topic: str, order: Order, user: str) -> PlannedTurn:
    facts = {"oid": order.order_id, "carrier": order.carrier}
    if order.delivered is not None:
        facts["delivered"] = day_text(order.delivered)
    reason = shop.free_text(f"transfer:{topic}", **facts)
    ticket, minutes = f"HD-{shop.next_ref() % 10000:04d}", shop.pick((10, 15, 20, 30, 45))
    result = {"ticket_id": ticket, "queue": QUEUES[topic], "estimated_wait_minutes": minutes,
              "channel": "email", "status": "open"}
    rounds = [[c] for c in shop.write("transfer_to_human", {"reason": reason}, result)]
    a = shop.answer("transfer_done", queue=QUEUES[topic], ticket=ticket, minutes=minutes)
    return PlannedTurn(user, rounds, *a)


# --------------------------------------------------------------------------- sessions
def s_status(shop: Shop) -> list[PlannedTurn]:
    turns = [t_status(shop, shop.order(shop.pick(("processing", "shipped", "shipped", "delivered"))))]
    if shop.rng.random() < 0.3:
        turns.append(t_policy(shop))
    return turns


def s_products(shop: Shop) -> list[PlannedTurn]:
    turns = [t_products(shop)]
    if shop.rng.random() < 0.4:
        turns.append(t_products(shop))
    if shop.rng.random() < 0.4:
        turns.append(t_policy(shop))
    return turns


def s_policy(shop: Shop) -> list[PlannedTurn]:
    return [t_policy(shop)]


def s_refund_offered(shop: Shop) -> list[PlannedTurn]:
    order, cause = shop.order("delivered"), shop.pick(CAUSES)
    first = [t_policy(shop)] if shop.rng.random() < 0.3 else []
    return first + [t_refund_offer(shop, order, cause),
                    t_refund(shop, order, cause, shop.user("refund_yes"), lookup=False)]


def s_refund_now(shop: Shop) -> list[PlannedTurn]:
    order, cause = shop.order("delivered"), shop.pick(CAUSES)
    user = shop.user(f"refund_now:{cause}", oid=order.order_id, item=order.item)
    return [t_refund(shop, order, cause, user, lookup=True)]


def s_cancel(shop: Shop) -> list[PlannedTurn]:
    order = shop.order("processing")
    if shop.rng.random() < 0.5:
        return [t_cancel(shop, order, shop.user("cancel_now", oid=order.order_id, item=order.item))]
    return [t_ask_order(shop, "cancel_open", "cancel an order"),
            t_cancel(shop, order, shop.user("cancel_give", oid=order.order_id, item=order.item))]


def s_address(shop: Shop) -> list[PlannedTurn]:
    order, note_kind = shop.order("processing"), shop.pick(NOTE_KINDS)
    address = shop.pick([a for a in ADDRESSES if a != order.address])
    if shop.rng.random() < 0.5:
        user = shop.user(f"address_now:{note_kind}", oid=order.order_id, address=address)
        return [t_address(shop, order, address, note_kind, user)]
    user = shop.user(f"address_give:{note_kind}", oid=order.order_id, address=address)
    return [t_ask_order(shop, "address_open", "change the delivery address"),
            t_address(shop, order, address, note_kind, user)]


def s_missing_parcel(shop: Shop) -> list[PlannedTurn]:
    order = shop.order("delivered")
    return [t_status(shop, order, shop.user("missing_ask", oid=order.order_id)),
            t_transfer(shop, "missing_parcel", order, shop.user("missing_human"))]


def s_invoice(shop: Shop) -> list[PlannedTurn]:
    order = shop.order("delivered")
    return [t_transfer(shop, "invoice", order, shop.user("invoice", oid=order.order_id))]


def s_refund_then_cancel(shop: Shop) -> list[PlannedTurn]:
    order = shop.order("processing")
    return s_refund_now(shop) + [t_cancel(shop, order, shop.user("cancel_now", oid=order.order_id, item=order.item))]


def s_address_then_invoice(shop: Shop) -> list[PlannedTurn]:
    order, note_kind = shop.order("processing"), shop.pick(NOTE_KINDS)
    address = shop.pick([a for a in ADDRESSES if a != order.address])
    user = shop.user(f"address_now:{note_kind}", oid=order.order_id, address=address)
    return [t_address(shop, order, address, note_kind, user)] + s_invoice(shop)


# name: (weight, plan); the closing turn is added by chance to any of them (at most 4 turns)
ARCHETYPES = {
    "status": (16, s_status), "products": (13, s_products), "policy": (6, s_policy),
    "refund_offered": (12, s_refund_offered), "refund_now": (8, s_refund_now), "cancel": (10, s_cancel),
    "address": (10, s_address), "missing_parcel": (6, s_missing_parcel), "invoice": (3, s_invoice),
    "refund_then_cancel": (5, s_refund_then_cancel), "address_then_invoice": (5, s_address_then_invoice),
}


# --------------------------------------------------------------------------- spans
class SpanWriter:
    """Turns planned turns into OpenInference spans (one trace a turn)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.spans: list[tuple[int, dict[str, Any]]] = []  # (end ns, span)

    def _id(self, bits: int) -> int:
        return self.rng.getrandbits(bits) or 1

    def call_id(self) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        return "call_" + "".join(alphabet[self.rng.randrange(len(alphabet))] for _ in range(24))

    def _add(self, span: dict[str, Any]) -> None:
        self.spans.append((int(span["endTimeUnixNano"]), span))

    def turn(self, session_id: str, user_id: str, history: list[dict[str, Any]], turn: PlannedTurn,
             start_ns: int) -> tuple[str, int]:
        """The spans of one turn; returns (trace id, end ns)."""
        rng = self.rng
        trace, root = self._id(128), self._id(64)
        ids = {"session.id": session_id, "user.id": user_id}
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, *history, {"role": "user", "content": turn.user}]
        t = start_ns + rng.randint(5, 30) * 1_000_000
        for rnd in turn.rounds:
            for c in rnd:
                c.id = self.call_id()
            t = self._llm(trace, root, ids, messages, {"role": "assistant", "tool_calls": rnd}, t)
            messages.append({"role": "assistant", "tool_calls": rnd})
            for c in rnd:
                t = self._tool(trace, root, c, t)
                content = json.dumps(c.result) if c.status == "ok" else json.dumps({"error": c.error})
                messages.append({"role": "tool", "tool_call_id": c.id, "content": content})
        t = self._llm(trace, root, ids, messages, {"role": "assistant", "content": turn.answer}, t)
        end = t + rng.randint(2, 10) * 1_000_000
        self._add(make_span(trace, root, None, "support_agent", start_ns, end, {
            "openinference.span.kind": "AGENT", "agent.name": "support_agent", **ids,
            "input.value": turn.user, "input.mime_type": "text/plain",
            "output.value": turn.answer, "output.mime_type": "text/plain"}, status="ok"))
        return f"{trace:032x}", end

    def _llm(self, trace: int, root: int, ids: dict[str, str], messages: list[dict[str, Any]],
             out: dict[str, Any], start: int) -> int:
        attrs: dict[str, Any] = {"openinference.span.kind": "LLM", "llm.system": "openai",
                                 "llm.model_name": MODEL, **ids,
                                 "llm.invocation_parameters": json.dumps({"model": "gpt-4.1-mini", "temperature": 0.2})}
        for k, name in enumerate(TOOL_SCHEMAS):
            attrs[f"llm.tools.{k}.tool.json_schema"] = json.dumps(tool_schema(name))
        size = 0
        for i, m in enumerate(messages):
            size += _flatten_message(attrs, f"llm.input_messages.{i}.message.", m)
        out_size = _flatten_message(attrs, "llm.output_messages.0.message.", out)
        prompt, completion = 380 + size // 4, 8 + out_size // 4
        attrs.update({"llm.token_count.prompt": prompt, "llm.token_count.completion": completion,
                      "llm.token_count.total": prompt + completion})
        end = start + self.rng.randint(400, 1600) * 1_000_000
        self._add(make_span(trace, self._id(64), root, "ChatCompletion", start, end, attrs, status="ok"))
        return end + self.rng.randint(1, 5) * 1_000_000

    def _tool(self, trace: int, root: int, c: Call, start: int) -> int:
        end = start + self.rng.randint(40, 400) * 1_000_000
        attrs: dict[str, Any] = {"openinference.span.kind": "TOOL", "tool.name": c.name, "tool.id": c.id,
                                 "tool.description": TOOL_SCHEMAS[c.name][0],
                                 "input.value": json.dumps(c.arguments, ensure_ascii=False),
                                 "input.mime_type": "application/json"}
        if c.status == "ok":
            attrs.update({"output.value": json.dumps(c.result, ensure_ascii=False),
                          "output.mime_type": "application/json"})
            self._add(make_span(trace, self._id(64), root, c.name, start, end, attrs, status="ok"))
        else:
            kind = FAILURES[c.name][0]
            event = make_event("exception", end, {"exception.type": kind, "exception.message": c.error})
            self._add(make_span(trace, self._id(64), root, c.name, start, end, attrs,
                                status=("error", f"{kind}: {c.error}"), events=[event]))
        return end + self.rng.randint(1, 5) * 1_000_000


def tool_schema(name: str) -> dict[str, Any]:
    description, props, required = TOOL_SCHEMAS[name]
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": {k: {"type": v} for k, v in props.items()}, "required": list(required)}}}


def _flatten_message(attrs: dict[str, Any], base: str, m: dict[str, Any]) -> int:
    """One message as OpenInference's flattened attributes; returns its size in characters."""
    attrs[base + "role"] = m["role"]
    size = 0
    if m.get("content") is not None:
        attrs[base + "content"] = m["content"]
        size += len(m["content"])
    if m.get("tool_call_id"):
        attrs[base + "tool_call_id"] = m["tool_call_id"]
    for j, c in enumerate(m.get("tool_calls") or ()):
        args = json.dumps(c.arguments, ensure_ascii=False)
        attrs[f"{base}tool_calls.{j}.tool_call.id"] = c.id
        attrs[f"{base}tool_calls.{j}.tool_call.function.name"] = c.name
        attrs[f"{base}tool_calls.{j}.tool_call.function.arguments"] = args
        size += len(args) + len(c.name)
    return size


# --------------------------------------------------------------------------- the set
def _plan_session(shop: Shop) -> tuple[str, list[PlannedTurn]]:
    names = list(ARCHETYPES)
    archetype = shop.rng.choices(names, weights=[ARCHETYPES[n][0] for n in names])[0]
    turns = ARCHETYPES[archetype][1](shop)
    if len(turns) < 4 and shop.rng.random() < 0.45:
        turns.append(t_closing(shop))
    return archetype, turns


def _turn_manifest(i: int, trace_id: str, t: PlannedTurn) -> dict[str, Any]:
    calls = [{"id": c.id, "name": c.name, "arguments": c.arguments, "status": c.status,
              "result": c.result if c.status == "ok" else {"error": c.error}}
             for rnd in t.rounds for c in rnd]
    return {"turn_index": i, "trace_id": trace_id, "user_message": t.user, "answer": t.answer,
            "answer_kind": t.answer_kind, "answer_reworded": t.answer_reworded, "tool_calls": calls,
            "writes": sorted({c["name"] for c in calls if c["name"] in WRITE_TOOLS})}


def _summary(sessions: list[dict[str, Any]], spans: int, free_text: int) -> dict[str, Any]:
    turns = [t for s in sessions for t in s["turns"]]
    calls = [c for t in turns for c in t["tool_calls"]]
    with_writes = sum(1 for s in sessions if s["write_turns"])
    return {
        "sessions": len(sessions), "turns": len(turns), "spans": spans,
        "turns_per_session": {str(n): sum(1 for s in sessions if len(s["turns"]) == n) for n in range(1, 5)},
        "tool_calls": len(calls), "failed_tool_calls": sum(1 for c in calls if c["status"] == "error"),
        "write_calls": sum(1 for c in calls if c["name"] in WRITE_TOOLS),
        "sessions_with_writes": with_writes, "sessions_without_writes": len(sessions) - with_writes,
        "sessions_with_writes_in_two_turns": sum(1 for s in sessions if len(s["write_turns"]) >= 2),
        "share_with_writes": round(with_writes / len(sessions), 3) if sessions else 0.0,
        "free_text_arguments": free_text,
        "archetypes": dict(sorted(_count(s["archetype"] for s in sessions).items())),
    }


def _count(items) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for x in items:
        out[x] += 1
    return out


def write_shop_traces(out_dir: Path, n_sessions: int = 120, seed: int = 7) -> dict:
    """Write the shop's production traces and manifest under ``out_dir``; return the manifest
    (module doc). ``out_dir/otlp/shop-<day>.jsonl`` (one file per UTC day) and
    ``out_dir/manifest.json``."""
    out_dir = Path(out_dir)
    rng = random.Random(seed)
    shop, writer = Shop(rng), SpanWriter(rng)
    sessions = []
    start = int(BASE_TIME.timestamp()) * 10**9
    for _ in range(n_sessions):
        start += rng.randint(15, 55) * 60 * 10**9
        shop.today = datetime.fromtimestamp(start / 1e9, tz=timezone.utc).date()
        session_id, user_id = f"shop_{rng.getrandbits(48):012x}", shop.pick(USERS)
        archetype, planned = _plan_session(shop)
        history: list[dict[str, Any]] = []
        turns, t = [], start
        for i, pt in enumerate(planned):
            trace_id, end = writer.turn(session_id, user_id, history, pt, t)
            history += [{"role": "user", "content": pt.user}, {"role": "assistant", "content": pt.answer}]
            turns.append(_turn_manifest(i, trace_id, pt))
            t = end + rng.randint(20, 120) * 10**9  # the user reads and writes
        sessions.append({"session_id": session_id, "user_id": user_id, "archetype": archetype,
                         "started_at": datetime.fromtimestamp(start / 1e9, tz=timezone.utc).isoformat(),
                         "turns": turns, "write_turns": [x["turn_index"] for x in turns if x["writes"]]})
    files = _write_files(out_dir, writer.spans)
    free_text = sum(1 for s in sessions for t in s["turns"] for c in t["tool_calls"]
                    for k in FREE_TEXT_ARGS.get(c["name"], ()) if k in c["arguments"])
    manifest = {
        "project": PROJECT, "seed": seed, "generator": "tests/support/truth_data.py", "files": files,
        "read_tools": list(READ_TOOLS), "write_tools": list(WRITE_TOOLS),
        "free_text_args": {k: list(v) for k, v in FREE_TEXT_ARGS.items()}, "key_overrides": KEY_OVERRIDES,
        "summary": _summary(sessions, len(writer.spans), free_text),
        "sessions": sessions,
        "answer_rewordings": dict(sorted(shop.answers.items())),
        "argument_rewordings": dict(sorted(shop.arguments.items())),
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    return manifest


def _write_files(out_dir: Path, spans: list[tuple[int, dict[str, Any]]], batch: int = 20) -> list[str]:
    """Spans in the order they ended, ~``batch`` a line (as the Collector exports them), one
    file per UTC day of their end; returns the files relative to ``out_dir``."""
    by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for end, span in sorted(spans, key=lambda x: x[0]):
        by_day[datetime.fromtimestamp(end / 1e9, tz=timezone.utc).date().isoformat()].append(span)
    resource = {"service.name": PROJECT, "service.version": "3.2.0", "deployment.environment.name": "production"}
    files = []
    for day, day_spans in sorted(by_day.items()):
        lines = [make_line(resource, day_spans[i:i + batch], scope_name="maple_pine_support")
                 for i in range(0, len(day_spans), batch)]
        rel = f"otlp/shop-{day}.jsonl"
        write_otlp_file(out_dir / rel, lines)
        files.append(rel)
    return files


__all__ = ["ANSWERS", "FREE_TEXTS", "FREE_TEXT_ARGS", "KEY_OVERRIDES", "PROJECT", "READ_TOOLS",
           "WRITE_TOOLS", "write_shop_traces"]
