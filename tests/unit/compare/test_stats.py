"""tasks/stats.py on constructed data with known answers."""

from __future__ import annotations

import math
import random

import pytest

from tasks.compare.stats import compare_metric, flaky_rows, noise_floor, paired_bootstrap


def noisy(n: int, shift: float, sd: float, seed: int) -> tuple[list[float], list[float]]:
    rng = random.Random(seed)
    a = [rng.uniform(0.4, 0.9) for _ in range(n)]
    b = [x + shift + rng.gauss(0, sd) for x in a]
    return a, b


# --------------------------------------------------------------------------- paired_bootstrap


def test_identical_a_b_gives_zero_delta_and_a_ci_with_zero():
    a, _ = noisy(100, 0, 0, seed=1)
    r = paired_bootstrap(a, list(a))
    assert r["mean_delta"] == 0.0
    assert r["lo"] <= 0.0 <= r["hi"]
    assert r["p_value_two_sided"] == 1.0
    assert r["n_pairs"] == 100


def test_a_shift_of_minus_0_3_is_found_with_a_tight_ci():
    a, b = noisy(200, -0.3, 0.02, seed=2)
    r = paired_bootstrap(a, b)
    assert r["mean_delta"] == pytest.approx(-0.3, abs=0.005)
    assert r["hi"] < 0  # excludes 0
    assert r["lo"] < -0.3 + 0.01 and r["hi"] > -0.3 - 0.01  # contains the true shift (±)
    assert r["p_value_two_sided"] == pytest.approx(1 / 2001)  # no resample as extreme


def test_ci_width_matches_the_normal_theory():
    # d ~ N(0.05, 0.1), 400 rows: the 95% CI of the mean is about ±1.96 * 0.1 / 20 = ±0.0098
    rng = random.Random(3)
    d = [rng.gauss(0.05, 0.1) for _ in range(400)]
    sd = math.sqrt(sum((x - sum(d) / 400) ** 2 for x in d) / 399)
    r = paired_bootstrap([0.0] * 400, d, n=4000)
    half = (r["hi"] - r["lo"]) / 2
    assert half == pytest.approx(1.96 * sd / 20, rel=0.1)
    assert r["lo"] < sum(d) / 400 < r["hi"]


def test_constant_difference_is_certain():
    r = paired_bootstrap([0.1, 0.5, 0.7], [0.2, 0.6, 0.8])
    assert r["mean_delta"] == pytest.approx(0.1)
    assert r["lo"] == r["hi"] == r["mean_delta"]
    assert r["p_value_two_sided"] < 0.001


def test_symmetric_noise_is_not_significant():
    rng = random.Random(4)
    d = [rng.choice([-1.0, 1.0]) * rng.uniform(0, 1) for _ in range(60)]
    r = paired_bootstrap([0.0] * 60, d)
    assert r["lo"] < 0 < r["hi"]
    assert r["p_value_two_sided"] > 0.05


def test_deterministic_for_a_seed():
    a, b = noisy(50, 0.05, 0.1, seed=5)
    assert paired_bootstrap(a, b, seed=7) == paired_bootstrap(a, b, seed=7)
    assert paired_bootstrap(a, b, seed=7)["lo"] != paired_bootstrap(a, b, seed=8)["lo"]


def test_missing_values_and_tiny_samples():
    r = paired_bootstrap([1.0, None, float("nan"), 0.5], [0.0, 1.0, 1.0, 0.5])
    assert r["n_pairs"] == 2 and r["mean_delta"] == -0.5
    one = paired_bootstrap([1.0], [0.0])
    assert one["mean_delta"] == -1.0 and one["lo"] is None and one["p_value_two_sided"] is None
    none = paired_bootstrap([], [])
    assert none == {"mean_delta": None, "lo": None, "hi": None, "p_value_two_sided": None,
                    "n_pairs": 0}
    with pytest.raises(ValueError, match="length"):
        paired_bootstrap([1.0], [1.0, 2.0])
    with pytest.raises(ValueError):
        paired_bootstrap([1.0], [1.0], ci=1.0)


# --------------------------------------------------------------------------- noise_floor


def test_noise_floor_known_value():
    reps = {"r1": [0.0, 1.0],           # |0-1| = 1
            "r2": [0.5, 0.5],           # 0
            "r3": [1.0, 0.0, 1.0],      # pairs 1, 0, 1 -> 2/3
            "r4": [0.7]}                # one repetition: ignored
    assert noise_floor(reps) == pytest.approx((1 + 0 + 2 / 3) / 3)


