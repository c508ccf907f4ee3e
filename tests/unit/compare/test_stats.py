"""tasks/compare/stats.py on constructed data with known answers."""

from __future__ import annotations

import math
import random
from math import comb

import pytest

from tasks.compare.stats import cluster_bootstrap, noise_floor, permutation_test, significant_tests


def units(values_a: list[list[float]], values_b: list[list[float]]):
    """Unit means as (num, den) pairs of each side, as compare feeds them."""
    return ([sum(v) / len(v) for v in values_a], [1.0] * len(values_a),
            [sum(v) / len(v) for v in values_b], [1.0] * len(values_b))


# --------------------------------------------------------------------------- cluster_bootstrap


def test_identical_sides_give_zero_delta_and_no_significance():
    rng = random.Random(1)
    a = [[rng.uniform(0.4, 0.9)] for _ in range(100)]
    r = cluster_bootstrap(*units(a, a))
    assert r["delta"] == 0.0 and r["lo"] == r["hi"] == 0.0
    assert r["p_value_two_sided"] == 1.0 and r["n_units"] == 100


def test_a_shift_is_found_with_a_tight_interval():
    rng = random.Random(2)
    a = [rng.uniform(0.4, 0.9) for _ in range(200)]
    b = [x - 0.3 + rng.gauss(0, 0.02) for x in a]
    r = cluster_bootstrap(a, [1.0] * 200, b, [1.0] * 200)
    assert r["delta"] == pytest.approx(-0.3, abs=0.005)
    assert r["hi"] < 0 and r["lo"] > -0.35
    assert r["p_value_two_sided"] == pytest.approx(1 / 2001)


def test_interval_width_matches_normal_theory_for_paired_units():
    # d ~ N(0.05, 0.1) over 400 units: the 95 % interval of the mean is about +-1.96 * sd / 20
    rng = random.Random(3)
    d = [rng.gauss(0.05, 0.1) for _ in range(400)]
    sd = math.sqrt(sum((x - sum(d) / 400) ** 2 for x in d) / 399)
    r = cluster_bootstrap([0.0] * 400, [1.0] * 400, d, [1.0] * 400, n=4000)
    assert (r["hi"] - r["lo"]) / 2 == pytest.approx(1.96 * sd / 20, rel=0.1)


def test_repeated_rows_of_one_unit_are_one_unit():
    # 3 conversations, each replayed 10 times: the evidence is 3 units, not 30 rows
    a = [[1.0] * 10, [1.0] * 10, [1.0] * 10]
    b = [[1.0] * 10, [1.0] * 10, [0.0] * 10]
    r = cluster_bootstrap(*units(a, b))
    assert r["n_units"] == 3 and r["delta"] == pytest.approx(-1 / 3)
    assert r["hi"] == 0.0  # a third of the resamples never draw the broken unit: not significant


def test_pooled_shares_weigh_units_by_their_chats():
    # unit 1: 1 of 2 chats passed, unit 2: 3 of 3 -> A pools 4/5; B: 0/2 and 3/3 -> 3/5
    r = cluster_bootstrap([1, 3], [2, 3], [0, 3], [2, 3])
    assert r["delta"] == pytest.approx(3 / 5 - 4 / 5)


def test_deterministic_for_a_seed_and_tiny_samples():
    rng = random.Random(5)
    a, b = [rng.random() for _ in range(30)], [rng.random() for _ in range(30)]
    ones = [1.0] * 30
    assert cluster_bootstrap(a, ones, b, ones, seed=7) == cluster_bootstrap(a, ones, b, ones, seed=7)
    assert cluster_bootstrap(a, ones, b, ones, seed=7)["lo"] != cluster_bootstrap(a, ones, b, ones, seed=8)["lo"]
    one = cluster_bootstrap([1.0], [1.0], [0.0], [1.0])
    assert one["delta"] == -1.0 and one["lo"] is None and one["p_value_two_sided"] is None
    assert cluster_bootstrap([], [], [], [])["delta"] is None
    with pytest.raises(ValueError):
        cluster_bootstrap([1.0], [1.0], [1.0, 2.0], [1.0, 1.0])


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


# --------------------------------------------------------------------------- permutation_test


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6])
def test_complete_separation_has_the_exact_p(k):
    # every replay of B below every replay of A: 2 of the C(2k, k) splits are that extreme
    p, smallest = permutation_test([1.0] * k, [0.0] * k)
    assert p == pytest.approx(min(1.0, 2 / comb(2 * k, k)))
    assert smallest == p


def test_nothing_varies_or_nothing_to_compare():
    assert permutation_test([1.0, 1.0], [1.0, 1.0]) == (1.0, 1.0)
    assert permutation_test([], [1.0]) == (1.0, 1.0)
    assert permutation_test([1.0], [0.0]) == (1.0, 1.0)  # one replay a side says nothing


def test_overlapping_replays_are_not_extreme():
    p, smallest = permutation_test([1, 0, 1, 0, 1], [0, 0, 1, 0, 0])
    assert p > 0.5 and smallest < 0.05  # could have been significant, is not


def test_many_replays_are_sampled_deterministically():
    rng = random.Random(9)
    a = [rng.gauss(0, 1) for _ in range(15)]
    b = [rng.gauss(1.5, 1) for _ in range(15)]  # C(30, 15) splits: sampled
    p, smallest = permutation_test(a, b, seed=3)
    assert p < 0.01 and smallest == pytest.approx(1 / 20_000, rel=0.5)
    assert permutation_test(a, b, seed=3) == (p, smallest)
    same = permutation_test(a, [x + 0.0 for x in a], seed=3)
    assert same[0] == 1.0


# --------------------------------------------------------------------------- significant_tests


def test_only_testable_units_count():
    broken = permutation_test([1.0] * 5, [0.0] * 5)  # p = 0.008
    tests = {"a": broken, "b": broken, **{f"same{i}": (1.0, 1.0) for i in range(100)}}
    assert significant_tests(tests) == {"a", "b"}  # 100 units where nothing varied do not dilute them


def test_many_broken_units_are_all_found():
    broken = permutation_test([1.0] * 5, [0.0] * 5)
    tests = {**{f"b{i}": broken for i in range(74)}, **{f"same{i}": (1.0, 1.0) for i in range(46)}}
    assert len(significant_tests(tests)) == 74


def test_benjamini_hochberg_steps_up():
    tests = {"a": (0.001, 0.001), "b": (0.02, 0.001), "c": (0.04, 0.001), "d": (0.3, 0.001)}
    # 0.04 > 3/4 x 0.05 = 0.0375, 0.02 <= 2/4 x 0.05 = 0.025: a and b
    assert significant_tests(tests) == {"a", "b"}
    assert significant_tests({"a": (0.03, 0.001), "b": (0.04, 0.001)}) == {"a", "b"}  # 0.04 <= 0.05
    assert significant_tests({}) == set()


def test_a_a_of_a_noisy_agent_flags_nothing_95_times_in_100():
    # 40 conversations, a 0/1 metric that passes half the time, 5 replays a side: an A/A test
    rng = random.Random(11)
    false_alarms = 0
    for _ in range(200):
        tests = {u: permutation_test([float(rng.random() < 0.5) for _ in range(5)],
                                     [float(rng.random() < 0.5) for _ in range(5)]) for u in range(40)}
        false_alarms += bool(significant_tests(tests))
    assert false_alarms / 200 <= 0.05
