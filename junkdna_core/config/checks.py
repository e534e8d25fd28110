"""Checks of counts and seeds, shared by every module that takes them from a user."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from junkdna_core.config.errors import ConfigError

SEED_LIMIT = 2**32
"""Seeds are whole numbers in ``[0, SEED_LIMIT)``, the one limit of every seed junkdna takes.

32 bits is what every consumer uses in full: torch's CPU generator keeps only the low
32 bits of a seed (two seeds that agree there draw the same numbers), numpy's legacy
seeding and lm-evaluation-harness's seeds take no more, and random pruning continues a
CRC-32 with it.
"""


def _is_whole(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_count(name: str, value: Any, *, allow_none: bool = False) -> Any:
    """``value`` as an int if it is a whole number >= 1 (or None when ``allow_none``); else ConfigError."""
    if value is None and allow_none:
        return None
    if not _is_whole(value) or value < 1:
        raise ConfigError(f"{name} must be a positive integer{' or None' if allow_none else ''}; got {value!r}")
    return int(value)


def check_seed(seed: Any, name: str = "seed") -> int:
    """``seed`` as an int if it is a whole number in ``[0, SEED_LIMIT)`` (``2**32``); else ConfigError."""
    if not _is_whole(seed) or not 0 <= seed < SEED_LIMIT:
        raise ConfigError(f"{name} must be a whole number >= 0 and < 2**32; got {seed!r}")
    return int(seed)


def offset_seeds(run_seed: Any, offsets: Iterable[int]) -> tuple[int, ...]:
    """The seeds ``run_seed + offset`` for each offset, modulo :data:`SEED_LIMIT`: how a run's seed (``--jd-seed``)
    derives every further seed it needs (fine-tuning seeds, the random control's masks). ConfigError names a bad seed."""
    base = check_seed(run_seed, "the run's seed")
    return tuple((base + offset) % SEED_LIMIT for offset in offsets)
