"""tasks/common/semantic.py: key facts, the negation check, similarity with the bundled
wordllama model (loaded once, lazily, offline), and equivalent() against the calibration set
(tests/cases/semantic/pairs.json)."""

from __future__ import annotations

import dataclasses
import json
import socket
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tasks.common import semantic
from tasks.common.errors import ReplayError
from tasks.common.semantic import (
    DEFAULT_THRESHOLD,
    Equivalence,
    SemanticModelMissing,
    equivalent,
    facts_missing,
    is_closing,
    key_facts,
    negation_differs,
    repeats,
    similarities,
    similarity,
)

ROOT = Path(__file__).resolve().parents[3]
PAIRS = json.loads((ROOT / "tests" / "cases" / "semantic" / "pairs.json").read_text())["pairs"]

pytestmark = pytest.mark.timeout(60)


# --------------------------------------------------------------------------- key facts


@pytest.mark.parametrize("text, facts", [
    ("Order A1042 shipped", {"A1042"}),
    ("refund RF-48213", {"RF48213"}),
    ("$49.99", {"49.99"}),
    ("49.99 dollars", {"49.99"}),
    ("49,99 €", {"49.99"}),
    ("€1.234,56", {"1234.56"}),
    ("$1,234.56", {"1234.56"}),
    ("$54.00", {"54"}),
    ("20,000 mm", {"20000"}),
    ("2.1 kg", {"2.1"}),
    ("22 November", {"22 nov"}),
    ("22nd of November 2026", {"22 nov"}),
    ("Nov 22", {"22 nov"}),
    ("November 22nd, 2026", {"22 nov"}),
    ("2026-11-22", {"22 nov"}),
    ("22/11", {"22 nov"}),
    ("11/22/2026", {"22 nov"}),
    ("22.11.2026", {"22 nov"}),
    ("5/6", {"5", "6"}),  # a date either way round: two numbers
    ("31/02", {"31", "2"}),  # no such date
    ("29 Feb", {"29 feb"}),
    ("24/7 support", {"24", "7"}),
    ("2 pm", {"14:00"}),
    ("2:30pm", {"14:30"}),
    ("14:00", {"14:00"}),
    ("12 am", {"00:00"}),
    ("20%", {"20%"}),
    ("20 percent", {"20%"}),
    ("in 5-7 business days", {"5", "7"}),
    ("our 30-day window", {"30"}),
    ("a 5mm mat", {"5"}),
    ("Maria.Garcia@Example.com", {"maria.garcia@example.com"}),
    ("tracking 1Z84A0X70312345678", {"1Z84A0X70312345678"}),
    ("tracking 0046000062812", {"0046000062812"}),  # long digit runs keep their zeros
    ("size 05", {"5"}),
    ("with UPS", {"UPS"}),
    ("OK, 49.99 USD", {"49.99"}),  # OK and currency codes are not names
    ("PLEASE HELP ME NOW", set()),  # shouting is not a row of names
    ("How can I help you today?", set()),
    ("", set()),
    (None, set()),
])
def test_key_facts(text, facts):
    assert key_facts(text) == facts


def test_key_facts_of_a_real_answer():
    text = ("Good morning! Order A1042 (Trail Runner 2, women's size 39) shipped on 18 November with UPS, "
            "tracking number 1Z84A0X70312345678, and is expected to arrive on 22 November.")
    assert key_facts(text) == {"A1042", "2", "39", "18 nov", "UPS", "1Z84A0X70312345678", "22 nov"}


def test_canonical_text_writes_facts_in_one_form():
    assert semantic.canonical_text("Refund RF-48213 of $54.00 on Nov 22 at 2 pm") == \
        "Refund RF48213 of $54 on 22 nov at 14:00"
    # a private-use character in the text is not taken for a placeholder
    assert semantic.canonical_text("\ue000 A1042 \ue001") == "  A1042  "
    assert key_facts("\ue000 A1042") == {"A1042"}


