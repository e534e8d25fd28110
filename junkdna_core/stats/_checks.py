"""Input checks shared by the statistics: finite arrays, matching lengths, options in range."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from junkdna_core.config.checks import check_count, check_seed
from junkdna_core.config.errors import ConfigError

ArrayLike = float | Sequence[float] | np.ndarray

__all__ = ["ArrayLike", "check_count", "check_seed"]


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

