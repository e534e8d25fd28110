"""Rank correlation (Spearman, exact p-values for small n) and the permutation test."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.stats

from junkdna_core.config.errors import ConfigError
from junkdna_core.stats._checks import (
    ArrayLike,
    _check_choice,
    _finite_array,
    _paired,
    check_count,
    check_seed,
)

EXACT_PVALUE_MAX_N = 10
"""Up to this many points, :func:`spearman` gives the exact permutation p-value."""

Alternative = Literal["two-sided", "greater", "less"]
PermutationType = Literal["pairings", "samples", "independent"]
_ALTERNATIVES = ("two-sided", "greater", "less")
_PERMUTATION_TYPES = ("pairings", "samples", "independent")


@dataclass(frozen=True)
class Correlation:
    """A rank correlation and its p-value.

    When ``defined`` is False (fewer than 3 points, or a constant input),
    ``statistic`` is 0.0, ``pvalue`` is 1.0 (no evidence of association),
    ``pvalue_method`` is ``"undefined"`` and ``reason`` says why. Otherwise
    ``reason`` is None and ``pvalue_method`` is ``"exact"`` (permutation
    distribution enumerated) or ``"t"`` (Student t approximation).
    """

    statistic: float
    pvalue: float
    n: int
    defined: bool
    reason: str | None
    pvalue_method: str


def spearman(x: ArrayLike, y: ArrayLike) -> Correlation:
    """Spearman's rank correlation of paired samples (ties get midranks), two-sided p-value.

    The statistic equals ``scipy.stats.spearmanr(x, y).statistic``. The p-value is
    exact for ``n <= EXACT_PVALUE_MAX_N``: the permutation null distribution over all
    ``n!`` pairings, two-sided as in ``scipy.stats.permutation_test`` (twice the smaller
    tail, capped at 1; so with n = 3 it is never below 1/3). For larger ``n`` it is the
    t approximation of ``scipy.stats.spearmanr``.

    Undefined (``defined=False``, statistic 0.0, p-value 1.0) for n < 3 or when x or y
    is constant. Raises ConfigError on NaN/inf or different lengths.
    """
    xs, ys = _paired(x, y)
    n = xs.size
    if n < 3:
        return _undefined_correlation(n, f"Spearman needs at least 3 points, got {n}")
    if np.all(xs == xs[0]) or np.all(ys == ys[0]):
        which = "x" if np.all(xs == xs[0]) else "y"
        return _undefined_correlation(n, f"{which} is constant: ranks carry no order")
    rx, ry = scipy.stats.rankdata(xs), scipy.stats.rankdata(ys)
    rho = _rank_correlation(rx, ry)
    if n <= EXACT_PVALUE_MAX_N:
        pvalue, method = _exact_spearman_pvalue(rx, ry), "exact"
    else:
        pvalue, method = _t_spearman_pvalue(rho, n), "t"
    return Correlation(statistic=rho, pvalue=pvalue, n=n, defined=True, reason=None, pvalue_method=method)


def spearman_rows(x: ArrayLike, y: ArrayLike) -> np.ndarray:
    """Spearman's rank correlation of ``x`` with each row of ``y``, vectorised (for bootstrap replicates).

    Args:
        x: 1-D array of n values, at least 3 of them and not all equal.
        y: array of shape ``(m, n)``.

    Returns:
        Shape ``(m,)``: row i equals ``spearman(x, y[i]).statistic`` (midranks for
        ties). A constant row has no rank order and gets 0.0, the placeholder
        :func:`spearman` gives an undefined correlation.

    Raises:
        ConfigError: NaN/inf, shapes that do not match, fewer than 3 points or a constant ``x``.
    """
    xs = _finite_array("x", x, ndim=1)
    ys = _finite_array("y", y, ndim=2)
    if ys.shape[1] != xs.size:
        raise ConfigError(f"y must have shape (m, {xs.size}) to match x, got {ys.shape}")
    if xs.size < 3 or np.all(xs == xs[0]):
        raise ConfigError(f"spearman_rows needs at least 3 values of x, not all equal; got {xs.tolist()}")
    rx = scipy.stats.rankdata(xs) - (xs.size + 1) / 2
    ry = scipy.stats.rankdata(ys, axis=1)
    ry = ry - ry.mean(axis=1, keepdims=True)
    norm = np.sqrt((rx @ rx) * np.einsum("ij,ij->i", ry, ry))
    out = np.zeros(ys.shape[0])
    ordered = norm > 0
    out[ordered] = np.clip(ry[ordered] @ rx / norm[ordered], -1.0, 1.0)
    return out


def _undefined_correlation(n: int, reason: str) -> Correlation:
    """The documented placeholder result of an undefined correlation."""
    return Correlation(statistic=0.0, pvalue=1.0, n=n, defined=False, reason=reason, pvalue_method="undefined")


def _rank_correlation(rx: np.ndarray, ry: np.ndarray) -> float:
    """Pearson correlation of midranks, from exact integer sums of the doubled ranks."""
    a = [int(v) for v in np.rint(2 * rx)]
    b = [int(v) for v in np.rint(2 * ry)]
    n = len(a)
    cov = n * sum(p * q for p, q in zip(a, b)) - sum(a) * sum(b)
    var_a = n * sum(p * p for p in a) - sum(a) ** 2
    var_b = n * sum(q * q for q in b) - sum(b) ** 2
    return max(-1.0, min(1.0, cov / math.sqrt(var_a * var_b)))


def _t_spearman_pvalue(rho: float, n: int) -> float:
    """Two-sided p-value of ``rho`` from the t distribution with n - 2 degrees of freedom."""
    if abs(rho) == 1.0:
        return 0.0
    t = rho * math.sqrt((n - 2) / (1.0 - rho * rho))
    return float(min(1.0, 2.0 * scipy.stats.t.sf(abs(t), n - 2)))


def _exact_spearman_pvalue(rx: np.ndarray, ry: np.ndarray) -> float:
    """Two-sided exact permutation p-value of the rank correlation of midranks ``rx``, ``ry``.

    Rho is an increasing function of ``T = sum(rx[i] * ry[perm[i]])``; the doubled
    midranks are integers, so the null distribution of T over all n! permutations
    is counted exactly by dynamic programming over subsets of used y positions.
    """
    a, b = np.rint(2 * rx).astype(np.int64), np.rint(2 * ry).astype(np.int64)
    counts, low = _pairing_sum_distribution(a, b)
    observed = int(a @ b) - low
    total = counts.sum()
    less = counts[: observed + 1].sum() / total
    greater = counts[observed:].sum() / total
    return float(min(1.0, 2.0 * min(less, greater)))


def _pairing_sum_distribution(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, int]:
    """How many permutations give each value of ``sum(a[i] * b[perm[i]])`` (non-negative ints).

    Returns the counts indexed by ``value - low`` and ``low``, the smallest value.
    """
    n = a.size
    low = int(np.sort(a) @ np.sort(b)[::-1])
    high = int(np.sort(a) @ np.sort(b))
    start = np.zeros(high + 1, dtype=np.int64)
    start[0] = 1
    layer = {0: start}  # subset of used y positions -> counts of partial sums
    for i in range(n):
        nxt: dict[int, np.ndarray] = {}
        for used, dist in layer.items():
            for j in range(n):
                if used >> j & 1:
                    continue
                target = nxt.setdefault(used | 1 << j, np.zeros_like(dist))
                step = int(a[i] * b[j])
                target[step:] += dist[: dist.size - step]
        layer = nxt
    (final,) = layer.values()
    return final[low:], low


def permutation_pvalue(
    x: ArrayLike,
    y: ArrayLike,
    statistic: Callable[..., float],
    *,
    n_resamples: int = 9999,
    seed: int = 0,
    alternative: Alternative = "two-sided",
    permutation_type: PermutationType = "pairings",
) -> float:
    """Permutation-test p-value of ``statistic(x, y)``, computed by ``scipy.stats.permutation_test``.

    Args:
        x, y: 1-D finite samples; same length unless ``permutation_type="independent"``.
        statistic: ``statistic(x, y) -> float``; if it accepts an ``axis`` keyword it is
            called vectorised on stacked resamples (much faster).
        n_resamples: random permutations; when scipy's count of permutations is not
            larger, all of them are enumerated (exact test). scipy counts ``n!`` for
            "pairings" as ``(n!)**2`` (both samples are permuted), ``2**n`` for "samples"
            and ``(len(x) + len(y))! / (len(x)! len(y)!)`` for "independent".
        seed: seed of the permutations; same seed, same p-value.
        alternative: "two-sided" (twice the smaller tail, capped at 1), "greater" or "less".
        permutation_type: "pairings" (association: y is re-paired with x; the default),
            "samples" (paired samples: x[i] and y[i] swap) or "independent" (two samples:
            the pooled values are re-split).

    Returns:
        The p-value; a randomized test never returns 0 (scipy's ``(k + 1) / (B + 1)``).

    Raises:
        ConfigError: NaN/inf or mismatched input, bad options, or a statistic that
            returns non-finite values.
    """
    kind = _check_choice("permutation_type", permutation_type, _PERMUTATION_TYPES)
    if kind == "independent":
        xs, ys = _finite_array("x", x, ndim=1), _finite_array("y", y, ndim=1)
        if min(xs.size, ys.size) == 0:
            raise ConfigError(f"x and y must be non-empty, got lengths {xs.size} and {ys.size}")
    else:
        xs, ys = _paired(x, y)
    side = _check_choice("alternative", alternative, _ALTERNATIVES)
    resamples = check_count("n_resamples", n_resamples)
    rng = np.random.default_rng(check_seed(seed))
    result = scipy.stats.permutation_test(
        (xs, ys), statistic, permutation_type=kind, n_resamples=resamples, alternative=side, rng=rng
    )
    if not (np.all(np.isfinite(result.null_distribution)) and math.isfinite(result.statistic)):
        raise ConfigError("statistic returned NaN/inf on the data or on a permutation of it")
    return float(result.pvalue)


def difficulty_ordering(slopes_by_rank: Sequence[float]) -> Correlation:
    """How well steeper drops follow difficulty: ``spearman(rank, -slope)``.

    Args:
        slopes_by_rank: drop-vs-compression slopes ordered from easiest to hardest level.

    Returns:
        +1 when every harder level drops strictly faster (more negative slope),
        -1 for the reverse order; undefined (see :class:`Correlation`) for fewer
        than 3 levels or equal slopes.
    """
    slopes = _finite_array("slopes_by_rank", slopes_by_rank, ndim=1)
    return spearman(np.arange(slopes.size, dtype=np.float64), -slopes)


