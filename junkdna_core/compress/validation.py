"""Checks of compression parameters, shared by the methods and their parameter dataclasses.

Each raises :class:`~junkdna_core.config.errors.ConfigError` naming the value
given and what is allowed, so a bad configuration fails before any compute.
"""

from __future__ import annotations

from fractions import Fraction

from junkdna_core.compress.strength import MAX_BITS
from junkdna_core.config.errors import ConfigError

_WHOLE_TOLERANCE = 1e-9


def check_fraction(name: str, value: float, *, low_open: bool = False, high_open: bool = True) -> None:
    """Raise ConfigError unless ``value`` is a number in [0, 1) (or the given open/closed interval)."""
    left, right = ("(" if low_open else "["), (")" if high_open else "]")
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        ok = (value > 0 if low_open else value >= 0) and (value < 1 if high_open else value <= 1)
    if not ok:
        raise ConfigError(f"{name} must be a number in {left}0, 1{right}; got {value!r}")


def check_nm(n: int, m: int) -> None:
    """Raise ConfigError unless ``n`` and ``m`` are integers with ``1 <= n <= m``."""
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (n, m)):
        raise ConfigError(f"N:M pruning needs integer N and M; got N={n!r}, M={m!r}")
    if m < 1:
        raise ConfigError(f"N:M pruning needs M >= 1; got M={m}")
    if not 1 <= n <= m:
        raise ConfigError(f"N:M pruning needs 1 <= N <= M; got N={n}, M={m}")


def check_nm_shape(shape: tuple[int, ...], m: int) -> None:
    """Raise ConfigError unless ``shape`` is a matrix whose in_features (dim 1) is a multiple of ``m``."""
    if len(shape) != 2 or shape[1] % m != 0:
        raise ConfigError(
            f"N:M pruning with M={m} needs a 2-D weight whose in_features is a multiple of {m}; "
            f"got shape {tuple(shape)}"
        )


def n_for_sparsity(sparsity: float, m: int) -> int:
    """The N of N:M pruning that gives ``sparsity`` with group size ``m``: ``(1 - sparsity) * m``.

    Raises ConfigError unless that is a whole number (listing the sparsities that are allowed).
    """
    check_fraction("sparsity", sparsity)
    if not isinstance(m, int) or isinstance(m, bool) or m < 1:
        raise ConfigError(f"N:M pruning needs an integer M >= 1; got M={m!r}")
    kept = (1 - Fraction(sparsity)) * m  # exact: no float overflow for a huge M
    n = round(kept)
    if abs(n - kept) > _WHOLE_TOLERANCE:
        allowed = (", ".join(f"{1 - k / m:g}" for k in range(m, 0, -1)) if m <= 16
                   else f"multiples of 1/{m} in [0, 1)")
        raise ConfigError(
            f"N:M pruning with M={m} allows sparsity in {{{allowed}}} (N = (1 - sparsity) * M whole); "
            f"got sparsity {sparsity!r}"
        )
    return n


def check_bits(bits: object) -> None:
    """Raise ConfigError unless ``bits`` is an int (not a bool) in 1..16."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= MAX_BITS:
        raise ConfigError(f"bits must be a whole number from 1 to {MAX_BITS}; got {bits!r}")


def check_group_size(group_size: object) -> None:
    """Raise ConfigError unless ``group_size`` is None (one grid per row) or a positive int."""
    if group_size is None:
        return
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise ConfigError(f"group_size must be a positive whole number or None (per row); got {group_size!r}")


def _suggested_divisor(group_size: int, in_features: int) -> int | None:
    """The largest power of two (else any divisor > 1) of ``in_features`` not above ``group_size``."""
    divisors = [d for d in range(2, min(group_size, in_features) + 1) if in_features % d == 0]
    powers = [d for d in divisors if d & (d - 1) == 0]
    return max(powers or divisors, default=None)


def check_group_divides(group_size: int | None, in_features: int, layer: str, method: str) -> None:
    """Raise ConfigError unless ``group_size`` is None or divides ``in_features`` of ``layer``; the message
    names a group size that fits, as ``method``'s option on the command line."""
    if group_size is None or in_features % group_size == 0:
        return
    divisor = _suggested_divisor(group_size, in_features)
    hint = (f"use a divisor such as {divisor} (--jd-methods '{method}[group_size={divisor}]')" if divisor
            else f"use one grid per row (--jd-methods '{method}[group_size=None]')")
    raise ConfigError(f"group size {group_size} does not divide in_features {in_features} of layer {layer}; {hint}")


def check_percdamp(percdamp: object) -> None:
    """Raise ConfigError unless ``percdamp`` is a number in (0, 1]."""
    ok = isinstance(percdamp, (int, float)) and not isinstance(percdamp, bool) and 0 < percdamp <= 1
    if not ok:
        raise ConfigError(
            f"percdamp must be a number in (0, 1] (a fraction of the mean Hessian diagonal); got {percdamp!r}"
        )


def check_blocksize(blocksize: object) -> None:
    """Raise ConfigError unless ``blocksize`` is a positive int."""
    if isinstance(blocksize, bool) or not isinstance(blocksize, int) or blocksize < 1:
        raise ConfigError(f"blocksize must be a positive whole number of columns; got {blocksize!r}")
