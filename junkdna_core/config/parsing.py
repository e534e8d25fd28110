"""Parsers of option values: each returns the value or raises ConfigError saying what was given and what is allowed.

Pure and torch-free (the bottom layer): the option groups in :mod:`junkdna_core.options`
wrap them for argparse and pytest, and library code reuses them to check its inputs.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any, Literal, get_args

from junkdna_core.config.budgets import Budget, get_budget
from junkdna_core.config.checks import check_seed
from junkdna_core.config.errors import ConfigError
from junkdna_core.config.thresholds import PAPER_THRESHOLDS

DTYPES = ("auto", "float32", "float16", "bfloat16")
EXPORT_FORMATS = ("auto", "dense", "compressed-tensors")
DeviceMapPolicy = Literal["auto", "never", "always"]
DEVICE_MAP_POLICIES: tuple[str, ...] = get_args(DeviceMapPolicy)
WEIGHTS_SHARE = 0.8
"""Share of a device's free memory a model's weights may take unless ``--jd-max-memory`` says otherwise
(the rest is for activations, logits and the KV cache)."""
_SINGLE_DEVICES = ("auto", "cpu", "cuda", "mps")
_SIZE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
               "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_SIZE = re.compile(r"((?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e[+-]?[0-9]+)?)\s*([a-z]*)", re.ASCII)
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


def _finite_or_nan(text: str) -> float:
    """``text`` as a float, or NaN if it is not a number."""
    try:
        return float(str(text).strip())
    except ValueError:
        return math.nan


def parse_gigabytes(text: str) -> int:
    """A size >= 0 in GB (10**9 bytes) such as ``200`` or ``0.5``, or with a unit as in :func:`parse_size`
    (``500MiB``); returned in bytes."""
    number = _read_size(text, "gb")
    if not math.isfinite(number):
        raise ConfigError(f"expected a size in GB (a number >= 0, e.g. 200 or 0.5, or with a unit such as 500MiB); "
                          f"got {text!r}")
    return round(number)


def parse_finite(text: str) -> float:
    """A finite number."""
    value = _finite_or_nan(text)
    if not math.isfinite(value):
        raise ConfigError(f"expected a finite number; got {text!r}")
    return value


def parse_export_format(text: str) -> str:
    """``auto``, ``dense`` or ``compressed-tensors``: how ``junkdna export`` writes a compressed model."""
    value = str(text).strip().lower()
    if value not in EXPORT_FORMATS:
        raise ConfigError(f"the export format must be one of {', '.join(EXPORT_FORMATS)}; got {text!r}")
    return value


def parse_method_option(text: str) -> tuple[str, Any]:
    """``name=value`` for one method parameter; the value is read as JSON (``128``, ``0.5``, ``true``,
    ``null``), else kept as text (``global``)."""
    name, sep, raw = str(text).partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise ConfigError(f"a method option is NAME=VALUE, such as group_size=128 or act_order=true; got {text!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw.strip()
    return name, value


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


def _cuda_index(text: str) -> int | None:
    """N for ``cuda:N`` (ASCII digits), else None."""
    index = text[5:]
    return int(index) if text.startswith("cuda:") and index.isascii() and index.isdigit() else None


def parse_device(text: str) -> str:
    """``auto``, ``cpu``, ``mps``, ``cuda``, ``cuda:N``, or a comma-separated list of distinct ``cuda:N``.

    Returned in canonical form (lower case, no spaces): ``cuda:0, CUDA:2`` gives ``cuda:0,cuda:2``.
    ``auto`` and ``cuda`` mean every visible CUDA device (``auto`` falls back to the CPU).
    """
    allowed = "device must be auto, cpu, mps, cuda, cuda:N or a list of CUDA devices such as cuda:0,cuda:2"
    parts = [part.strip().lower() for part in str(text).split(",")]
    if len(parts) == 1 and parts[0] in _SINGLE_DEVICES:
        return parts[0]
    indices = [_cuda_index(part) for part in parts]
    if None in indices:
        raise ConfigError(f"{allowed}; got {text!r}")
    if len(set(indices)) != len(indices):
        raise ConfigError(f"device list {text!r} names a CUDA device twice; list each device once")
    return ",".join(f"cuda:{index}" for index in indices)


def device_list(device: str) -> tuple[str, ...]:
    """The entries of a device option: ``("cuda:0", "cuda:2")`` for ``cuda:0,cuda:2``, ``("auto",)`` for ``auto``."""
    return tuple(parse_device(device).split(","))


def parse_dtype(text: str) -> str:
    """``auto`` (bfloat16 on a CUDA device that supports it, float16 on older ones, float32 elsewhere),
    ``float32``, ``float16`` or ``bfloat16``."""
    value = str(text).strip().lower()
    if value not in DTYPES:
        raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}; got {text!r}")
    return value


def training_dtype(dtype: str) -> str:
    """The dtype a model that is fine-tuned is loaded in: ``auto`` is float32, anything else itself.

    AdamW on bfloat16 weights loses every update below bfloat16's resolution (about
    0.4% of a weight, more than a fine-tuning step at the usual learning rates), so
    fine-tuned models keep float32 weights unless a dtype is given explicitly.
    """
    value = parse_dtype(dtype)
    return "float32" if value == "auto" else value


def parse_device_map(text: str) -> DeviceMapPolicy:
    """When a model is spread over several devices with accelerate's device map.

    ``auto``: only when its weights do not fit the device's memory budget;
    ``never``: always on the one device; ``always``: always through a device map.
    """
    value = str(text).strip().lower()
    if value not in DEVICE_MAP_POLICIES:
        raise ConfigError(f"the device-map policy must be one of {', '.join(DEVICE_MAP_POLICIES)}; got {text!r}")
    return value  # type: ignore[return-value]


def _read_size(text: str, default_unit: str) -> float:
    """``text`` in bytes: a number >= 0 with an optional unit (else ``default_unit``); NaN if it is not one."""
    match = _SIZE.fullmatch(str(text).strip().lower())
    if match is None or match.group(2) not in {"", *_SIZE_UNITS}:
        return math.nan
    return float(match.group(1)) * _SIZE_UNITS[match.group(2) or default_unit]


def parse_size(text: str) -> int:
    """A size in bytes: a number with an optional unit, ``64GiB``, ``20GB``, ``512MiB``, ``1000`` (bytes)."""
    number = _read_size(text, "b")
    if math.isnan(number):
        raise ConfigError(f"a size is a number with an optional unit ({', '.join(_SIZE_UNITS)}), e.g. 20GiB; "
                          f"got {text!r}")
    if not math.isfinite(number):
        raise ConfigError(f"size {text!r} is too large")
    value = int(number)
    if value < 1:
        raise ConfigError(f"a size must be at least 1 byte; got {text!r}")
    return value


def format_size(size: int) -> str:
    """``size`` bytes for a reader: ``512 B``, ``1.5 KiB``, ``20.0 GiB`` (binary units up to GiB)."""
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def parse_max_memory(text: str) -> dict[str, int]:
    """``DEVICE=SIZE,...`` (``cuda:0=20GiB,cpu=64GiB``): the memory model weights may take on each device.

    DEVICE is ``cpu`` or ``cuda:N`` (a bare ``N`` is ``cuda:N``, as in accelerate's ``max_memory``).
    """
    budgets: dict[str, int] = {}
    for part in (p.strip() for p in str(text).split(",")):
        device, sep, size = part.partition("=")
        device = device.strip().lower()
        device = f"cuda:{device}" if device.isascii() and device.isdigit() else device
        if not sep or (device != "cpu" and _cuda_index(device) is None):
            raise ConfigError(f"max memory is DEVICE=SIZE,... with DEVICE cpu or cuda:N, e.g. cuda:0=20GiB,cpu=64GiB; "
                              f"got {part!r} in {text!r}")
        if device in budgets:
            raise ConfigError(f"max memory {text!r} gives {device} twice")
        try:
            budgets[device] = parse_size(size)
        except ConfigError as exc:
            raise ConfigError(f"in {text!r}: {exc}") from None
    return budgets


def parse_threshold(text: str) -> tuple[str, float]:
    """``claim=value``, e.g. ``monotonic=0.9``; the claim must be one the suite asserts."""
    name, sep, value = str(text).partition("=")
    name = name.strip()
    if not sep or name not in PAPER_THRESHOLDS:
        raise ConfigError(
            f"a threshold is CLAIM=VALUE with CLAIM one of {', '.join(PAPER_THRESHOLDS)}; got {text!r}"
        )
    number = _finite_or_nan(value)
    if not math.isfinite(number):
        raise ConfigError(f"threshold {name} must be a finite number; got {value!r} in {text!r}")
    return name, number


def parse_bos_policy(text: str) -> BosPolicy:
    """``auto`` (what the model's tokenizer adds by default), ``always`` or ``never``."""
    value = str(text).strip().lower()
    if value not in BOS_POLICIES:
        raise ConfigError(f"the BOS policy must be one of {', '.join(BOS_POLICIES)}; got {text!r}")
    return value  # type: ignore[return-value]
