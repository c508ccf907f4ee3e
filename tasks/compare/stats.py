"""Statistics for ``replay compare``: is B better or worse than A beyond noise? Deterministic
for a given ``seed``.

- :func:`cluster_bootstrap`: B against A over UNITS (the production conversations): each unit
  brings its numerator and denominator on each side (a unit mean and 1, or a count of passed
  chats and a count of chats); the units are resampled with replacement, the statistic
  (sum of numerators / sum of denominators, per side) recomputed on both sides of every
  resample, and the difference's percentile interval and shifted-null two-sided p-value
  returned. Rows of one conversation and repetitions live inside their unit, so they never
  count as independent evidence (numpy, vectorised; what ``replay compare`` uses).

- :func:`paired_bootstrap`: per-row differences ``d_i = b_i - a_i`` (B minus A: a positive
  delta means B scored higher), their mean, a percentile bootstrap confidence interval of
  that mean (``n`` resamples of the rows with replacement) and a two-sided p-value from the
  same resamples shifted to the null (``(1 + #{|m* - mean| >= |mean|}) / (n + 1)``, the
  Efron-Tibshirani shift method). Pairs with a missing/non-finite side are dropped; fewer
  than 2 pairs -> no interval and no p-value (one row says nothing about noise).
- :func:`noise_floor`: the A/A noise of one row, in the metric's own units: the mean absolute
  difference between two repetitions of the same row (over all pairs of repetitions of a
  row, then averaged over the rows that have at least 2). For a 0/1 metric it is the chance
  that two runs of a row disagree (x the scale); for Gaussian noise of SD s it is about
  1.13 s. Why not a pooled SD: it is in the same units as a delta, robust to one outlier,
  and needs no normality. None when no row has two repetitions (unknown).
- :func:`flaky_rows`: rows whose repetitions disagree on pass/fail (bools, or numbers
  split at ``pass_threshold`` when given) or whose spread (max - min) exceeds ``threshold``.
- :func:`compare_metric`: delta (mean of B - mean of A over the rows both have), its CI,
  and ``significant`` = the CI excludes 0 AND ``|delta|`` > the noise floor when known
  (from explicit ``noise``, else from the repetitions given for A and B). ``direction`` is
  ``improvement`` / ``regression`` for a significant change (by ``higher_is_better``),
  else ``same``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Hashable, Mapping, Sequence
from itertools import combinations
from typing import Any


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _quantile(sorted_xs: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default, 'linear') of sorted values."""
    if not sorted_xs:
        raise ValueError("quantile of no values")
    pos = (len(sorted_xs) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo)


