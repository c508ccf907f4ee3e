"""Offline scenario text: persona, intents, situation, outcome and graph steps of a transcript.

Pure, deterministic and offline: no model, no network, no randomness except a seeded
``random.Random`` handed in. Every rule is a small table below; the rules in words:

Persona (``infer_persona``), from HOW the user wrote the messages given (``describe`` gives
the transcript's user messages; a caller may pool all of a user's sessions):
- verbosity: average words per message: <= 6 low, <= 16 medium, else high.
- emoji_usage: emoji per message (Unicode emoji ranges): 0 none, < 0.5 low, < 1.5 medium, else high.
- slang_usage: share of words that are slang (``SLANG``: gonna, lol, u, thx, pls, ya, tbh, rn, ...)
  or stretched spellings ("youuu", "Hiii"): 0 none, < 5% low, < 12% medium, else high.
- typos: typo-like words per message: a word from the common-misspelling list (``MISSPELLINGS``:
  orderd, wat, nite, recieve, ...) or a contraction written without its apostrophe (isnt, dont,
  im, ...): 0 none, < 0.34 low, < 1 medium, else high. (A "not in a wordlist" ratio was left
  out on purpose: product names and ids make it noisy on real support chats.)
- communication_style, first rule that holds: "casual" if slang or emoji is medium or high;
  "terse" if at most 7 words per message on average; "formal" if at least half the messages
  have a formal marker (good morning, kindly, could/would you, please, thank you, I would
  like, ...) and most start with a capital letter; "casual" if most messages start in lower
  case or there is any slang or emoji; else "plain".
- tone: messages with a frustration marker (still, again, unacceptable, ridiculous, a word
  in CAPITALS, "!!"/"??" without an emoji or a happy word, "hello?"), with a politeness
  marker, or with a friendly marker (an emoji, hi/hey/yo, yay, awesome, lol, ...) are
  counted; the largest count wins, ties go polite > friendly > frustrated; none: "neutral".
- languages: a language (en, es, de, fr, it, pt) is listed when >= 2 distinct stopwords of
  its own (not shared with another listed language) make >= 10% of the words; nothing
  found: ["en"].
- personality: 2-3 adjectives from style, tone, emoji, verbosity and typos (``ADJECTIVES``).
- name: from the user id ("maria_garcia" -> "Maria Garcia"), else "Anonymous user";
  age_group / occupation / location stay "unknown" unless the text says so ("I'm 34",
  "I'm a teacher", "I live in Berlin", "ship to Canada").

Conversation (``describe``):
- intent per user turn: every rule in ``INTENT_RULES`` scores 2 if one of its keywords is in
  the message and 1 if one of its tools ran in that turn; the best score wins, ties go to
  the earlier rule; a tool no rule knows scores 1 as "use_<tool>"; small_talk only counts
  for a message without a question mark; nothing matched: "general_question".
- situation: "<name>, a <style> customer, <goals>." with one goal phrase per distinct intent
  (``GOALS``; small talk left out), the order ids the user gave (or the tools' order_id)
  and the policy topic asked about (return, shipping, ...).
- outcome: 2-4 past-tense sentences: the tools called (or none), failed tool calls and failed
  turns, a hand-over to a human, and the gist of the last answer to a real request (closing
  small talk skipped; "no answer" when the last message got none).
- steps: per turn "intent:<x>" then "tool:<name>" / "tool_error:<name>" per tool call;
  consecutive repeats collapsed (two turns of one intent without tools give one step);
  then "outcome:<branch_category>".
- branch_category, first that holds: "escalated" (a hand-over tool ran, or an answer says a
  human/team will contact the user); "failed" (a turn has status error); "abandoned" (the
  last turn has no assistant message); "tool_error" (a tool call failed and no later call of
  that tool succeeded); else "resolved".
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from models.scenario import ConversationNotes, Level, Persona, Transcript
from models.settings import PROJECT_ROOT

LEVELS: list[Level] = ["none", "low", "medium", "high"]
STYLE_FIELDS = ("communication_style", "tone", "verbosity", "typos", "emoji_usage", "slang_usage")
PERSONAS_PATH = PROJECT_ROOT / "data" / "personas.json"

# ---------------------------------------------------------------- lexicons
WORD = re.compile(r"[^\W\d_](?:[^\W_]|')*|\d[\w-]*")  # words in any alphabet, or numbers
EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\u2300-\u23FF\u2190-\u21FF\u3297\u3299]")
SLANG = {"gonna", "wanna", "gotta", "lol", "lmao", "omg", "u", "ur", "r", "thx", "thnx", "pls", "plz", "ya",
         "yah", "yep", "nah", "tbh", "rn", "idk", "imo", "btw", "w", "n", "em", "bet", "yo", "dude", "bro",
         "kinda", "sorta", "ppl", "cuz", "cos", "ty", "np", "k", "kk", "fr", "ngl", "sus", "legit", "smh"}
MISSPELLINGS = {"orderd": "ordered", "wat": "what", "nite": "night", "recieve": "receive",
                "recieved": "received", "adress": "address", "definately": "definitely", "thier": "their",
                "untill": "until", "alot": "a lot", "becuase": "because", "wich": "which", "teh": "the",
                "shiped": "shipped", "payed": "paid", "refundd": "refund", "pleae": "please",
                "tommorow": "tomorrow", "tomorow": "tomorrow", "realy": "really", "wierd": "weird",
                "seperate": "separate", "occured": "occurred", "thnks": "thanks", "whats": "what's"}
NO_APOSTROPHE = {"isnt", "dont", "cant", "wont", "didnt", "doesnt", "im", "ive", "youre", "thats",
                 "hasnt", "havent", "wasnt", "arent", "couldnt", "shouldnt", "wouldnt"}
STRETCHED = re.compile(r"([a-z])\1\1", re.I)  # "youuu", "Hiii"
FORMAL = re.compile(r"\b(good (morning|afternoon|evening)|dear|kindly|could you|would you|please|"
                    r"thank you|i would like|i hope you|regards|sincerely|i would be grateful)\b", re.I)
TONE_MARKERS = {  # order = tie-break order; "frustrated" also: a word in CAPITALS, "!!"/"??" unless happy
    "polite": re.compile(r"\b(please|kindly|thank you|thanks|could you|would you|appreciate|"
                         r"i hope you|good (morning|afternoon|evening)|have a (nice|good|lovely) day)\b", re.I),
    "friendly": re.compile(r"\b(hi+|hey+|yo|yay|awesome|great|perfect|love|lol|haha|cool|nice|bet|ooh)\b|"
                           + EMOJI.pattern, re.I),
    "frustrated": re.compile(r"\b(still|again|unacceptable|ridiculous|seriously|terrible|worst|useless|"
                             r"annoying|already|wtf)\b|\bhello\?", re.I),
}
REPEAT_PUNCT = re.compile(r"[!?]{2,}")
CAPS_WORD = re.compile(r"\b[A-Z]{4,}\b")
STOPWORDS = {
    "en": {"the", "and", "is", "you", "my", "to", "of", "it", "for", "i", "a", "do", "what", "can", "with"},
    "es": {"el", "los", "las", "que", "por", "para", "una", "hola", "gracias", "pedido", "está", "mi", "es",
           "y", "del", "cuándo"},
    "de": {"der", "die", "das", "und", "ist", "nicht", "ich", "mein", "meine", "bitte", "danke", "bestellung",
           "wann", "mit", "ein", "eine"},
    "fr": {"le", "les", "est", "et", "je", "mon", "ma", "pas", "bonjour", "merci", "commande", "une", "des",
           "avec", "pour", "quand"},
    "it": {"il", "lo", "gli", "che", "non", "sono", "mio", "mia", "ciao", "grazie", "ordine", "una", "per",
           "quando", "della", "è"},
    "pt": {"o", "os", "não", "meu", "minha", "obrigado", "obrigada", "pedido", "olá", "uma", "para", "com",
           "quando", "está", "do", "da"},
}
ADJECTIVES = [  # (feature, value) -> adjective; the first 3 that apply, in this order
    (("communication_style", "formal"), "courteous"), (("communication_style", "terse"), "direct"),
    (("communication_style", "casual"), "laid-back"), (("tone", "frustrated"), "impatient"),
    (("tone", "polite"), "patient"), (("tone", "friendly"), "upbeat"), (("emoji_usage", "high"), "expressive"),
    (("emoji_usage", "medium"), "expressive"), (("verbosity", "high"), "detail-oriented"),
    (("typos", "medium"), "hurried"), (("typos", "high"), "hurried"), (("verbosity", "low"), "to the point"),
]
MONTHS = {"january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
OCCUPATIONS = ("teacher", "nurse", "student", "developer", "software engineer", "engineer", "doctor",
               "designer", "lawyer", "chef", "accountant", "photographer", "manager", "runner", "retiree",
               "mechanic", "pharmacist", "architect", "journalist", "consultant", "sales rep", "parent")
OCCUPATION_RE = re.compile(r"\bI(?:'m| am| work as) (?:an? )?(" + "|".join(OCCUPATIONS) + r")s?\b", re.I)
LOCATION_RE = re.compile(r"\b(?:I live in|I'm from|I am from|I'm based in|I am based in|based in|here in|"
                         r"[Ss]hip(?: it)? to|[Dd]eliver(?: it)? to)\s+([A-Z][a-zA-Z]+(?: [A-Z][a-zA-Z]+)?)")
AGE_RE = re.compile(r"\bI(?:'m| am) (\d{2})(?: years old| y/?o)?\b(?!\s*(?:%|percent|minutes|days))", re.I)
AGE_GROUPS = [(24, "18-24"), (34, "25-34"), (44, "35-44"), (54, "45-54"), (200, "55+")]


def _level(value: float, cuts: tuple[float, float, float]) -> Level:
    """none up to cuts[0] (inclusive), then low/medium below cuts[1]/cuts[2], else high."""
    if value <= cuts[0]:
        return "none"
    return "low" if value < cuts[1] else "medium" if value < cuts[2] else "high"


def _words(text: str) -> list[str]:
    return WORD.findall(text)


def _name(user_id: str | None) -> str:
    local = (user_id or "").split("@")[0]
    parts = [p for p in re.split(r"[\W_]+", local) if p.isalpha() and len(p) > 1]
    return " ".join(p.capitalize() for p in parts) if parts else "Anonymous user"


def _languages(words: list[str]) -> list[str]:
    lower = [w.lower() for w in words]
    found = []
    for lang, stop in STOPWORDS.items():
        own = stop - set().union(*(s for other, s in STOPWORDS.items() if other != lang))  # es/pt share words
        hits = [w for w in lower if w in own]
        if len(set(hits)) >= 2 and len(hits) >= 0.1 * len(lower):
            found.append(lang)
    return found or ["en"]


def _about(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    if m := OCCUPATION_RE.search(text):
        out["occupation"] = m.group(1).lower()
    if (m := LOCATION_RE.search(text)) and m.group(1).split()[0].lower() not in MONTHS:
        out["location"] = m.group(1)
    if (m := AGE_RE.search(text)) and 13 <= int(m.group(1)) <= 99:
        out["age_group"] = next(g for top, g in AGE_GROUPS if int(m.group(1)) <= top)
    return out


def _tones_of(msg: str) -> set[str]:
    hits = {tone for tone, rx in TONE_MARKERS.items() if rx.search(msg)}
    if CAPS_WORD.search(msg) or (REPEAT_PUNCT.search(msg) and "friendly" not in hits):
        hits.add("frustrated")
    return hits


def _tone(messages: list[str]) -> str:
    counts = {tone: sum(tone in _tones_of(m) for m in messages) for tone in TONE_MARKERS}
    best = max(counts.values())
    return next(t for t in counts if counts[t] == best) if best else "neutral"


def style_features(messages: list[str]) -> dict[str, float]:
    """The numbers persona inference is based on (exposed for tests and for explaining a persona)."""
    msgs = [m for m in messages if m and m.strip()] or [""]
    words = [w for m in msgs for w in _words(m)]
    lower = [w.lower() for w in words]
    n = len(msgs)
    slang = sum(w in SLANG or bool(STRETCHED.search(w)) for w in lower)
    typos = sum(w in MISSPELLINGS or w in NO_APOSTROPHE for w in lower)
    starts = [m.lstrip()[:1] for m in msgs if m.strip()]
    return {
        "avg_words": len(words) / n,
        "emoji_per_message": sum(len(EMOJI.findall(m)) for m in msgs) / n,
        "slang_ratio": slang / max(len(words), 1),
        "typos_per_message": typos / n,
        "formal_ratio": sum(bool(FORMAL.search(m)) for m in msgs) / n,
        "lowercase_ratio": sum(s.isalpha() and s.islower() for s in starts) / max(len(starts), 1),
        "capitalised_ratio": sum(s.isupper() for s in starts) / max(len(starts), 1),
    }


STYLE_RULES = [  # first rule that holds; f = features, lv = levels
    ("casual", lambda f, lv: lv["slang_usage"] in ("medium", "high") or lv["emoji_usage"] in ("medium", "high")),
    ("terse", lambda f, lv: f["avg_words"] <= 7),
    ("formal", lambda f, lv: f["formal_ratio"] >= 0.5 and f["capitalised_ratio"] >= 0.5),
    ("casual", lambda f, lv: f["lowercase_ratio"] > 0.5 or lv["slang_usage"] != "none" or lv["emoji_usage"] != "none"),
    ("plain", lambda f, lv: True),
]


def infer_persona(user_id: str | None, user_messages: list[str]) -> Persona:
    msgs = [m for m in user_messages if m and m.strip()]
    f = style_features(msgs)
    levels: dict[str, Level] = {
        "verbosity": "low" if f["avg_words"] <= 6 else "medium" if f["avg_words"] <= 16 else "high",
        "emoji_usage": _level(f["emoji_per_message"], (0, 0.5, 1.5)),
        "slang_usage": _level(f["slang_ratio"], (0, 0.05, 0.12)),
        "typos": _level(f["typos_per_message"], (0, 0.34, 1)),
    }
    style = next(name for name, rule in STYLE_RULES if rule(f, levels))
    fields = {**levels, "communication_style": style, "tone": _tone(msgs)}
    adjectives = list(dict.fromkeys(adj for (key, val), adj in ADJECTIVES if fields.get(key) == val))[:3]
    return Persona(name=_name(user_id), personality=", ".join(adjectives),
                   languages=_languages([w for m in msgs for w in _words(m)]), **fields,
                   **_about(" ".join(msgs)))


# ---------------------------------------------------------------- conversation notes
ESCALATION_TOOLS = {"transfer_to_human", "escalate_to_human", "handoff_to_human"}
INTENT_RULES: list[tuple[str, dict]] = [  # order = tie-break order; keywords are regexes (word-bounded)
    ("escalation", {"tools": ESCALATION_TOOLS,
                    "keywords": [r"human", r"real person", r"manager", r"supervisor", r"representative",
                                 r"someone", r"(speak|talk) to", r"agent"]}),
    ("refund_request", {"tools": {"issue_refund"}, "keywords": [r"refund\w*", r"money back", r"reimburse\w*"]}),
    ("billing_issue", {"tools": set(), "keywords": [r"charged", r"charges?", r"payments?", r"billed", r"invoice"]}),
    ("policy_question", {"tools": {"get_refund_policy"}, "keywords": [r"polic(y|ies)", r"ship to", r"warranty",
                                                                      r"how long", r"return window"]}),
    ("return_request", {"tools": {"get_refund_policy"}, "keywords": [r"return\w*", r"send\b.*\bback", r"exchange\w*",
                                                                     r"label"]}),
    ("order_problem", {"tools": set(), "keywords": [r"wrong", r"damaged", r"broken", r"cracked", r"missing",
                                                    r"defective", r"never (arrived|came)"]}),
    ("order_status", {"tools": {"lookup_order"}, "keywords": [r"status", r"where is", r"track\w*", r"ship\w*",
                                                             r"deliver\w*", r"arriv\w*", r"when will"]}),
    ("promo_question", {"tools": set(), "keywords": [r"promo", r"discount", r"coupon", r"code"]}),
    ("product_search", {"tools": {"search_products"},
                        "keywords": [r"do (you|u)( guys)? (even )?have", r"looking for", r"recommend\w*", r"sizes?",
                                     r"colou?rs?", r"in stock", r"available", r"heavy", r"weigh\w*", r"washable"]}),
    ("small_talk", {"tools": set(), "no_question": True,
                    "keywords": [r"thanks?", r"thank you\w*", r"thx", r"ty", r"bye", r"hi+", r"hello", r"hey",
                                 r"ok(ay+)?", r"great", r"perfect", r"understood", r"bet", r"have a nice day"]}),
]
_KEYWORDS = {intent: re.compile(r"\b(" + "|".join(rule["keywords"]) + r")\b", re.I) for intent, rule in INTENT_RULES}
KNOWN_TOOLS = set().union(*(rule["tools"] for _, rule in INTENT_RULES))
GOALS = {  # intent -> goal phrase; {order} becomes "order A1042" or "an order"
    "order_status": "wants to know the status of {order}",
    "order_problem": "reports a problem with {order}",
    "refund_request": "wants a refund for {order}",
    "return_request": "wants to return or exchange an item from {order}",
    "billing_issue": "reports a billing problem with {order}",
    "policy_question": "asks about the {topic} policy",
    "product_search": "is looking for a product",
    "promo_question": "asks about a promo or discount code",
    "escalation": "asks to talk to a human",
    "general_question": "has a general question",
    "small_talk": "chats with the agent",
}
POLICY_TOPICS = [(re.compile(p, re.I), topic) for p, topic in [
    (r"\b(return|refund|exchange)", "return"), (r"\b(ship|deliver)", "shipping"), (r"\bwarrant", "warranty"),
    (r"\b(privacy|data)\b", "privacy")]]
ORDER_ID = re.compile(r"\b[A-Z]{1,3}-?\d{3,10}\b")
HUMAN_WILL_CONTACT = re.compile(r"\b(will|'ll) (contact you|get back to you|be in touch|reach out)|"
                                r"\b(handed|passed|transferred) (you|your case)\b", re.I)


def classify_intent(message: str | None, tools: list[str]) -> str:
    """One intent for one user turn (see INTENT_RULES)."""
    text = message or ""
    scores: dict[str, int] = {}
    for intent, rule in INTENT_RULES:
        if rule.get("no_question") and "?" in text:
            continue
        scores[intent] = 2 * bool(_KEYWORDS[intent].search(text)) + bool(rule["tools"] & set(tools))
    for tool in tools:
        if tool not in KNOWN_TOOLS:
            scores.setdefault(f"use_{tool}", 1)
    best = max(scores.values(), default=0)
    return next(i for i, s in scores.items() if s == best) if best else "general_question"


def branch_category(transcript: Transcript) -> str:
    turns = transcript.turns
    calls = [c for t in turns for c in t.tool_calls]
    if any(c.name in ESCALATION_TOOLS and c.status != "error" for c in calls) or any(
            HUMAN_WILL_CONTACT.search(t.assistant_message or "") for t in turns):
        return "escalated"
    if any(t.status == "error" for t in turns):
        return "failed"
    if not turns or not (turns[-1].assistant_message or "").strip():
        return "abandoned"
    for i, c in enumerate(calls):
        if c.status == "error" and not any(d.name == c.name and d.status != "error" for d in calls[i + 1:]):
            return "tool_error"
    return "resolved"


def _order_ids(transcript: Transcript) -> list[str]:
    ids = [m for t in transcript.turns for m in ORDER_ID.findall(t.user_message or "")]
    for t in transcript.turns:
        for c in t.tool_calls:
            args = c.arguments if isinstance(c.arguments, dict) else _json(c.arguments)
            ids += [str(v) for k, v in (args or {}).items() if k == "order_id" and v]
    return list(dict.fromkeys(ids))[:2]


def _json(value):
    try:
        out = json.loads(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return out if isinstance(out, dict) else None


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def situation_text(persona: Persona, intents: list[str], order_ids: list[str], messages: list[str]) -> str:
    order = ("order " + " and ".join(order_ids)) if order_ids else "an order"
    policy_text = " ".join(m for m, i in zip(messages, intents, strict=False) if i == "policy_question")
    topic = next((t for rx, t in POLICY_TOPICS if rx.search(policy_text)), "store's")
    wanted = [i for i in dict.fromkeys(intents) if i != "small_talk"] or ["small_talk"]
    goals = [GOALS.get(i, "needs help that involves " + i.removeprefix("use_").replace("_", " ")) for i in wanted]
    seen_order = False
    for k, g in enumerate(goals):  # name the order once, then "it"
        goals[k] = g.format(order="it" if seen_order else order, topic=topic)
        seen_order = seen_order or "{order}" in g
    text = f"{persona.name}, a {persona.communication_style or 'plain'} customer, {_join(goals[:3])}."
    return text if len(text) <= 400 else text[:399].rsplit(" ", 1)[0] + "…"


def _gist(text: str, limit: int = 110) -> str:
    """The first sentence of an answer that says something (greetings like "Done!" skipped)."""
    sentences = re.split(r"(?<=[.!?])\s+", text.strip())
    while len(sentences) > 1 and len(_words(sentences[0])) < 4:
        sentences.pop(0)
    first = re.sub(r"[.!?]+(\s)", r",\1", sentences[0].rstrip(".!? ")).replace('"', "'")
    return first if len(first) <= limit else first[:limit].rsplit(" ", 1)[0] + "…"


def outcome_text(transcript: Transcript, category: str, intents: list[str]) -> str:
    turns = transcript.turns
    calls = [c for t in turns for c in t.tool_calls]
    names = list(dict.fromkeys(c.name or "an unnamed tool" for c in calls))
    n = f"{len(turns)} turn" + ("s" if len(turns) != 1 else "")
    sentences = [f"Over {n}, the agent called {_join(names)}." if names
                 else f"Over {n}, the agent answered without calling any tools."]
    failed_tools = [c.name or "a tool" for c in calls if c.status == "error"]
    failed_turns = [t.turn_index for t in turns if t.status == "error"]
    problems = []
    if failed_tools:
        distinct = list(dict.fromkeys(failed_tools))
        problems.append(f"the {_join(distinct)} call{'s' if len(distinct) > 1 else ''} failed"
                        + (f" {len(failed_tools)} times" if len(failed_tools) > 1 else ""))
    if failed_turns:
        problems.append("turn " + _join([str(i) for i in failed_turns]) + " failed with an error")
    if problems:
        sentences.append(_join(problems).capitalize() + ".")
    if category == "escalated":
        sentences.append("The agent handed the conversation over to a human.")
    # the gist of the last answer to a real request (closing small talk skipped)
    answered = [t.assistant_message for t, i in zip(turns, intents, strict=False) if (t.assistant_message or "").strip()]
    substantive = [t.assistant_message for t, i in zip(turns, intents, strict=False)
                   if (t.assistant_message or "").strip() and i != "small_talk"]
    if not turns or not (turns[-1].assistant_message or "").strip():
        sentences.append("The last user message got no answer.")
    else:
        sentences.append(f'Its final answer to the request was: "{_gist((substantive or answered)[-1])}".')
    return " ".join(sentences[:4])


def steps_for(transcript: Transcript, intents: list[str], category: str) -> list[str]:
    steps: list[str] = []
    for turn, intent in zip(transcript.turns, intents, strict=False):
        labels = [f"intent:{intent}"] + [("tool_error:" if c.status == "error" else "tool:") + (c.name or "unknown")
                                        for c in turn.tool_calls]
        for label in labels:
            if not steps or steps[-1] != label:  # consecutive repeats collapse
                steps.append(label)
    steps.append(f"outcome:{category}")
    return steps


def describe(transcript: Transcript) -> ConversationNotes:
    intents = [classify_intent(t.user_message, [c.name or "" for c in t.tool_calls]) for t in transcript.turns]
    persona = infer_persona(transcript.user_id, [t.user_message or "" for t in transcript.turns])
    category = branch_category(transcript)
    return ConversationNotes(
        intents=intents, persona=persona, branch_category=category, writer="offline",
        situation=situation_text(persona, intents, _order_ids(transcript),
                                 [t.user_message or "" for t in transcript.turns]),
        outcome=outcome_text(transcript, category, intents), steps=steps_for(transcript, intents, category))


# ---------------------------------------------------------------- persona variation
def load_personas(path: str | Path = PERSONAS_PATH) -> list[Persona]:
    return [Persona.model_validate(p) for p in json.loads(Path(path).read_text(encoding="utf-8"))]


def vary_persona(persona: Persona, rng: random.Random, library: list[Persona]) -> Persona:
    """Another user who writes like ``persona``: identity (persona_id, name, age, occupation,
    location, personality) from a library persona (another name than the original's when there is
    one), writing style and languages from the original with one of verbosity / typos / emoji /
    slang nudged one step up or down; without a library only the nudge."""
    others = [p for p in library if p.name != persona.name] or library
    base = rng.choice(others) if others else persona
    style = persona.model_dump(include=set(STYLE_FIELDS) | {"languages"})
    field = rng.choice(["verbosity", "typos", "emoji_usage", "slang_usage"])
    step = rng.choice([-1, 1])
    style[field] = LEVELS[min(max(LEVELS.index(style[field]) + step, 0), len(LEVELS) - 1)]
    return base.model_copy(update=style)
