"""The torch device and dtype a run uses, checked against this machine."""

from __future__ import annotations

import torch

from junkdna_core.config.errors import ConfigError
from junkdna_core.config.parsing import parse_device, parse_dtype


def resolve_device(device: str) -> torch.device:
    """The torch device for ``device`` (``auto``: CUDA if available, else CPU).

    Raises ConfigError for an unknown device string or a device this machine lacks.
    """
    device = parse_device(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} requested but CUDA is not available; use 'cpu' or 'auto'")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device {device!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    if device == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device 'mps' requested but MPS is not available; use 'cpu' or 'auto'")
    return torch.device(device)


def resolve_dtype(dtype: str) -> torch.dtype:
    """The torch dtype named ``dtype``: float32, float16 or bfloat16."""
    return getattr(torch, parse_dtype(dtype))