def test_noise_floor_of_gaussian_repetitions():
    # two runs per row with noise SD 0.1: E|x - y| = 2 * 0.1 / sqrt(pi) = 0.1128
    rng = random.Random(6)
    reps = {}
    for r in range(3000):
        base = rng.uniform(0, 1)
        reps[r] = [base + rng.gauss(0, 0.1), base + rng.gauss(0, 0.1)]
    assert noise_floor(reps) == pytest.approx(2 * 0.1 / math.sqrt(math.pi), rel=0.05)


def test_noise_floor_unknown_and_zero():
    assert noise_floor({}) is None
    assert noise_floor({"a": [1.0], "b": []}) is None
    assert noise_floor({"a": [1.0, 1.0], "b": [3.0, 3.0, 3.0]}) == 0.0
    assert noise_floor({"a": [True, False]}) == 1.0


# --------------------------------------------------------------------------- flaky_rows


def test_flaky_rows():
    reps = {3: [True, True], 1: [True, False, True], 2: [0.9, 0.2], 4: [0.81, 0.79],
            5: [0.5], 0: [0.7, 0.7, 0.7]}
    assert flaky_rows(reps, threshold=0.3) == [1, 2]
    # with a pass threshold, 0.81 vs 0.79 disagree on pass/fail
    assert flaky_rows(reps, threshold=0.3, pass_threshold=0.8) == [1, 2, 4]
    assert flaky_rows(reps, threshold=0.01) == [1, 2, 4]
    assert flaky_rows({}, threshold=0.1) == []


# --------------------------------------------------------------------------- compare_metric


def by_row(xs):
    return {i: x for i, x in enumerate(xs)}


def test_compare_identical_is_same():
    a, _ = noisy(100, 0, 0, seed=9)
    r = compare_metric(by_row(a), by_row(a))
    assert r["delta"] == 0.0 and r["ci"][0] <= 0 <= r["ci"][1]
    assert (r["significant"], r["direction"]) == (False, "same")


def test_compare_regression_and_improvement():
    a, b = noisy(200, -0.3, 0.02, seed=10)
    r = compare_metric(by_row(a), by_row(b))
    assert (r["significant"], r["direction"]) == (True, "regression")
    assert r["ci"][1] < 0 and r["n_rows"] == 200 and r["noise_floor"] is None
    # the same drop on a lower-is-better metric (latency, tokens) is an improvement
    assert compare_metric(by_row(a), by_row(b), higher_is_better=False)["direction"] == "improvement"
    up = compare_metric(by_row(b), by_row(a))
    assert (up["direction"], up["delta"]) == ("improvement", pytest.approx(0.3, abs=0.005))


def test_compare_needs_the_change_to_beat_the_noise_floor():
    a, b = noisy(300, 0.05, 0.01, seed=11)  # a real but small shift: CI excludes 0
    r = compare_metric(by_row(a), by_row(b))
    assert r["significant"] is True and r["direction"] == "improvement"
    r = compare_metric(by_row(a), by_row(b), noise=0.1)  # re-runs move a row by 0.1
    assert r["ci"][0] > 0 and r["significant"] is False and r["direction"] == "same"


def test_compare_with_repetitions_uses_their_noise_and_means():
    # A: every row run twice, 0.6 and 0.8 (mean 0.7, noise 0.2); B: 0.65 twice (noise 0)
    a = {r: [0.6, 0.8] for r in range(50)}
    b = {r: [0.65, 0.65] for r in range(50)}
    r = compare_metric(a, b)
    assert r["delta"] == pytest.approx(-0.05)
    assert r["noise_floor"] == pytest.approx(0.1)  # rows of A 0.2, rows of B 0: mean 0.1
    assert r["significant"] is False  # |-0.05| is within the noise
    c = {r: [0.2, 0.2] for r in range(50)}
    r = compare_metric(a, c)
    assert (r["significant"], r["direction"]) == (True, "regression")


def test_compare_only_pairs_rows_both_sides_have():
    r = compare_metric({0: 1.0, 1: 1.0, 2: None}, {1: 0.0, 2: 0.5, 3: 0.0})
    assert r["n_rows"] == 1 and r["delta"] == -1.0
    assert r["ci"] is None and r["significant"] is False and r["direction"] == "same"
