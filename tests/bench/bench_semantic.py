"""'Is this answer the same as production's?': calibration and speed of tasks/common/semantic.py.

    uv run python tests/bench/bench_semantic.py [--calibrate] [--speed] [--pairs 10000] [--model wordllama]

--calibrate (the default with --speed): the similarity distribution of each category of the
calibration set (tests/cases/semantic/pairs.json) with the model and with plain rapidfuzz,
a sweep of thresholds, and how many pairs of each category equivalent() gets right.
--speed: the model's load time (a fresh process: import + load), then the similarity of
--pairs pairs of distinct texts, batched (one similarities() call), and equivalent() pair by
pair (what an evaluator calling it once a turn gets).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]

CASES = ROOT / "tests" / "cases" / "semantic" / "pairs.json"
CATEGORIES = ("paraphrase", "near_miss", "blind_spot", "echo", "filler", "unrelated")
LEXICAL_TODAY = 0.8  # ground_truth_match's threshold on rapidfuzz alone (no embedding package)


def load_pairs() -> list[dict]:
    return json.loads(CASES.read_text())["pairs"]


def _dist(xs: list[float]) -> str:
    xs = sorted(xs)
    return (f"min {xs[0]:.2f}  p10 {xs[len(xs) // 10]:.2f}  median {statistics.median(xs):.2f}  "
            f"max {xs[-1]:.2f}")


def _sweep(label: str, sims: list[float], missing: list[bool], negated: list[bool],
           by_cat: dict[str, list[int]]) -> None:
    """How equivalent() would do at each threshold (facts and negation as they are)."""
    print(f"threshold sweep ({label}): paraphrases passing / near-misses failing / echoes failing / "
          "all must-fail failing")
    must_fail = [i for c in CATEGORIES[1:] for i in by_cat[c]]
    for t in (0.4, 0.45, 0.5, 0.52, 0.54, 0.56, 0.58, 0.6, 0.62, 0.64, 0.66, 0.7, 0.75, 0.8):
        ok = [not missing[i] and not negated[i] and sims[i] >= t for i in range(len(sims))]
        cells = [f"{sum(ok[i] for i in by_cat['paraphrase'])}/{len(by_cat['paraphrase'])}"]
        cells += [f"{sum(not ok[i] for i in by_cat[c])}/{len(by_cat[c])}" for c in ("near_miss", "echo")]
        cells.append(f"{sum(not ok[i] for i in must_fail)}/{len(must_fail)}")
        print(f"  {t:.2f}  " + "  ".join(f"{x:>7}" for x in cells))
    print()


def calibrate(model: str) -> None:
    from tasks.common import semantic

    pairs = load_pairs()
    texts = [(p["answer"], p["expected"]) for p in pairs]
    sims = {"model": semantic.similarities(texts, model=model), "rapidfuzz": semantic.similarities(texts, model="none")}
    missing = [bool(semantic.facts_missing(a, e)) for a, e in texts]
    negated = [bool(semantic.negation_differs(a, e)) for a, e in texts]
    by_cat: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(pairs):
        by_cat[p["category"]].append(i)

    print(f"calibration set: {len(pairs)} pairs ({', '.join(f'{c} {len(by_cat[c])}' for c in CATEGORIES)})\n")
    for name, label in (("model", model), ("rapidfuzz", "rapidfuzz (token_set_ratio + ratio) / 2")):
        print(f"similarity, {label}:")
        for c in CATEGORIES:
            print(f"  {c:11} {_dist([sims[name][i] for i in by_cat[c]])}")
        # the pairs that only the similarity can fail: facts kept, no negation flipped
        free = [sims[name][i] for c in CATEGORIES[1:] for i in by_cat[c] if not missing[i] and not negated[i]]
        print(f"  must-fail pairs with every fact kept and no negation flipped: {len(free)}, highest "
              f"{max(free):.2f}\n")

    for name, label in (("model", model), ("rapidfuzz", "none")):
        _sweep(label, sims[name], missing, negated, by_cat)

    print(f"\nequivalent() right per category: {model} (threshold {semantic.THRESHOLDS[model]}), "
          f"none (facts + negation + rapidfuzz, {semantic.THRESHOLDS['none']}), and rapidfuzz alone >= "
          f"{LEXICAL_TODAY} (today's ground_truth_match without an embedding package)")
    print(f"  {'category':11} {'pairs':>5} {model:>14} {'none':>14} {'rapidfuzz':>14}")
    wrong: list[str] = []
    for c in CATEGORIES:
        idx = by_cat[c]
        want = c == "paraphrase"
        cells = []
        for m in (model, "none"):
            right = [i for i in idx if semantic.equivalent(*texts[i], model=m, message=pairs[i].get("message")).passed
                     == want]
            cells.append(f"{len(right)} ({100 * len(right) / len(idx):.0f}%)")
            if m == model:
                wrong += [f"{pairs[i]['id']} {c} {pairs[i]['kind']}: "
                          f"{semantic.equivalent(*texts[i], model=m, message=pairs[i].get('message')).reason}"
                          for i in idx if i not in right]
        lex = sum((sims["rapidfuzz"][i] >= LEXICAL_TODAY) == want for i in idx)
        cells.append(f"{lex} ({100 * lex / len(idx):.0f}%)")
        print(f"  {c:11} {len(idx):>5} " + " ".join(f"{x:>14}" for x in cells))
    print(f"\nwrong with {model}:")
    for w in wrong:
        print("  " + w)


def _texts(n: int, seed: int = 7) -> list[tuple[str, str]]:
    """n pairs of distinct texts: calibration answers with their ids and amounts varied."""
    rng = random.Random(seed)
    base = [(p["answer"], p["expected"]) for p in load_pairs()]
    out = []
    for k in range(n):
        a, e = rng.choice(base)
        tag = f" (case C{k:05d}, ${rng.randint(1, 999)}.{rng.randint(0, 99):02d})"
        out.append((a + tag, e + tag))
    return out


def speed(model: str, n: int) -> None:
    from tasks.common import semantic

    code = ("import time; t = time.perf_counter(); from tasks.common import semantic; "
            f"semantic.embedder({model!r}); print(time.perf_counter() - t)")
    cold = [float(subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout) for _ in range(3)]
    print(f"\nload ({model}, a fresh process, import + load, 3 runs): "
          f"{', '.join(f'{x * 1000:.0f}' for x in cold)} ms")
    t = time.perf_counter()
    semantic.embedder(model)
    print(f"load in this process: {(time.perf_counter() - t) * 1000:.0f} ms")

    pairs = _texts(n)
    chars = sum(len(a) + len(e) for a, e in pairs) / (2 * n)
    cold = semantic._scanned.cache_clear  # each phase reads its texts for the first time
    cold()
    t = time.perf_counter()
    sims = semantic.similarities(pairs, model=model)
    dt = time.perf_counter() - t
    print(f"similarities(): {n} pairs ({2 * n} distinct texts, {chars:.0f} chars each on average), batched: "
          f"{dt:.2f} s, {n / dt:,.0f} pairs/s (mean similarity {statistics.mean(sims):.2f})")
    m = min(n, 2000)
    cold()
    t = time.perf_counter()
    for a, e in pairs[:m]:
        semantic.similarity(a, e, model=model)
    dt = time.perf_counter() - t
    print(f"similarity(), one call a pair: {m} pairs in {dt:.2f} s, {m / dt:,.0f} pairs/s")
    cold()
    t = time.perf_counter()
    for a, e in pairs[:m]:
        semantic.equivalent(a, e, model=model)
    dt = time.perf_counter() - t
    print(f"equivalent(), one call a pair (facts, negation, similarity): {m} pairs in {dt:.2f} s, "
          f"{m / dt:,.0f} pairs/s")
    cold()
    t = time.perf_counter()
    for a, e in pairs[:m]:
        semantic.facts_missing(a, e)
        semantic.negation_differs(a, e)
    dt = time.perf_counter() - t
    print(f"  of which facts + negation: {dt / m * 1e6:.0f} us a pair")
    t = time.perf_counter()
    for a, e in pairs[:m]:
        semantic.equivalent(a, e, model=model)
    dt = time.perf_counter() - t
    print(f"equivalent() again on the same pairs (their facts read, as when production's answer is "
          f"compared with each replay): {m / dt:,.0f} pairs/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calibrate", action="store_true")
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--pairs", type=int, default=10_000)
    ap.add_argument("--model", default="wordllama", choices=("wordllama", "sentence-transformers"))
    args = ap.parse_args()
    both = not args.calibrate and not args.speed
    if args.calibrate or both:
        calibrate(args.model)
    if args.speed or both:
        speed(args.model, args.pairs)


if __name__ == "__main__":
    main()
