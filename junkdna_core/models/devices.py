"""The devices and dtype a run uses, checked against this machine: one GPU per xdist worker, dtype ``auto``.

``--jd-device`` names the devices a run may use (``auto``: every visible CUDA
device, else the CPU; ``cuda:0,cuda:2``: those two). With G of them and W
pytest-xdist workers, worker k (``gw<k>``) gets ``devices[k mod G]`` when W >= G,
and every W-th device from the k-th (``devices[k::W]``) when W < G: its first
device is the one its inputs go to, the others hold the parts of a model too
large for one (see :mod:`~junkdna_core.models.placement`). A run without xdist
is worker 0 of 1: the first device, the others as spares.
"""

from __future__ import annotations

from collections.abc import Sequence

import psutil
import torch
from torch import nn

from junkdna_core.config.errors import ConfigError
from junkdna_core.config.parsing import device_list, parse_dtype


def visible_devices(device: str) -> tuple[torch.device, ...]:
    """The devices ``device`` (an ``--jd-device`` value) names on this machine, in order.

    Raises ConfigError for an unknown device string or a device this machine lacks.
    """
    entries = device_list(device)
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if entries in (("auto",), ("cuda",)):
        if count:
            return tuple(torch.device("cuda", index) for index in range(count))
        if entries == ("cuda",):
            raise ConfigError(f"device {device!r} requested but CUDA is not available; use 'cpu' or 'auto'")
        return (torch.device("cpu"),)
    if entries == ("cpu",):
        return (torch.device("cpu"),)
    if entries == ("mps",):
        if not torch.backends.mps.is_available():
            raise ConfigError("device 'mps' requested but MPS is not available; use 'cpu' or 'auto'")
        return (torch.device("mps"),)
    if not count:
        raise ConfigError(f"device {device!r} requested but CUDA is not available; use 'cpu' or 'auto'")
    devices = tuple(torch.device(entry) for entry in entries)
    missing = [str(d) for d in devices if d.index >= count]
    if missing:
        raise ConfigError(f"device {device!r} requested but only {count} CUDA device(s) exist "
                          f"(cuda:0..cuda:{count - 1}); {', '.join(missing)} is not one of them")
    return devices


def worker_devices(device: str, worker: int = 0, workers: int = 1) -> tuple[torch.device, ...]:
    """The devices of xdist worker ``worker`` of ``workers``, its input device first (see the module docstring)."""
    if not 0 <= worker < max(workers, 1):
        raise ConfigError(f"worker index {worker} is not in 0..{workers - 1}")
    devices = visible_devices(device)
    if workers >= len(devices):
        return (devices[worker % len(devices)],)
    return devices[worker::workers]


def devices_spec(devices: Sequence[torch.device]) -> str:
    """The ``--jd-device`` string naming exactly ``devices`` (what :func:`visible_devices` turns back into them)."""
    return ",".join(str(d) if d.type != "cuda" or d.index is not None else "cuda:0" for d in devices)


def resolve_device(device: str) -> torch.device:
    """The device inputs go to for ``device``: the first one it names (``auto``: cuda:0 if present, else CPU)."""
    return visible_devices(device)[0]


def resolve_dtype(dtype: str, device: torch.device | str = "cpu") -> torch.dtype:
    """The torch dtype for ``dtype`` on ``device``.

    ``auto`` is bfloat16 on a CUDA device that supports it (compute capability
    8.0 or later: A100, H100, RTX 30xx and newer), float16 on older CUDA devices,
    and float32 on the CPU and MPS. Anything else names the dtype itself.
    """
    name = parse_dtype(dtype)
    if name != "auto":
        return getattr(torch, name)
    device = torch.device(device)
    if device.type != "cuda":
        return torch.float32
    with torch.cuda.device(device):  # is_bf16_supported asks about the current device
        return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16


def dtype_name(dtype: torch.dtype) -> str:
    """``float32`` for ``torch.float32``: the name in cache keys and records."""
    return str(dtype).removeprefix("torch.")


def free_memory(device: torch.device) -> int:
    """Bytes free on ``device`` now: the CUDA device's free memory, or the host's available RAM."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    return int(psutil.virtual_memory().available)


def input_device(model: nn.Module) -> torch.device:
    """The device a model's inputs go to.

    For a model spread over devices by accelerate (``hf_device_map``), that is the
    device its input embeddings run on (offloaded modules run on the map's first
    accelerator, as accelerate's ``dispatch_model`` does); otherwise the device of
    its first parameter.
    """
    device_map = {key: device_map_name(value) for key, value in (getattr(model, "hf_device_map", None) or {}).items()}
    if device_map:
        accelerators = [d for d in device_map.values() if d not in ("cpu", "disk")]
        main = torch.device(accelerators[0] if accelerators else "cpu")
        embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
        name = next((n for n, m in model.named_modules() if m is embeddings), None)
        if name is not None:
            covering = [key for key in device_map if key == "" or name == key or name.startswith(f"{key}.")]
            if covering:
                placed = device_map[max(covering, key=len)]
                return main if placed in ("cpu", "disk") else torch.device(placed)
        return main
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def device_map_name(value: int | str | torch.device) -> str:
    """A device of an accelerate device map by name: ``cuda:N`` for an index, ``cpu``, ``disk``, ``cuda:N``."""
    return f"cuda:{value}" if isinstance(value, int) else str(value)