@hsettings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFFFF), max_size=80))
def test_any_text_reads_and_equals_itself(text):
    facts = key_facts(text)
    assert all(isinstance(f, str) and f for f in facts)
    semantic.canonical_text(text)
    negation_differs(text, text + " not")
    assert equivalent(text, text, model="none").passed


def test_facts_missing_accepts_other_forms():
    assert facts_missing("We sent A1042 out via UPS on Nov 18", "Your order A1042 shipped on 18 November with UPS") == []
    assert facts_missing("in five to seven business days", "in 5-7 business days") == []
    assert facts_missing("twenty-five minutes", "25 minutes") == []
    assert facts_missing("label RL 88412", "label RL-88412") == []  # an id split by a space
    assert facts_missing("refund of $45.00", "refund of $54.00") == ["54"]
    assert facts_missing("it ships on Nov 19", "it ships on 18 November") == ["18 nov"]
    assert facts_missing("anything", None) == []
    assert facts_missing(None, "order A1042") == ["A1042"]


# --------------------------------------------------------------------------- negation


@pytest.mark.parametrize("answer, expected, differ", [
    ("Order A1042 has not shipped yet.", "Order A1042 has shipped.", ["shipped"]),
    ("The hoodie is not in stock in size L.", "The hoodie is in stock in size L.", ["stock"]),
    ("We cannot ship order A1300 to Austria.", "We can ship order A1300 to Austria.", ["ship"]),
    ("The label does not go to your email.", "The label goes to your email.", ["go"]),
    ("Neither is in stock!", "Both are in stock!", ["stock"]),
    # the same negation in other words, or a negation of words the other answer does not use
    ("You don't need to return the watch.", "There's no need to return the watch.", []),
    ("Sorry you never got the confirmation.", "Sorry the confirmation didn't reach you.", []),
    ("Don't hesitate to ask if anything else comes up.", "If anything else comes up, just ask.", []),
    ("No problem at all! Have a pleasant day.", "You're welcome! Have a pleasant day.", []),
    ("Oh no, sorry they don't fit!", "Sorry they don't fit!", []),
    (None, "It has shipped.", []),
])
def test_negation_differs(answer, expected, differ):
    assert negation_differs(answer, expected) == differ
    assert negation_differs(expected, answer) == differ


# --------------------------------------------------------------------------- the model


