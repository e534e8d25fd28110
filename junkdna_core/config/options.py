"""The user-facing options, defined once and shared by the pytest plugin and the CLI.

Each parser rejects a bad value at parse time with a message saying what was
given and what is allowed (argparse turns it into a usage error before any
compute). :func:`add_run_options` takes an ``addoption`` callable and a prefix,
so pytest gets ``--jd-model`` and the CLI gets ``--model`` from one definition
(the pytest-benchmark pattern).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from junkdna_core.config.errors import ConfigError

BUDGETS = ("smoke", "full")
SEED_LIMIT = 2**64  # torch.manual_seed takes seeds below 2**64


def type_error(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """Wrap a parser so a ConfigError becomes argparse's usage error (shown before any run)."""

    def wrapped(text: str) -> Any:
        try:
            return parse(text)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc

    wrapped.__name__ = parse.__name__
    return wrapped


def parse_budget(text: str) -> str:
    """``smoke`` or ``full``."""
    value = str(text).strip().lower()
    if value not in BUDGETS:
        raise ConfigError(f"budget must be one of {', '.join(BUDGETS)}; got {text!r}")
    return value


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


MIN_SWEPT_LEVELS = 3  # Spearman and Theil-Sen over fewer compressed points are undefined


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


def parse_method_names(text: str) -> tuple[str, ...]:
    """Comma-separated registered method names (or ``module:Class``); each must resolve."""
    from junkdna_core.compress.registry import parse_method_list

    with _naming_the_list(text):
        parse_method_list(text)
    return tuple(p.strip() for p in str(text).split(",") if p.strip())


def parse_setting_names(text: str) -> tuple[str, ...]:
    """Comma-separated setting names, each known (``setting1`` .. ``setting6``)."""
    from junkdna_core.data.settings import get_setting

    names = tuple(p.strip() for p in str(text).split(",") if p.strip())
    if not names:
        raise ConfigError(f"expected a comma-separated list of settings such as setting2,setting3; got {text!r}")
    with _naming_the_list(text):
        for name in names:
            get_setting(name)
    return names


@contextlib.contextmanager
def _naming_the_list(text: str) -> Iterator[None]:
    """Re-raise a ConfigError about one element of a list with the whole list given, if it does not name it."""
    try:
        yield
    except ConfigError as exc:
        if repr(text) in str(exc):
            raise
        raise ConfigError(f"in {text!r}: {exc}") from None


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
    """A whole number in [0, 2**64)."""
    try:
        value = int(str(text).strip())
    except ValueError:
        value = -1
    if not 0 <= value < SEED_LIMIT:
        raise ConfigError(f"a seed must be a whole number >= 0 and < 2**64; got {text!r}")
    return value


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
    allowed = ("float32", "float16", "bfloat16")
    if value not in allowed:
        raise ConfigError(f"dtype must be one of {', '.join(allowed)}; got {text!r}")
    return value


def add_run_options(addoption: Callable[..., Any], prefix: str = "") -> None:
    """Register the options that choose what a run measures: model, methods, levels, budget, seed."""
    addoption(f"--{prefix}model", default="smollm2", metavar="SPEC",
              help="model: smollm2 (embedded default), minilm, random:<config>, a local folder or a hub id")
    addoption(f"--{prefix}methods", type=type_error(parse_method_names), default=None, metavar="NAMES",
              help="comma-separated compression methods (see `junkdna methods`); default: every built-in")
    addoption(f"--{prefix}sparsities", type=type_error(parse_sparsities), default=None, metavar="LIST",
              help="comma-separated sparsities in [0, 1) for pruning methods; default: the budget's")
    addoption(f"--{prefix}budget", type=type_error(parse_budget), default="smoke", metavar="NAME",
              help="smoke (minutes on 2 CPU cores) or full (a real study)")
    addoption(f"--{prefix}seed", type=type_error(parse_seed), default=0, metavar="N",
              help="seed for data sampling, calibration and random baselines")
    addoption(f"--{prefix}device", type=type_error(parse_device), default="auto", metavar="DEV",
              help="auto (CUDA when present), cpu, cuda or cuda:N")
    addoption(f"--{prefix}dtype", type=type_error(parse_dtype), default="float32", metavar="DTYPE",
              help="float32, float16 or bfloat16")


def parse_threshold(text: str) -> tuple[str, float]:
    """``claim=value``, e.g. ``monotonic=0.9``; the claim must be one the suite asserts."""
    from junkdna_core.config.thresholds import PAPER_THRESHOLDS

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


def add_items_option(addoption: Callable[..., Any], prefix: str = "") -> None:
    """Register the option that overrides the budget's number of items per difficulty level."""
    addoption(f"--{prefix}items", type=type_error(parse_positive_int), default=None, metavar="N",
              help="items scored per difficulty level (default: the budget's: smoke 24, full 500)")


def add_threshold_option(addoption: Callable[..., Any], prefix: str = "") -> None:
    """Register the option that overrides a claim's threshold (default: the paper's)."""
    addoption(f"--{prefix}threshold", type=type_error(parse_threshold), action="append", default=[],
              metavar="CLAIM=VALUE",
              help="override a claim threshold, e.g. monotonic=0.9 (repeatable); defaults are the paper's")


def add_cache_option(addoption: Callable[..., Any], prefix: str = "") -> None:
    """Register the option that chooses the artifact cache directory."""
    addoption(f"--{prefix}cache", type=type_error(parse_directory), default=None, metavar="DIR",
              help="artifact cache directory (default: $JUNKDNA_CACHE or the user cache dir)")


def add_results_option(addoption: Callable[..., Any], prefix: str = "") -> None:
    """Register the option that chooses where run records are written."""
    addoption(f"--{prefix}results", type=type_error(parse_directory), default=None, metavar="DIR",
              help="where run records are written (default: ./jd-results)")
