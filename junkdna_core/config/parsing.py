"""Parsers of option values: each returns the value or raises ConfigError saying what was given and what is allowed.

Pure and torch-free (the bottom layer): the option groups in :mod:`junkdna_core.options`
wrap them for argparse and pytest, and library code reuses them to check its inputs.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Literal, get_args

from junkdna_core.config.budgets import Budget, get_budget
from junkdna_core.config.checks import check_seed
from junkdna_core.config.errors import ConfigError
from junkdna_core.config.thresholds import PAPER_THRESHOLDS

DTYPES = ("float32", "float16", "bfloat16")
BosPolicy = Literal["auto", "always", "never"]
BOS_POLICIES: tuple[str, ...] = get_args(BosPolicy)
MIN_SWEPT_LEVELS = 3  # Spearman and Theil-Sen over fewer compressed points are undefined


def parse_budget(text: str) -> Budget:
    """The budget named ``smoke`` or ``full``."""
    return get_budget(text)


def parse_levels(text: str) -> tuple[float, ...]:
    """A comma-separated list of finite numbers, e.g. ``0.1,0.3,0.5``, strictly increasing, no repeats."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if not parts:
        raise ConfigError(f"expected a comma-separated list of numbers such as 0.1,0.3,0.5; got {text!r}")
    values = []
    for part in parts:
        try:
            value = float(part)
        except ValueError:
            raise ConfigError(f"{part!r} in {text!r} is not a number") from None
        if not math.isfinite(value):
            raise ConfigError(f"{part!r} in {text!r} is not a finite number")
        values.append(value)
    if len(set(values)) != len(values):
        raise ConfigError(f"levels {text!r} repeat a value")
    return tuple(sorted(values))


def parse_sparsities(text: str) -> tuple[float, ...]:
    """Comma-separated sparsities, each in [0, 1), at least three of them above 0 (the dense point is implied)."""
    values = parse_levels(text)
    bad = [v for v in values if not 0.0 <= v < 1.0]
    if bad:
        raise ConfigError(f"sparsities must lie in [0, 1); got {', '.join(map(str, bad))} in {text!r}")
    if sum(v > 0 for v in values) < MIN_SWEPT_LEVELS:
        raise ConfigError(f"a sweep needs at least {MIN_SWEPT_LEVELS} sparsities above 0 for its claim statistics "
                          f"(Spearman, Theil-Sen); got {text!r}")
    return values


def parse_directory(text: str) -> Path:
    """A directory path that is not an existing file (it is created when first written)."""
    if not str(text).strip():
        raise ConfigError(f"expected a directory path; got {text!r}")
    try:
        path = Path(os.path.expanduser(str(text))).resolve()
        is_file = path.exists() and not path.is_dir()
    except (OSError, ValueError) as exc:  # a NUL byte, a name too long for the file system
        raise ConfigError(f"{text!r} is not a usable directory path: {exc}") from None
    if is_file:
        raise ConfigError(f"{text!r} ({path}) exists and is not a directory")
    return path


def parse_positive_int(text: str) -> int:
    """A whole number >= 1."""
    try:
        value = int(str(text).strip())
    except ValueError:
        raise ConfigError(f"expected a whole number >= 1; got {text!r}") from None
    if value < 1:
        raise ConfigError(f"expected a whole number >= 1; got {value} ({text!r})")
    return value


def parse_seed(text: str) -> int:
    """A whole number in [0, 2**32) (:data:`~junkdna_core.config.checks.SEED_LIMIT`)."""
    try:
        return check_seed(int(str(text).strip()))
    except (ValueError, ConfigError):
        raise ConfigError(f"a seed must be a whole number >= 0 and < 2**32; got {text!r}") from None


def parse_device(text: str) -> str:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""
    value = str(text).strip().lower()
    index = value[5:]
    if value in ("auto", "cpu", "cuda", "mps") or (value.startswith("cuda:") and index.isascii() and index.isdigit()):
        return value
    raise ConfigError(f"device must be auto, cpu, cuda, cuda:N or mps; got {text!r}")


def parse_dtype(text: str) -> str:
    """``float32``, ``float16`` or ``bfloat16``."""
    value = str(text).strip().lower()
    if value not in DTYPES:
        raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}; got {text!r}")
    return value


def parse_threshold(text: str) -> tuple[str, float]:
    """``claim=value``, e.g. ``monotonic=0.9``; the claim must be one the suite asserts."""
    name, sep, value = str(text).partition("=")
    name = name.strip()
    if not sep or name not in PAPER_THRESHOLDS:
        raise ConfigError(
            f"a threshold is CLAIM=VALUE with CLAIM one of {', '.join(PAPER_THRESHOLDS)}; got {text!r}"
        )
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise ConfigError(f"threshold {name} must be a finite number; got {value!r} in {text!r}")
    return name, number


def parse_bos_policy(text: str) -> BosPolicy:
    """``auto`` (what the model's tokenizer adds by default), ``always`` or ``never``."""
    value = str(text).strip().lower()
    if value not in BOS_POLICIES:
        raise ConfigError(f"the BOS policy must be one of {', '.join(BOS_POLICIES)}; got {text!r}")
    return value  # type: ignore[return-value]
