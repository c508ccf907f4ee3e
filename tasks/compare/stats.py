"""Statistics for ``replay compare``: is B better or worse than A beyond noise? Deterministic
for a given ``seed``.

- :func:`cluster_bootstrap`: B against A over UNITS (the production conversations): each unit
  brings its numerator and denominator on each side (a unit mean and 1, or a count of passed
  chats and a count of chats); the units are resampled with replacement, the statistic
  (sum of numerators / sum of denominators, per side) recomputed on both sides of every
  resample, and the difference's percentile interval and shifted-null two-sided p-value
  (``(1 + #{|m* - delta| >= |delta|}) / (n + 1)``, Efron-Tibshirani) returned. Rows of one
  conversation and repetitions live inside their unit, so they never count as independent
  evidence (numpy, vectorised). This answers "is B better on conversations like these?".
- :func:`noise_floor`: the A/A noise of one unit, in the metric's own units: the mean absolute
  difference between two replays of the same conversation (over all pairs of its replays,
  then averaged over the units that have at least 2). For a 0/1 metric it is the chance that
  two replays disagree; for Gaussian noise of SD s about 1.13 s. None when nothing was
  replayed twice (unknown).
- :func:`permutation_test`: ONE conversation, B's replays against A's: the exact two-sided
  permutation test of the difference of means (every way to split the pooled replays into
  the two sides; a seeded sample of 20,000 splits when there are more), and the smallest
  p-value the pooled values could give at all. One replay a side can never be significant
  (the smallest p is 1); 5 replays a side that all disagree give p = 2/252 = 0.008.
- :func:`significant_tests`: which of many such tests stay significant: Benjamini-Hochberg at
  false discovery rate ``alpha`` over the tests that could reach ``alpha`` at all (a test
  whose smallest possible p-value is above it is filtered out first: the conversations where
  nothing varied do not dilute the others; the filter reads only the pooled values, which the
  permutation test conditions on, so it is independent of the p-value under the null).
  At most ``alpha`` of the flagged conversations are expected to be false; when nothing
  changed (an A/A comparison) that is the chance of any flag at all: 95 times in 100 none.
  Family-wise control (Bonferroni/Holm) was tried first: with 74 of 120 conversations broken,
  5 replays a side (p = 0.008 each) could flag none of them.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from itertools import combinations
from typing import Any


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def cluster_bootstrap(num_a: Sequence[float], den_a: Sequence[float], num_b: Sequence[float],
                      den_b: Sequence[float], n: int = 2000, seed: int = 0, ci: float = 0.95,
                      chunk: int = 500) -> dict[str, Any]:
    """``sum(num_b)/sum(den_b) - sum(num_a)/sum(den_a)`` over paired units, with a percentile
    bootstrap CI (resampling units) and a two-sided p-value from the resamples shifted to the
    null. Returns ``{delta, lo, hi, p_value_two_sided, n_units}``; lo/hi/p None with fewer than
    2 units."""
    import numpy as np

    arrays = [np.asarray(x, dtype=float) for x in (num_a, den_a, num_b, den_b)]
    k = len(arrays[0])
    if any(len(x) != k for x in arrays):
        raise ValueError("cluster_bootstrap: the four sequences differ in length")
    out: dict[str, Any] = {"delta": None, "lo": None, "hi": None, "p_value_two_sided": None, "n_units": k}
    if k == 0 or arrays[1].sum() == 0 or arrays[3].sum() == 0:
        return out
    na, da, nb, db = arrays
    delta = float(nb.sum() / db.sum() - na.sum() / da.sum())
    out["delta"] = delta
    if k < 2:
        return out
    rng = np.random.default_rng(seed)
    boots = []
    for start in range(0, n, chunk):  # bounded memory: chunk x k indices at a time
        idx = rng.integers(0, k, size=(min(chunk, n - start), k))
        with np.errstate(invalid="ignore", divide="ignore"):
            boots.append(nb[idx].sum(1) / db[idx].sum(1) - na[idx].sum(1) / da[idx].sum(1))
    b = np.concatenate(boots)
    b = b[np.isfinite(b)]
    alpha = (1.0 - ci) / 2.0
    lo, hi = (float(x) for x in np.quantile(b, [alpha, 1.0 - alpha]))
    eps = 1e-12 * max(1.0, abs(delta))
    if hi - lo <= eps:  # a constant difference: a zero-width interval at it
        lo = hi = delta
    extreme = int(np.sum(np.abs(b - delta) >= abs(delta) - eps))
    out.update(lo=lo, hi=hi, p_value_two_sided=min(1.0, (1 + extreme) / (len(b) + 1)))
    return out


def _values(v: Any) -> list[float]:
    """A row's repetitions (a number, a bool or a list of them) as finite floats."""
    items = v if isinstance(v, (list, tuple)) else [v]
    return [float(x) for x in items if _finite(x) or isinstance(x, bool)]


