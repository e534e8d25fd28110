"""Robust slopes: Theil–Sen with Sen's interval, and the paired item bootstrap of slopes per difficulty level."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.stats

from junkdna_core.config.errors import ConfigError
from junkdna_core.stats import drops
from junkdna_core.stats._checks import (
    ArrayLike,
    _check_choice,
    _check_confidence,
    _finite_array,
    _paired,
    _preview,
    check_count,
    check_seed,
)
from junkdna_core.stats.drops import DROP_KINDS, DropKind
from junkdna_core.stats.intervals import percentiles, resample_counts


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
    replicates: Mapping[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)
    """Level -> its ``n_resamples`` bootstrap slopes, in resample order (resample r of every level
    used the same item draw when ``paired_levels``), for intervals of statistics built from slopes."""

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
    kind = _check_choice("drop", drop, DROP_KINDS)
    scores, dense = _check_level_arrays(xs.size, scores_by_level, dense_by_level, paired_levels)
    chances = _check_chance(kind, chance, list(scores))
    level = _check_confidence(confidence)
    resamples = check_count("n_resamples", n_resamples)
    rng = np.random.default_rng(check_seed(seed))

    estimates: dict[str, LevelSlope] = {}
    replicates: dict[str, np.ndarray] = {}
    shared = resample_counts(rng, next(iter(dense.values())).size, resamples) if paired_levels else None
    for name in scores:
        counts = shared if shared is not None else resample_counts(rng, dense[name].size, resamples)
        estimates[name], replicates[name] = _bootstrap_level(
            name, xs, scores[name], dense[name], counts, kind, chances.get(name), level
        )
    names = list(scores)
    differences = tuple(
        _difference(estimates[a], estimates[b], replicates[b] - replicates[a], level)
        for i, a in enumerate(names) for b in names[i + 1:]
    )
    return SlopeComparison(levels=tuple(estimates.values()), differences=differences, drop=kind,
                           confidence=level, n_resamples=resamples, seed=seed, paired_levels=paired_levels,
                           replicates=replicates)


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
    low, high = percentiles(replicates, confidence)
    estimate = LevelSlope(level=name, slope=float(theil_sen_slopes(xs, point)), low=low, high=high,
                          drops=tuple(float(d) for d in point), n_items=dense.size)
    return estimate, replicates


def _drops(kind: str, pruned: np.ndarray, dense: np.ndarray | float, chance: float | None,
           level: str, where: str) -> np.ndarray:
    """The drop of the chosen kind; ConfigError naming the level and where the dense score was invalid."""
    try:
        return np.asarray(drops.drop(kind, pruned, dense, chance))
    except ConfigError as exc:
        raise ConfigError(f"level {level!r}, {where}: {exc}") from exc


def _difference(first: LevelSlope, second: LevelSlope, replicates: np.ndarray, confidence: float) -> SlopeDifference:
    """The slope difference second - first with percentile interval and two-sided bootstrap p-value."""
    low, high = percentiles(replicates, confidence)
    total = replicates.size + 1
    below = (1 + np.count_nonzero(replicates <= 0)) / total
    above = (1 + np.count_nonzero(replicates >= 0)) / total
    return SlopeDifference(first=first.level, second=second.level, difference=second.slope - first.slope,
                           low=low, high=high, pvalue=float(min(1.0, 2 * min(below, above))))


