"""Confidence intervals: the percentile bootstrap over items and the Student-t interval over seeds."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.stats

from junkdna_core.config.errors import ConfigError
from junkdna_core.stats._checks import (
    ArrayLike,
    _check_confidence,
    _finite_array,
    _preview,
    check_count,
    check_seed,
)

_CHUNK_ELEMENTS = 4_000_000


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
    resamples = check_count("n_resamples", n_resamples)
    rng = np.random.default_rng(check_seed(seed))
    estimate = _finite_statistic(statistic, data, ())
    if data.size == 1:
        return Interval(estimate=estimate, low=estimate, high=estimate, confidence=level, n_resamples=resamples)
    chunk = max(1, _CHUNK_ELEMENTS // data.size)
    replicates = np.concatenate([
        _finite_statistic(statistic, data[rng.integers(0, data.size, (size, data.size))], (size,))
        for size in _chunk_sizes(resamples, chunk)
    ])
    low, high = percentiles(replicates, level)
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


def percentiles(replicates: np.ndarray, confidence: float) -> tuple[float, float]:
    """The central ``confidence`` percentile interval of bootstrap replicates."""
    low, high = np.quantile(replicates, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)


def resample_counts(rng: np.random.Generator, n_items: int, n_resamples: int) -> np.ndarray:
    """How often each of ``n_items`` items is drawn in each of ``n_resamples`` bootstrap resamples.

    Shape ``(n_resamples, n_items)``, float64, each row summing to ``n_items``: the
    resampled mean of per-item scores ``s`` is ``counts @ s / n_items``.
    """
    draws = rng.integers(0, n_items, (n_resamples, n_items))
    flat = (draws + n_items * np.arange(n_resamples)[:, None]).ravel()
    return np.bincount(flat, minlength=n_resamples * n_items).reshape(n_resamples, n_items).astype(np.float64)

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