def test_importing_the_module_loads_no_model():
    code = ("import sys, tasks.common.semantic as s; "
            "print(sorted(m for m in ('numpy', 'wordllama', 'tokenizers', 'sentence_transformers') if m in sys.modules),"
            " s._LOADED)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] {}"


def test_wordllama_loads_offline_and_opens_no_socket(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("a socket was opened while loading the model")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    emb = semantic._load_wordllama()
    vecs = emb(["Your order A1042 shipped.", "We sent A1042 out."])
    assert vecs.shape == (2, 256)
    assert abs(float(vecs[0] @ vecs[0]) - 1.0) < 1e-5


def test_loading_leaves_logging_alone():
    """wordllama calls logging.basicConfig(level=INFO) on import; loading it through us leaves
    the root logger as it was."""
    code = ("import logging, tasks.common.semantic as s; s.embedder('wordllama'); r = logging.getLogger(); "
            "print(len(r.handlers), r.level)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", str(logging_warning())]


def logging_warning() -> int:
    import logging

    return logging.WARNING


def test_missing_bundled_files_fail_in_one_line(monkeypatch, tmp_path):
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "l2_supercat_256.safetensors").write_bytes(b"")
    monkeypatch.setattr(semantic, "_package_dir", lambda name: tmp_path)
    with pytest.raises(SemanticModelMissing) as e:
        semantic._load_wordllama()
    msg = str(e.value)
    assert isinstance(e.value, ReplayError) and "\n" not in msg
    assert "l2_supercat_tokenizer_config.json" in msg and "l2_supercat_256" not in msg
    monkeypatch.setattr(semantic, "_package_dir", lambda name: None)
    with pytest.raises(SemanticModelMissing, match="not installed"):
        semantic._load_wordllama()


def test_sentence_transformers_without_the_package_is_an_error(monkeypatch):
    real = semantic.importlib.util.find_spec
    monkeypatch.setattr(semantic.importlib.util, "find_spec",
                        lambda name, *a: None if name == "sentence_transformers" else real(name, *a))
    with pytest.raises(SemanticModelMissing, match="sentence-transformers"):
        semantic._load_sentence_transformers()


def test_embedder_loads_once_across_threads(monkeypatch):
    calls = []
    real = semantic._LOADERS["wordllama"]

    def counting():
        calls.append(1)
        return real()

    monkeypatch.setattr(semantic, "_LOADED", {})
    monkeypatch.setitem(semantic._LOADERS, "wordllama", counting)
    got = []
    threads = [threading.Thread(target=lambda: got.append(semantic.embedder("wordllama"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len({id(g) for g in got}) == 1 and got[0].name == "wordllama"


def test_the_model_comes_from_the_settings(monkeypatch):
    from models.settings import Settings

    monkeypatch.setenv("REPLAY_SEMANTIC_MODEL", "none")
    assert Settings().semantic_model == "none"
    monkeypatch.setattr(semantic, "_CHOSEN", [])
    assert semantic.embedder() is None
    assert semantic.threshold_for() == semantic.THRESHOLDS["none"]
    with pytest.raises(ReplayError, match="unknown semantic model"):
        semantic.embedder("word2vec")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- similarity


def test_similarity_edges():
    assert similarity(None, None) == 1.0
    assert similarity("Done!", None) == 0.0
    assert similarity("", "Done") == 0.0
    assert similarity("Done!", "  done ") == 1.0
    assert similarity("The order shipped.", "Shipped, the order.") < 1.0  # only equal texts score 1.0
    paraphrase = similarity("We sent A1042 out via UPS on Nov 18", "Your order A1042 shipped on 18 November with UPS")
    unrelated = similarity("The Grip Pro weighs 1.8 kg.", "Your order A1042 shipped on 18 November with UPS")
    assert 0.0 <= unrelated < DEFAULT_THRESHOLD <= paraphrase < 1.0


def test_similarities_embed_all_texts_in_one_call(monkeypatch):
    real = semantic.embedder("wordllama")
    calls = []

    def encode(texts):
        calls.append(len(texts))
        return real.encode(texts)

    monkeypatch.setitem(semantic._LOADED, "wordllama", dataclasses.replace(real, encode=encode))
    pairs = [("Order A1042 shipped.", "A1042 is on its way."), ("Done!", "done"), ("Thanks!", "A1042 is on its way."),
             (None, "x")]
    sims = similarities(pairs, model="wordllama")
    assert calls == [3]  # one call; each distinct text once; equal and missing pairs need none
    assert sims[1] == 1.0 and sims[3] == 0.0
    assert sims == pytest.approx([similarity(a, b, model="wordllama") for a, b in pairs], abs=1e-6)


def test_lexical_without_a_model():
    assert semantic.embedder("none") is None
    assert 0.0 < similarity("Your order shipped today", "Your order has shipped today", model="none") < 1.0


# --------------------------------------------------------------------------- equivalent


def test_equivalent():
    e = equivalent("We sent A1042 out via UPS on Nov 18", "Your order A1042 shipped on 18 November with UPS")
    assert e.passed and not e.facts_missing and e.reason.startswith("same facts, similarity")
    e = equivalent("Your order A1042 shipped on 19 November with UPS", "Your order A1042 shipped on 18 November with UPS")
    assert not e.passed and e.facts_missing == ["18 nov"] and "missing 1 fact(s): 18 nov" in e.reason
    e = equivalent("Your order A1042 has not shipped with UPS.", "Your order A1042 has shipped with UPS.")
    assert not e.passed and e.negation_differs == ["shipped"] and e.similarity > DEFAULT_THRESHOLD
    e = equivalent("You said: where is my order A1042?", "Your order A1042 shipped on 18 November with UPS")
    assert not e.passed and "\n" not in e.reason
    assert equivalent("Done!", "done").passed and equivalent("Done!", "done").similarity == 1.0
    assert not equivalent(None, "Done").passed and equivalent(None, "Done").reason == "no answer"
    assert not equivalent("Done", " ").passed
    assert equivalent(None, None).passed
    assert not equivalent("It is on its way.", "It is on its way now.", threshold=1.0).passed
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.passed = True  # type: ignore[misc]
    assert isinstance(e, Equivalence)


# --------------------------------------------------------------------------- the calibration set


@pytest.mark.parametrize(("text", "closing"), [
    ("Happy to help. Let me know if you need anything more.", True),
    ("You're welcome! Is there anything else I can help you with today?", True),
    ("Anytime! Sorry again for the mix-up.", True),
    ("Great to hear it went smoothly! Enjoy the rest of your day.", True),
    ("Thank you, you too! Our billing team will be in touch soon.", False),  # a commitment
    ("Glad to hear it arrived. Your refund of $54 is on its way.", False),  # a fact
    ("Could you tell me a bit more, for example your order number?", False),  # a question
    ("Sorry, I cannot help with refunds today.", False),
    ("", False),
])
def test_is_closing(text, closing):
    assert is_closing(text) is closing


def test_two_closings_are_equivalent_and_an_echo_is_not():
    eq = equivalent("Glad I could sort that out for you. Just write again whenever something else comes up.",
                    "You're welcome! Is there anything else I can help you with today?")
    assert eq.passed and eq.reason.startswith("both only close the conversation") and eq.similarity < 0.58
    user = "Thank you very much for your help, have a nice day."
    echo = equivalent(f"You said: {user}", "Thank you, you too! Have a great day.", message=user)
    assert not echo.passed and echo.reason.startswith("repeats the user's message")
    assert repeats(f"You said: {user}", user) and not repeats("You're welcome!", user)
    # production repeating the user (a confirmation) lets the replay do it too
    assert equivalent("Order A1042, you said?", "Order A1042, you said?", message="Order A1042").passed


def test_the_calibration_set_is_as_described():
    cats = Counter(p["category"] for p in PAIRS)
    assert len(PAIRS) >= 60 and cats["paraphrase"] >= 20 and cats["near_miss"] >= 20 and cats["echo"] >= 10
    assert set(cats) == {"paraphrase", "near_miss", "blind_spot", "echo", "filler", "unrelated"}
    assert len({p["id"] for p in PAIRS}) == len(PAIRS)
    # every paraphrase keeps its expected answer's facts: the set tests wording, not typos
    assert [p["id"] for p in PAIRS if p["category"] == "paraphrase" and facts_missing(p["answer"], p["expected"])] == []


def _outcomes(category: str) -> tuple[int, list[str]]:
    """(pairs of ``category`` equivalent() gets right, ids of those it gets wrong)."""
    cases = [p for p in PAIRS if p["category"] == category]
    wrong = [p["id"] for p in cases
             if equivalent(p["answer"], p["expected"], message=p.get("message")).passed != (category == "paraphrase")]
    return len(cases), wrong


def test_calibration_paraphrases_pass():
    n, wrong = _outcomes("paraphrase")
    assert (n - len(wrong)) / n >= 0.95, wrong


def test_calibration_echoes_fillers_and_unrelated_answers_fail():
    for category in ("echo", "filler", "unrelated"):
        assert _outcomes(category)[1] == [], category


def test_calibration_near_misses_fail():
    n, wrong = _outcomes("near_miss")
    assert (n - len(wrong)) / n >= 0.90, wrong