def paired_bootstrap(a: Sequence[float], b: Sequence[float], n: int = 2000, seed: int = 0,
                     ci: float = 0.95) -> dict[str, Any]:
    """Mean of ``b[i] - a[i]`` with a percentile bootstrap CI and a two-sided p-value
    (module doc). Returns ``{mean_delta, lo, hi, p_value_two_sided, n_pairs}``; values are
    None when there are no pairs (mean) or fewer than 2 (lo, hi, p). Raises ValueError when
    ``a`` and ``b`` differ in length, ``n`` < 1 or ``ci`` is not within (0, 1)."""
    if len(a) != len(b):
        raise ValueError(f"paired values differ in length: {len(a)} vs {len(b)}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not 0.0 < ci < 1.0:
        raise ValueError(f"ci must be within (0, 1), got {ci}")
    d = [float(y) - float(x) for x, y in zip(a, b, strict=True) if _finite(x) and _finite(y)]
    m = len(d)
    out: dict[str, Any] = {"mean_delta": None, "lo": None, "hi": None,
                           "p_value_two_sided": None, "n_pairs": m}
    if m == 0:
        return out
    mean = math.fsum(d) / m
    out["mean_delta"] = mean
    if m < 2:
        return out
    rng = random.Random(seed)
    boots = sorted(math.fsum(rng.choices(d, k=m)) / m for _ in range(n))
    alpha = (1.0 - ci) / 2.0
    lo, hi = _quantile(boots, alpha), _quantile(boots, 1.0 - alpha)
    # floating sums of equal values can wobble in the last bit: a constant difference gives
    # a zero-width interval at the mean, not one a rounding error away from it
    eps = 1e-12 * max(1.0, abs(mean))
    if hi - lo <= eps:
        lo = hi = mean
    extreme = sum(1 for x in boots if abs(x - mean) >= abs(mean) - eps)
    out.update(lo=lo, hi=hi, p_value_two_sided=min(1.0, (1 + extreme) / (n + 1)))
    return out


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


def _sort_key(row: Any) -> tuple[int, Any]:
    return (0, row) if isinstance(row, (int, float)) else (1, str(row))


def flaky_rows(repetitions: Mapping[Hashable, Sequence[Any]], threshold: float, *,
               pass_threshold: float | None = None) -> list[Hashable]:
    """Rows (sorted) whose repetitions disagree on pass/fail or spread beyond ``threshold``:
    bool repetitions disagree when not all equal; numbers when ``max - min > threshold``, or,
    with ``pass_threshold``, when some are ``>= pass_threshold`` and some are not. Rows with
    fewer than 2 repetitions are never flaky."""
    out = []
    for row, v in repetitions.items():
        items = [x for x in (v if isinstance(v, (list, tuple)) else [v])
                 if isinstance(x, bool) or _finite(x)]
        if len(items) < 2:
            continue
        if all(isinstance(x, bool) for x in items):
            flaky = len(set(items)) > 1
        else:
            xs = [float(x) for x in items]
            flaky = max(xs) - min(xs) > threshold
            if pass_threshold is not None:
                flaky = flaky or len({x >= pass_threshold for x in xs}) > 1
        if flaky:
            out.append(row)
    return sorted(out, key=_sort_key)


def compare_metric(a_by_row: Mapping[Hashable, Any], b_by_row: Mapping[Hashable, Any],
                   higher_is_better: bool = True, *, noise: float | None = None, n: int = 2000,
                   seed: int = 0, ci: float = 0.95) -> dict[str, Any]:
    """B against A on one metric, paired by row. A row's value is a number or the list of its
    repetitions (their mean is the row's value; the repetitions also give the noise floor
    unless ``noise`` is passed). Returns ``{delta, ci: (lo, hi) | None, significant,
    direction, p_value, noise_floor, n_rows}`` (module doc)."""
    rows = [r for r in a_by_row if r in b_by_row]
    a_vals, b_vals = [], []
    for r in sorted(rows, key=_sort_key):
        xa, xb = _values(a_by_row[r]), _values(b_by_row[r])
        if xa and xb:
            a_vals.append(math.fsum(xa) / len(xa))
            b_vals.append(math.fsum(xb) / len(xb))
    boot = paired_bootstrap(a_vals, b_vals, n=n, seed=seed, ci=ci)
    if noise is None:
        reps = {("a", r): _values(v) for r, v in a_by_row.items()}
        reps.update({("b", r): _values(v) for r, v in b_by_row.items()})
        noise = noise_floor(reps)
    delta = boot["mean_delta"]
    lo, hi = boot["lo"], boot["hi"]
    significant = bool(
        delta is not None and lo is not None and (lo > 0 or hi < 0)
        and (noise is None or abs(delta) > noise))
    if significant:
        better = delta > 0 if higher_is_better else delta < 0
        direction = "improvement" if better else "regression"
    else:
        direction = "same"
    return {"delta": delta, "ci": (lo, hi) if lo is not None else None,
            "significant": significant, "direction": direction,
            "p_value": boot["p_value_two_sided"], "noise_floor": noise, "n_rows": boot["n_pairs"]}


__all__ = ["cluster_bootstrap", "compare_metric", "flaky_rows", "noise_floor", "paired_bootstrap"]
