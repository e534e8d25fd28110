"""Statistics of the claims: drops, rank correlation, robust slopes, bootstrap and permutation tests.

Pure functions on numpy arrays, in the style of :mod:`scipy.stats`. Every input
is checked before any compute: NaN or infinite values, mismatched lengths and
out-of-range options raise :class:`~junkdna_core.config.errors.ConfigError` (a
``ValueError``) naming what was given. A statistic that is undefined for valid
input (constant input, fewer than 3 points) is never returned as NaN: the
result dataclass says ``defined=False`` and gives the ``reason``, and its numeric
fields hold documented placeholders.

Definitions (arXiv 2310.02277, Section 2):

- normalized (relative) drop: ``(f_p - f_d) / f_d``;
- absolute drop: ``f_p - f_d``;
- chance-corrected drop: ``(f_p - c) / (f_d - c) - 1`` for a chance level ``c``
  (goes beyond the paper: removes the floor that makes the normalized drop grow
  with the number of answer options).

Drops are negative when the pruned model scores lower than the dense one.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.stats

from junkdna_core.config.errors import ConfigError

ArrayLike = float | Sequence[float] | np.ndarray
Alternative = Literal["two-sided", "greater", "less"]
DropKind = Literal["relative", "absolute", "chance_corrected"]
PermutationType = Literal["pairings", "samples", "independent"]

EXACT_PVALUE_MAX_N = 10
"""Up to this many points, :func:`spearman` gives the exact permutation p-value."""

_ALTERNATIVES = ("two-sided", "greater", "less")
_DROPS = ("relative", "absolute", "chance_corrected")
_PERMUTATION_TYPES = ("pairings", "samples", "independent")
_CHUNK_ELEMENTS = 4_000_000


# --------------------------------------------------------------------------- input checks


def _finite_array(name: str, values: ArrayLike, *, ndim: int | None = None) -> np.ndarray:
    """``values`` as a float64 array; ConfigError if non-numeric, NaN/inf or of the wrong rank."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be numeric, got {values!r}") from exc
    if ndim is not None and array.ndim != ndim:
        raise ConfigError(f"{name} must be a {ndim}-D array, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise ConfigError(f"{name} must be finite, got {bad} NaN/inf value(s) in {_preview(array)}")
    return array


def _preview(array: np.ndarray) -> str:
    """A short text form of an array for error messages."""
    return np.array2string(np.ravel(array)[:8], precision=4) + (" ..." if np.size(array) > 8 else "")


def _paired(x: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Two 1-D finite arrays of the same length."""
    xs, ys = _finite_array("x", x, ndim=1), _finite_array("y", y, ndim=1)
    if xs.shape != ys.shape:
        raise ConfigError(f"x and y must have the same length, got {xs.size} and {ys.size}")
    return xs, ys


def _check_confidence(confidence: float) -> float:
    """``confidence`` if it is strictly between 0 and 1."""
    if not isinstance(confidence, (int, float)) or not 0.0 < float(confidence) < 1.0:
        raise ConfigError(f"confidence must be a number strictly between 0 and 1, got {confidence!r}")
    return float(confidence)


def _check_count(name: str, value: int) -> int:
    """``value`` if it is a positive int."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_seed(seed: int) -> int:
    """``seed`` if it is a non-negative int."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    """``value`` if it is one of ``allowed``."""
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _scalar_or_array(array: np.ndarray) -> float | np.ndarray:
    """A Python float for a 0-D result, the array otherwise."""
    return float(array) if array.ndim == 0 else array


def _broadcast(f_pruned: ArrayLike, f_dense: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Finite pruned and dense scores whose shapes broadcast together."""
    pruned = _finite_array("f_pruned", f_pruned)
    dense = _finite_array("f_dense", f_dense)
    try:
        np.broadcast_shapes(pruned.shape, dense.shape)
    except ValueError as exc:
        raise ConfigError(
            f"f_pruned and f_dense must have broadcastable shapes, got {pruned.shape} and {dense.shape}"
        ) from exc
    return pruned, dense


# --------------------------------------------------------------------------- drops


def normalized_drop(f_pruned: ArrayLike, f_dense: ArrayLike) -> float | np.ndarray:
    """The paper's normalized performance drop ``(f_pruned - f_dense) / f_dense``.

    Args:
        f_pruned: score(s) of the compressed model; any shape broadcastable with ``f_dense``.
        f_dense: score(s) of the dense model; must be > 0.

    Returns:
        A float when both inputs are scalars, else an array of the broadcast shape.
        -0.5 means the compressed model keeps half of the dense score.

    Raises:
        ConfigError: NaN/inf input, shapes that do not broadcast, or ``f_dense <= 0``.
            Zero makes the ratio undefined; a negative dense score (a log-likelihood)
            would silently flip the sign of the drop: use :func:`absolute_drop` there.
            For a lower-is-better score (bits-per-byte) the formula applies unchanged
            and a positive value means the score got worse.
    """
    pruned, dense = _broadcast(f_pruned, f_dense)
    if np.any(dense <= 0):
        raise ConfigError(
            f"normalized drop needs f_dense > 0, got {_preview(dense)}; "
            "use absolute_drop for scores that can be zero or negative (log-likelihoods)"
        )
    return _scalar_or_array((pruned - dense) / dense)


def absolute_drop(f_pruned: ArrayLike, f_dense: ArrayLike) -> float | np.ndarray:
    """The absolute drop ``f_pruned - f_dense`` (float for scalars, else broadcast array).

    Raises:
        ConfigError: NaN/inf input or shapes that do not broadcast.
    """
    pruned, dense = _broadcast(f_pruned, f_dense)
    return _scalar_or_array(pruned - dense)


def chance_corrected_drop(f_pruned: ArrayLike, f_dense: ArrayLike, chance: float) -> float | np.ndarray:
    """The drop of the above-chance part of the score: ``(f_p - c) / (f_d - c) - 1``.

    With ``chance = 1/k`` for k-option multiple choice, -1 means the compressed model
    fell to chance and 0 means it kept all of the dense model's above-chance skill.

    Raises:
        ConfigError: NaN/inf input, shapes that do not broadcast, or ``f_dense <= chance``
            (the dense model at or below chance: the corrected drop is undefined).
    """
    pruned, dense = _broadcast(f_pruned, f_dense)
    if isinstance(chance, bool) or not isinstance(chance, (int, float, np.floating)) or not math.isfinite(chance):
        raise ConfigError(f"chance must be a finite number, got {chance!r}")
    if np.any(dense <= chance):
        raise ConfigError(
            f"dense model at or below chance: the corrected drop is undefined "
            f"(f_dense {_preview(dense)}, chance {chance})"
        )
    return _scalar_or_array((pruned - chance) / (dense - chance) - 1.0)


# --------------------------------------------------------------------------- Spearman


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


# --------------------------------------------------------------------------- Theil–Sen


@dataclass(frozen=True)
class Slope:
    """A Theil–Sen slope with Sen's confidence interval ``[low, high]``.

    When ``defined`` is False (fewer than 3 points, or all x equal), slope,
    intercept, low and high are 0.0 and ``reason`` says why. When defined,
    ``reason`` is None unless the interval needed the tie fallback described in
    :func:`theil_sen`.
    """

    slope: float
    intercept: float
    low: float
    high: float
    confidence: float
    n: int
    defined: bool
    reason: str | None


def theil_sen_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Theil–Sen slopes of many series at once: median of pairwise slopes along the last axis.

    Args:
        x: 1-D array of n abscissae with at least two distinct values.
        y: array of shape ``(..., n)``; each row is one series.

    Returns:
        Array of shape ``y.shape[:-1]``; each entry equals
        ``scipy.stats.theilslopes(row, x).slope`` (pairs with equal x are skipped).

    Raises:
        ConfigError: shapes that do not match or fewer than two distinct x values.
    """
    xs = _finite_array("x", x, ndim=1)
    ys = _finite_array("y", y)
    if ys.ndim < 1 or ys.shape[-1] != xs.size:
        raise ConfigError(f"y must have shape (..., {xs.size}) to match x, got {ys.shape}")
    if np.all(xs == xs[0]):
        raise ConfigError(f"Theil–Sen needs at least two distinct x values, got {_preview(xs)}")
    return np.median(_pairwise_slopes(xs, ys), axis=-1)


def _pairwise_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Slopes between every pair of points with different x, along the last axis of ``y``."""
    first, second = np.nonzero(x[None, :] > x[:, None])
    return (y[..., second] - y[..., first]) / (x[second] - x[first])


def theil_sen(x: ArrayLike, y: ArrayLike, *, confidence: float = 0.95) -> Slope:
    """The Theil–Sen slope of y on x with Sen's (1968) confidence interval, as scipy gives it.

    Slope, intercept (``median(y) - slope * median(x)``) and interval equal
    ``scipy.stats.theilslopes(y, x, alpha=confidence)``. A constant y is defined
    (slope 0). When ties make Sen's variance non-positive (scipy returns NaN
    bounds, e.g. a constant y with tied x), the interval is the full range of
    pairwise slopes and ``reason`` says so.

    Undefined (``defined=False``, zeros) for n < 3 or when all x are equal.
    Raises ConfigError on NaN/inf, different lengths or a confidence outside (0, 1).
    """
    xs, ys = _paired(x, y)
    level = _check_confidence(confidence)
    n = xs.size
    if n < 3:
        return _undefined_slope(n, level, f"Theil–Sen needs at least 3 points, got {n}")
    if np.all(xs == xs[0]):
        return _undefined_slope(n, level, "x is constant: no pair of points defines a slope")
    slope = float(theil_sen_slopes(xs, ys))
    intercept = float(np.median(ys) - slope * np.median(xs))
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        scipy_result = scipy.stats.theilslopes(ys, xs, alpha=level)
    low, high = float(scipy_result.low_slope), float(scipy_result.high_slope)
    reason = None
    if not (math.isfinite(low) and math.isfinite(high)):
        pairwise = _pairwise_slopes(xs, ys)
        low, high = float(pairwise.min()), float(pairwise.max())
        reason = "ties make Sen's variance non-positive: the interval is the range of pairwise slopes"
    return Slope(slope=slope, intercept=intercept, low=low, high=high, confidence=level, n=n,
                 defined=True, reason=reason)


def _undefined_slope(n: int, confidence: float, reason: str) -> Slope:
    """The documented placeholder result of an undefined slope."""
    return Slope(slope=0.0, intercept=0.0, low=0.0, high=0.0, confidence=confidence, n=n,
                 defined=False, reason=reason)


# --------------------------------------------------------------------------- bootstrap


@dataclass(frozen=True)
class Interval:
    """A point estimate with a percentile bootstrap confidence interval ``[low, high]``."""

    estimate: float
    low: float
    high: float
    confidence: float
    n_resamples: int


def bootstrap_ci(
    values: ArrayLike,
    statistic: Callable[..., np.ndarray] = np.mean,
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap interval of ``statistic`` over items (resampled with replacement).

    Args:
        values: 1-D per-item values (e.g. 0/1 correctness), at least one.
        statistic: a reduction called as ``statistic(sample, axis=-1)`` on a
            ``(resamples, n)`` array (numpy reductions such as ``np.mean`` or
            ``np.median`` qualify); the estimate is ``statistic(values, axis=-1)``.
        confidence: interval coverage in (0, 1).
        n_resamples: bootstrap resamples.
        seed: seed of ``numpy.random.default_rng``; same seed, same interval.

    Returns:
        The estimate on all items and the ``(1 - confidence) / 2`` and
        ``(1 + confidence) / 2`` quantiles of the resampled statistic. With one
        item every resample equals the data: the interval is degenerate,
        ``low == high == estimate``.

    Raises:
        ConfigError: empty, non-1-D or non-finite ``values``, bad options, or a
            statistic that does not return one finite value per resample.
    """
    data = _finite_array("values", values, ndim=1)
    if data.size == 0:
        raise ConfigError("values must hold at least one item, got an empty array")
    level = _check_confidence(confidence)
    resamples = _check_count("n_resamples", n_resamples)
    rng = np.random.default_rng(_check_seed(seed))
    estimate = _finite_statistic(statistic, data, ())
    if data.size == 1:
        return Interval(estimate=estimate, low=estimate, high=estimate, confidence=level, n_resamples=resamples)
    chunk = max(1, _CHUNK_ELEMENTS // data.size)
    replicates = np.concatenate([
        _finite_statistic(statistic, data[rng.integers(0, data.size, (size, data.size))], (size,))
        for size in _chunk_sizes(resamples, chunk)
    ])
    low, high = _percentiles(replicates, level)
    return Interval(estimate=estimate, low=low, high=high, confidence=level, n_resamples=resamples)


def _chunk_sizes(total: int, chunk: int) -> list[int]:
    """``total`` split into consecutive pieces of at most ``chunk``."""
    return [min(chunk, total - start) for start in range(0, total, chunk)]


def _finite_statistic(statistic: Callable[..., np.ndarray], sample: np.ndarray,
                      shape: tuple[int, ...]) -> float | np.ndarray:
    """``statistic(sample, axis=-1)`` checked to have ``shape`` and finite values (float for shape ())."""
    result = np.asarray(statistic(sample, axis=-1), dtype=np.float64)
    if result.shape != shape or not np.all(np.isfinite(result)):
        raise ConfigError(
            f"statistic must reduce axis -1 to finite values of shape {shape}, "
            f"got shape {result.shape} with values {_preview(result)}"
        )
    return float(result) if shape == () else result


# --------------------------------------------------------------------------- permutation test


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
    resamples = _check_count("n_resamples", n_resamples)
    rng = np.random.default_rng(_check_seed(seed))
    result = scipy.stats.permutation_test(
        (xs, ys), statistic, permutation_type=kind, n_resamples=resamples, alternative=side, rng=rng
    )
    if not (np.all(np.isfinite(result.null_distribution)) and math.isfinite(result.statistic)):
        raise ConfigError("statistic returned NaN/inf on the data or on a permutation of it")
    return float(result.pvalue)


# --------------------------------------------------------------------------- paired bootstrap of slopes


@dataclass(frozen=True)
class LevelSlope:
    """Theil–Sen slope of the drop vs compression level for one difficulty level.

    ``drops`` are the point-estimate drops per compression level (mean over all
    items); ``slope`` is their Theil–Sen slope and ``[low, high]`` its
    percentile bootstrap interval over items.
    """

    level: str
    slope: float
    low: float
    high: float
    drops: tuple[float, ...]
    n_items: int


@dataclass(frozen=True)
class SlopeDifference:
    """``slope(second) - slope(first)`` with a bootstrap interval and two-sided bootstrap p-value.

    The p-value is twice the smaller of ``(1 + #{d* <= 0}) / (B + 1)`` and
    ``(1 + #{d* >= 0}) / (B + 1)``, capped at 1, where ``d*`` are the ``B``
    bootstrap differences. A negative difference means ``second`` drops faster.
    """

    first: str
    second: str
    difference: float
    low: float
    high: float
    pvalue: float


@dataclass(frozen=True)
class SlopeComparison:
    """Per-level slopes and every pairwise slope difference from :func:`paired_bootstrap_slopes`."""

    levels: tuple[LevelSlope, ...]
    differences: tuple[SlopeDifference, ...]
    drop: str
    confidence: float
    n_resamples: int
    seed: int
    paired_levels: bool

    def slope(self, level: str) -> LevelSlope:
        """The slope of difficulty level ``level`` (ConfigError if unknown)."""
        for entry in self.levels:
            if entry.level == level:
                return entry
        raise ConfigError(f"unknown level {level!r}; levels are {[e.level for e in self.levels]}")

    def difference(self, first: str, second: str) -> SlopeDifference:
        """The difference ``slope(second) - slope(first)`` (either order of a compared pair)."""
        for entry in self.differences:
            if (entry.first, entry.second) == (first, second):
                return entry
            if (entry.first, entry.second) == (second, first):
                return SlopeDifference(first=first, second=second, difference=-entry.difference,
                                       low=-entry.high, high=-entry.low, pvalue=entry.pvalue)
        raise ConfigError(f"no comparison of {first!r} and {second!r}; levels are {[e.level for e in self.levels]}")


def paired_bootstrap_slopes(
    levels_x: Sequence[float],
    scores_by_level: Mapping[str, np.ndarray],
    dense_by_level: Mapping[str, np.ndarray],
    *,
    drop: DropKind = "relative",
    chance: Mapping[str, float] | None = None,
    paired_levels: bool = False,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> SlopeComparison:
    """Compare how fast the drop grows with compression across difficulty levels, bootstrapping items.

    For each difficulty level, items are resampled with replacement; the same item
    indices serve every compression level of that difficulty level (paired), so
    the item noise shared by all points cancels from the slope. Each resample's
    mean scores give the drop per compression level and its Theil–Sen slope.

    Args:
        levels_x: the compression levels (e.g. sparsities), at least 3, with at least
            two distinct values. A dense point (x = 0) may be included.
        scores_by_level: difficulty level -> array ``(len(levels_x), n_items)`` of
            higher-is-better per-item scores (0/1 correctness, per-item log-likelihood).
            The mapping order is the difficulty order (easiest first).
        dense_by_level: difficulty level -> dense per-item scores ``(n_items,)``;
            same keys as ``scores_by_level``.
        drop: "relative" (:func:`normalized_drop`; dense mean must be > 0 in every
            resample), "absolute" (:func:`absolute_drop`) or "chance_corrected"
            (:func:`chance_corrected_drop`; needs ``chance``).
        chance: level -> chance score, required with and only with ``drop="chance_corrected"``.
        paired_levels: True when all levels hold the same items in different
            presentations (settings 2/3/4): one set of resampled indices serves all
            levels. False: each level is resampled independently.
        n_resamples, seed, confidence: bootstrap resamples, RNG seed, interval coverage.

    Returns:
        A :class:`SlopeComparison`: per-level slope estimates and percentile
        intervals, and for each pair (earlier, later) in mapping order the
        difference ``slope(later) - slope(earlier)`` with interval and p-value.

    Raises:
        ConfigError: shapes, keys or options that do not fit (before any compute),
            and a dense mean at or below 0 (relative) or chance (chance-corrected)
            on the data or in a resample, where the drop is undefined.
    """
    xs = _finite_array("levels_x", levels_x, ndim=1)
    if xs.size < 3 or np.all(xs == xs[0]):
        raise ConfigError(f"levels_x needs at least 3 levels with two distinct values, got {_preview(xs)}")
    kind = _check_choice("drop", drop, _DROPS)
    scores, dense = _check_level_arrays(xs.size, scores_by_level, dense_by_level, paired_levels)
    chances = _check_chance(kind, chance, list(scores))
    level = _check_confidence(confidence)
    resamples = _check_count("n_resamples", n_resamples)
    rng = np.random.default_rng(_check_seed(seed))

    estimates: dict[str, LevelSlope] = {}
    replicates: dict[str, np.ndarray] = {}
    shared = _resample_counts(rng, next(iter(dense.values())).size, resamples) if paired_levels else None
    for name in scores:
        counts = shared if shared is not None else _resample_counts(rng, dense[name].size, resamples)
        estimates[name], replicates[name] = _bootstrap_level(
            name, xs, scores[name], dense[name], counts, kind, chances.get(name), level
        )
    names = list(scores)
    differences = tuple(
        _difference(estimates[a], estimates[b], replicates[b] - replicates[a], level)
        for i, a in enumerate(names) for b in names[i + 1:]
    )
    return SlopeComparison(levels=tuple(estimates.values()), differences=differences, drop=kind,
                           confidence=level, n_resamples=resamples, seed=seed, paired_levels=paired_levels)


def _check_level_arrays(
    n_points: int,
    scores_by_level: Mapping[str, np.ndarray],
    dense_by_level: Mapping[str, np.ndarray],
    paired_levels: bool,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Finite score arrays of matching shapes per level, keyed the same in both mappings."""
    if not scores_by_level or list(scores_by_level) != list(dense_by_level):
        raise ConfigError(
            f"scores_by_level and dense_by_level need the same non-empty keys in the same order, "
            f"got {list(scores_by_level)} and {list(dense_by_level)}"
        )
    scores = {name: _finite_array(f"scores_by_level[{name!r}]", a, ndim=2) for name, a in scores_by_level.items()}
    dense = {name: _finite_array(f"dense_by_level[{name!r}]", a, ndim=1) for name, a in dense_by_level.items()}
    for name, array in scores.items():
        n_items = dense[name].size
        if n_items == 0 or array.shape != (n_points, n_items):
            raise ConfigError(
                f"scores_by_level[{name!r}] must have shape (len(levels_x), n_items) = ({n_points}, {n_items}) "
                f"with n_items = len(dense_by_level[{name!r}]) >= 1, got {array.shape}"
            )
    sizes = {name: d.size for name, d in dense.items()}
    if paired_levels and len(set(sizes.values())) > 1:
        raise ConfigError(f"paired_levels=True needs the same items at every level, got item counts {sizes}")
    return scores, dense


def _check_chance(kind: str, chance: Mapping[str, float] | None, names: list[str]) -> dict[str, float]:
    """The chance level per difficulty level for chance-corrected drops, else an empty dict."""
    if kind != "chance_corrected":
        if chance is not None:
            raise ConfigError(f"chance is only used with drop='chance_corrected', got drop={kind!r}")
        return {}
    if chance is None or set(chance) != set(names):
        raise ConfigError(f"drop='chance_corrected' needs a chance level for each of {names}, got {chance!r}")
    for name, value in chance.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not math.isfinite(value):
            raise ConfigError(f"chance[{name!r}] must be a finite number, got {value!r}")
    return {name: float(chance[name]) for name in names}


def _resample_counts(rng: np.random.Generator, n_items: int, n_resamples: int) -> np.ndarray:
    """How often each item is drawn in each resample, shape ``(n_resamples, n_items)``."""
    draws = rng.integers(0, n_items, (n_resamples, n_items))
    flat = (draws + n_items * np.arange(n_resamples)[:, None]).ravel()
    return np.bincount(flat, minlength=n_resamples * n_items).reshape(n_resamples, n_items).astype(np.float64)


def _bootstrap_level(
    name: str,
    xs: np.ndarray,
    scores: np.ndarray,
    dense: np.ndarray,
    counts: np.ndarray,
    kind: str,
    chance: float | None,
    confidence: float,
) -> tuple[LevelSlope, np.ndarray]:
    """One difficulty level's slope estimate and interval, and its bootstrap slope replicates.

    ``counts[r, i]`` is how often item i is drawn in resample r, so the resampled
    means are one matrix product.
    """
    point = _drops(kind, scores.mean(axis=1), dense.mean(), chance, name, "the data")
    boot_means = counts @ scores.T / dense.size
    boot_dense = counts @ dense / dense.size
    boot = _drops(kind, boot_means, boot_dense[:, None], chance, name, "a bootstrap resample")
    replicates = theil_sen_slopes(xs, boot)
    low, high = _percentiles(replicates, confidence)
    estimate = LevelSlope(level=name, slope=float(theil_sen_slopes(xs, point)), low=low, high=high,
                          drops=tuple(float(d) for d in point), n_items=dense.size)
    return estimate, replicates


def _drops(kind: str, pruned: np.ndarray, dense: np.ndarray | float, chance: float | None,
           level: str, where: str) -> np.ndarray:
    """The drop of the chosen kind; ConfigError naming the level and where the dense score was invalid."""
    try:
        if kind == "relative":
            return np.asarray(normalized_drop(pruned, dense))
        if kind == "absolute":
            return np.asarray(absolute_drop(pruned, dense))
        return np.asarray(chance_corrected_drop(pruned, dense, chance))
    except ConfigError as exc:
        raise ConfigError(f"level {level!r}, {where}: {exc}") from exc


def _percentiles(replicates: np.ndarray, confidence: float) -> tuple[float, float]:
    """The central ``confidence`` percentile interval of bootstrap replicates."""
    low, high = np.quantile(replicates, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)


def _difference(first: LevelSlope, second: LevelSlope, replicates: np.ndarray, confidence: float) -> SlopeDifference:
    """The slope difference second - first with percentile interval and two-sided bootstrap p-value."""
    low, high = _percentiles(replicates, confidence)
    total = replicates.size + 1
    below = (1 + np.count_nonzero(replicates <= 0)) / total
    above = (1 + np.count_nonzero(replicates >= 0)) / total
    return SlopeDifference(first=first.level, second=second.level, difference=second.slope - first.slope,
                           low=low, high=high, pvalue=float(min(1.0, 2 * min(below, above))))


# --------------------------------------------------------------------------- difficulty ordering


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


# --------------------------------------------------------------------------- seeds and interpolation


@dataclass(frozen=True)
class MeanInterval:
    """A mean over independent runs (e.g. seeds) with its Student-t confidence interval."""

    mean: float
    low: float
    high: float
    confidence: float
    n: int
    defined: bool
    reason: str | None


def t_interval(values: ArrayLike, *, confidence: float = 0.95) -> MeanInterval:
    """Mean of independent replicates and its two-sided Student-t interval (``scipy.stats.t``).

    For runs that differ only in their seed, where items are not the unit of
    resampling. Equal values give a zero-width interval at the mean. Undefined
    (``defined=False``, ``low == high == mean``) for fewer than 2 values: one run
    says nothing about the spread. Raises ConfigError on NaN/inf, an empty or
    non-1-D input, or a confidence outside (0, 1).
    """
    data = _finite_array("values", values, ndim=1)
    if data.size == 0:
        raise ConfigError("values must hold at least one replicate, got an empty array")
    level = _check_confidence(confidence)
    mean = float(data.mean())
    if data.size < 2:
        return MeanInterval(mean, mean, mean, level, 1, False, "a confidence interval needs at least 2 replicates")
    sem = float(data.std(ddof=1)) / math.sqrt(data.size)
    half = float(scipy.stats.t.ppf((1 + level) / 2, data.size - 1)) * sem
    return MeanInterval(mean, mean - half, mean + half, level, int(data.size), True, None)


def interpolation_barrier(alphas: ArrayLike, losses: ArrayLike) -> float:
    """Loss barrier along a linear path between two solutions (linear mode connectivity).

    ``losses[i]`` is the loss of ``(1 - alphas[i]) * theta_0 + alphas[i] * theta_1``;
    ``alphas`` must be strictly increasing from 0 to 1. Returns
    ``max_i(losses[i] - ((1 - alphas[i]) * losses[0] + alphas[i] * losses[-1]))``,
    the largest excess over the straight line between the end points; it is 0 at
    the end points, so the barrier is never negative, and it is 0 when every
    point lies on or below the line (a model interpolated with itself).
    Raises ConfigError for fewer than 2 points, mismatched lengths, NaN/inf, or
    alphas that do not run from 0 to 1 in increasing order.
    """
    a, loss = _paired(alphas, losses)
    if a.size < 2:
        raise ConfigError(f"an interpolation path needs at least its 2 end points; got {a.size}")
    if a[0] != 0.0 or a[-1] != 1.0 or np.any(np.diff(a) <= 0):
        raise ConfigError(f"alphas must increase strictly from 0 to 1; got {_preview(a)}")
    line = (1 - a) * loss[0] + a * loss[-1]
    return float(max(0.0, np.max(loss - line)))
