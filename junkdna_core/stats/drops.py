"""Performance drops of a compressed model against its dense original (paper Section 2).

- normalized (relative) drop: ``(f_p - f_d) / f_d``;
- absolute drop: ``f_p - f_d``;
- chance-corrected drop: ``(f_p - c) / (f_d - c) - 1`` for a chance level ``c``
  (goes beyond the paper: removes the floor that makes the normalized drop grow
  with the number of answer options).

Drops are negative when the pruned model scores lower than the dense one.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from junkdna_core.config.errors import ConfigError
from junkdna_core.stats._checks import (
    ArrayLike,
    _broadcast,
    _check_choice,
    _preview,
    _scalar_or_array,
)

DropKind = Literal["relative", "absolute", "chance_corrected"]
DROP_KINDS: tuple[str, ...] = ("relative", "absolute", "chance_corrected")


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


def undefined_drop(kind: DropKind, f_dense: float, chance: float | None = None) -> str | None:
    """Why the drop of ``kind`` is undefined for a dense score ``f_dense``, or None when it is defined.

    The relative drop needs ``f_dense > 0``; the chance-corrected one ``f_dense > chance``;
    the absolute drop is always defined. The reason names the score and the bound.
    """
    kind = _check_choice("drop kind", kind, DROP_KINDS)
    if kind == "relative" and f_dense <= 0:
        return f"the dense score is {f_dense:g}; the normalized drop is undefined"
    if kind == "chance_corrected" and chance is not None and f_dense <= chance:
        return f"the dense score {f_dense:.3f} is at or below chance {chance:.3f}; the chance-corrected drop is undefined"
    return None


def drop(kind: DropKind, f_pruned: ArrayLike, f_dense: ArrayLike, chance: float | None = None) -> float | np.ndarray:
    """The drop of ``kind``: :func:`normalized_drop` (``relative``), :func:`absolute_drop` or
    :func:`chance_corrected_drop` (which needs ``chance``). Raises what each of them raises."""
    kind = _check_choice("drop kind", kind, DROP_KINDS)
    if kind == "relative":
        return normalized_drop(f_pruned, f_dense)
    if kind == "absolute":
        return absolute_drop(f_pruned, f_dense)
    if chance is None:
        raise ConfigError("the chance-corrected drop needs the chance level")
    return chance_corrected_drop(f_pruned, f_dense, chance)
