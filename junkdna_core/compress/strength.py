"""Compression strength: one axis for every family, 0 = not compressed (torch-free).

Pruning: the sparsity. Quantization: the fraction of 16 bits removed,
``1 - bits / 16``. Low rank: ``1 - kept rank fraction``. The leaderboard and
plots read levels back from strengths with :func:`level_of`.
"""

from __future__ import annotations

from junkdna_core.config.errors import ConfigError

MAX_BITS = 16
"""Quantization levels are whole numbers of bits from 1 to MAX_BITS; strength is measured against it."""

FAMILIES = ("pruning", "quantization", "lowrank")
LEVEL_NAMES = {"pruning": "sparsity", "quantization": "bits", "lowrank": "kept rank fraction"}


def strength(family: str, level: float) -> float:
    """The strength of a ``family`` configuration at ``level`` (sparsity, bits or kept rank fraction)."""
    if family == "quantization":
        return 1.0 - level / MAX_BITS
    if family == "lowrank":
        return 1.0 - level
    if family == "pruning":
        return level
    raise ConfigError(f"family must be one of {', '.join(FAMILIES)}; got {family!r}")


def level_of(family: str, value: float) -> float:
    """The level of a ``family`` configuration at strength ``value``: the inverse of :func:`strength`."""
    if family == "quantization":
        return MAX_BITS * (1.0 - value)
    if family == "lowrank":
        return 1.0 - value
    if family == "pruning":
        return value
    raise ConfigError(f"family must be one of {', '.join(FAMILIES)}; got {family!r}")
