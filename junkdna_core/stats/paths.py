"""Linear mode connectivity: the loss barrier along an interpolation path between two solutions."""

from __future__ import annotations

import numpy as np

from junkdna_core.config.errors import ConfigError
from junkdna_core.stats._checks import (
    ArrayLike,
    _paired,
    _preview,
)


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