def noise_floor(repetitions: Mapping[Hashable, Sequence[float]]) -> float | None:
    """Mean absolute pairwise difference between repetitions of the same row, averaged over
    the rows with >= 2 finite repetitions (each such row weighs the same). None when no row
    has 2 (the noise is unknown)."""
    per_row = []
    for v in repetitions.values():
        xs = _values(v)
        if len(xs) < 2:
            continue
        pairs = list(combinations(xs, 2))
        per_row.append(math.fsum(abs(x - y) for x, y in pairs) / len(pairs))
    return math.fsum(per_row) / len(per_row) if per_row else None


EXACT_LIMIT = 20_000  # splits enumerated exactly; above, a seeded sample of as many


def permutation_test(a: Sequence[float], b: Sequence[float], seed: int = 0) -> tuple[float, float]:
    """``(p, smallest_p)`` of the two-sided permutation test of ``mean(b) - mean(a)`` (module
    doc). With fewer than one value a side, or nothing varying, both are 1."""
    import numpy as np

    xa, xb = [float(x) for x in a if _finite(x)], [float(x) for x in b if _finite(x)]
    if not xa or not xb:
        return 1.0, 1.0
    pooled = np.asarray(xa + xb)
    n, k = len(pooled), len(xb)
    if float(pooled.max() - pooled.min()) <= 1e-12:
        return 1.0, 1.0
    total = pooled.sum()
    if math.comb(n, k) <= EXACT_LIMIT:
        idx = np.asarray(list(combinations(range(n), k)), dtype=np.int64)
    else:  # a seeded sample of splits, the observed one among them
        rng = np.random.default_rng(seed)
        idx = np.argsort(rng.random((EXACT_LIMIT - 1, n)), axis=1)[:, :k]
        idx = np.vstack([np.arange(len(xa), n)[None, :], idx])
    sums_b = pooled[idx].sum(axis=1)
    diffs = np.abs(sums_b / k - (total - sums_b) / (n - k))
    observed = abs(sum(xb) / k - sum(xa) / len(xa))
    eps = 1e-9 * max(1.0, observed)
    p = float(np.mean(diffs >= observed - eps))
    smallest = float(np.mean(diffs >= diffs.max() - eps))
    return p, smallest


def significant_tests(tests: Mapping[Hashable, tuple[float, float]], alpha: float = 0.05) -> set[Hashable]:
    """The keys of ``tests`` (``key -> (p, smallest_p)``) significant at false discovery rate
    ``alpha`` (module doc): the tests that could reach ``alpha`` at all, then Benjamini-Hochberg
    over them."""
    testable = sorted((p, str(key), key) for key, (p, s) in tests.items() if s <= alpha)
    m = len(testable)
    cut = max((i + 1 for i, (p, _, _) in enumerate(testable) if p <= alpha * (i + 1) / m), default=0)
    return {key for _, _, key in testable[:cut]}


__all__ = ["cluster_bootstrap", "noise_floor", "permutation_test", "significant_tests"]
