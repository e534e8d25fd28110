"""Where a model's weights go: all on one device, or spread by accelerate's device map when they do not fit.

The decision (:func:`plan_placement`) compares the bytes of the model's weights
at the run's dtype, counted on an empty (meta-device) copy built from its config
before anything is read, with the memory the weights may take on the device:
``--jd-max-memory`` when given, else
:data:`~junkdna_core.config.parsing.WEIGHTS_SHARE` of what is free there
now (the rest is for activations, logits and the KV cache). When they do not fit
(``--jd-device-map auto``), or always (``always``), the model is spread in module
order over the worker's devices, then the host's RAM, then disk (accelerate's
``infer_auto_device_map``, sequential); the scorer and fine-tuning take the
input device from the model (:func:`~junkdna_core.models.devices.input_device`)
and run on it unchanged. Every decision says why, and is recorded.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import torch
from accelerate import dispatch_model, infer_auto_device_map, init_empty_weights
from accelerate.utils import compute_module_sizes
from torch import nn

from junkdna_core.config.errors import ConfigError
from junkdna_core.config.parsing import WEIGHTS_SHARE, DeviceMapPolicy, format_size, parse_device_map
from junkdna_core.models.devices import device_map_name, dtype_name, free_memory

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class Placement:
    """Where a model's weights are, and why.

    ``strategy``: ``single`` (all on ``device``) or ``split`` (``device_map``: each
    top module's device, ``cuda:N``, ``cpu`` or ``disk``; inputs go to ``device``).
    ``weights_bytes``: the weights at ``dtype``; ``budgets``: the bytes the
    weights could take on each device (empty under ``--jd-device-map never``).
    """

    strategy: Literal["single", "split"]
    device: str
    dtype: str
    weights_bytes: int
    budgets: dict[str, int]
    reason: str
    device_map: dict[str, str] | None = None

    def describe(self) -> dict[str, Any]:
        """The placement as JSON-ready data (run records)."""
        return asdict(self)


def memory_budgets(devices: Sequence[torch.device], max_memory: Mapping[str, int] | None = None) -> dict[str, int]:
    """Bytes the weights may take on each of ``devices`` and on the host (``cpu``), in that order.

    ``max_memory`` (``--jd-max-memory``) gives a device's budget; any other device's is
    :data:`~junkdna_core.config.parsing.WEIGHTS_SHARE` of its free memory now.
    """
    names = list(dict.fromkeys([*(str(d) for d in devices), "cpu"]))
    given = dict(max_memory or {})
    return {name: given[name] if name in given else int(WEIGHTS_SHARE * free_memory(torch.device(name)))
            for name in names}


def plan_placement(
    weights_bytes: int, devices: Sequence[torch.device], dtype: torch.dtype, policy: DeviceMapPolicy = "auto",
    max_memory: Mapping[str, int] | None = None,
) -> Placement:
    """Whether a model whose weights take ``weights_bytes`` goes on ``devices[0]`` alone or is split.

    ``policy`` (``--jd-device-map``): ``auto`` splits only when the weights exceed
    the first device's budget (:func:`memory_budgets`), ``never`` never splits,
    ``always`` always goes through a device map.
    """
    policy = parse_device_map(policy)
    primary, name = str(devices[0]), dtype_name(dtype)
    if policy == "never":
        return Placement("single", primary, name, weights_bytes, {}, "--jd-device-map never: one device")
    budgets = memory_budgets(devices, max_memory)
    source = "--jd-max-memory" if max_memory and primary in max_memory else f"{WEIGHTS_SHARE:.0%} of its free memory"
    room = f"{format_size(weights_bytes)} of {name} weights, {format_size(budgets[primary])} budget on {primary} ({source})"
    if policy == "always":
        return Placement("split", primary, name, weights_bytes, budgets, f"--jd-device-map always; {room}")
    if weights_bytes <= budgets[primary]:
        return Placement("single", primary, name, weights_bytes, budgets, f"fits: {room}")
    return Placement("split", primary, name, weights_bytes, budgets,
                     f"does not fit: {room}; spread over {', '.join(budgets)} and disk")


@dataclass(frozen=True)
class PlacementRequest:
    """What a run asks for: its devices (inputs go to the first), the ``--jd-device-map`` policy, the budgets."""

    devices: tuple[torch.device, ...]
    policy: DeviceMapPolicy = "auto"
    max_memory: Mapping[str, int] | None = None

    def plan(self, model_class: Any, config: Any, dtype: torch.dtype) -> Placement:
        """The placement of the model ``model_class.from_config(config)`` in ``dtype``, its device map filled in.

        Sized on an empty (meta-device) copy: nothing is read or allocated.
        """
        empty = _empty_model(model_class, config, dtype)
        placement = plan_placement(weights_bytes(empty), self.devices, dtype, self.policy, self.max_memory)
        if placement.strategy == "split":
            mapping = _device_map(empty, placement)
            first = next((d for d in mapping.values() if d not in ("cpu", "disk")), "cpu")
            placement = replace(placement, device=first, device_map=mapping)  # inputs go where the first module is
            logger.info("model split over devices (%s): %s", placement.reason, placement.device_map)
        return placement


def _empty_model(model_class: Any, config: Any, dtype: torch.dtype) -> nn.Module:
    """A copy of the model ``config`` describes with no storage (meta device), its tied weights tied."""
    with init_empty_weights():
        model = model_class.from_config(config, dtype=dtype)
    model.tie_weights()
    return model


def weights_bytes(model: nn.Module) -> int:
    """Bytes of a model's parameters and buffers, tied ones once (works on an empty, meta-device model)."""
    return int(compute_module_sizes(model)[""])


def _device_map(empty: nn.Module, placement: Placement) -> dict[str, str]:
    """Each top module's device for a split ``placement``: its devices in order, then ``cpu``, then ``disk``."""
    budgets = {_accelerate_key(name): size for name, size in placement.budgets.items()}
    mapped = infer_auto_device_map(empty, max_memory=budgets,
                                   no_split_module_classes=sorted(empty._no_split_modules or ()))
    if dict(mapped) == {"": "disk"}:  # not even the first module fits: offload each top module to disk
        return {name: "disk" for name, _ in empty.named_children()}
    return {name: device_map_name(value) for name, value in mapped.items()}


def _offload_folder(placement: Placement) -> str | None:
    """A new temporary folder for the weights a split placement puts on disk, or None."""
    if placement.device_map and "disk" in placement.device_map.values():
        return tempfile.mkdtemp(prefix="junkdna-offload-")
    return None


def _removed_with(model: nn.Module, folder: str | None) -> nn.Module:
    """``model``, with ``folder`` (its offloaded weights) deleted when the model is."""
    if folder is not None:
        weakref.finalize(model, shutil.rmtree, folder, True)
    return model


def place_pretrained(load: Callable[..., nn.Module], placement: Placement) -> nn.Module:
    """``load(**options)`` (a ``from_pretrained``) with the options that read the weights straight to ``placement``."""
    if placement.strategy == "split":
        folder = _offload_folder(placement)
        try:
            model = load(device_map=dict(placement.device_map or {}), offload_folder=folder)
        except BaseException:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
            raise
        return _removed_with(model, folder)
    if placement.device == "cpu":
        return load()
    return load(device_map={"": placement.device})


def place_in_memory(model: nn.Module, placement: Placement) -> nn.Module:
    """Put a model built in host memory (random weights) where ``placement`` says."""
    if placement.strategy == "single":
        return model.to(placement.device)
    folder = _offload_folder(placement)
    return _removed_with(dispatch_model(model, dict(placement.device_map or {}), offload_dir=folder), folder)


def split_device_map(model: nn.Module) -> dict[str, str] | None:
    """The device map of a model spread over several devices by accelerate, or None when it sits on one."""
    mapping = getattr(model, "hf_device_map", None) or {}
    named = {name: device_map_name(value) for name, value in mapping.items()}
    return named if len(set(named.values())) > 1 or "disk" in named.values() else None


def offloaded_modules(model: nn.Module) -> list[str]:
    """The top modules whose weights accelerate's device map keeps off their execution device (on the host
    or disk, loaded for each forward): empty for a model whose weights are all where they run."""
    mapping = split_device_map(model)
    if mapping is None:
        return []
    accelerators = {d for d in mapping.values() if d not in ("cpu", "disk")}
    return sorted(k for k, d in mapping.items() if d == "disk" or (accelerators and d == "cpu"))


def _listed(names: list[str]) -> str:
    return f"{', '.join(names[:3])}{' ...' if len(names) > 3 else ''}"


def training_device_map(model: nn.Module, name: str) -> dict[str, str] | None:
    """The device map a copy of ``model`` (called ``name``) trains on, or None when it sits on one device.

    Training updates only weights that live on their device: ConfigError when
    accelerate offloads part of the model to the host or to disk, where an
    optimizer step would not reach them.
    """
    offloaded = offloaded_modules(model)
    if offloaded:
        raise ConfigError(
            f"{name} is spread over devices with {_listed(offloaded)} "
            "offloaded to the host or disk, and fine-tuning cannot update offloaded weights; give it more devices "
            "(--jd-device), a larger --jd-max-memory, or fine-tune a smaller model (--jd-encoder)"
        )
    return split_device_map(model)


def check_compressible(model: nn.Module, name: str) -> None:
    """ConfigError when a device map offloaded some of ``model``'s weights (``name`` in the message).

    Compression reads and rewrites every weight, and a compressed copy is built by
    writing into a copy of the dense model: offloaded weights are not in memory for
    either. A model spread over devices that hold all its weights is compressed
    where its blocks are, block by block (:mod:`~junkdna_core.compress.offload`).
    """
    offloaded = offloaded_modules(model)
    if offloaded:
        raise ConfigError(
            f"{name} is spread over devices with {_listed(offloaded)} offloaded to the host or disk by its "
            "device map, and compression needs every weight in memory; give it more devices (--jd-device "
            "cuda:0,cuda:1), a larger --jd-max-memory, or run it on the host (--jd-device cpu) when it fits there"
        )


def rebased_device_map(mapping: Mapping[str, str], source: nn.Module, target: nn.Module) -> dict[str, str]:
    """``mapping`` (of ``source``'s modules) for ``target``, a model built on the same backbone under another head.

    The backbone's modules keep their devices; ``target``'s other top modules (its
    head) go on the device of the backbone's last module.
    """
    source_base = next(n for n, m in source.named_modules() if m is source.base_model)
    prefix = target.base_model_prefix
    rebased: dict[str, str] = {}
    for key, device in mapping.items():
        if source_base and key != source_base and not key.startswith(f"{source_base}."):
            continue  # the source's own head (e.g. a language-model head)
        relative = key[len(source_base):].lstrip(".") if source_base else key
        rebased[f"{prefix}.{relative}" if relative else prefix] = device
    last = list(rebased.values())[-1]
    rebased.update({name: last for name, _ in target.named_children() if name != prefix})
    return rebased


def _accelerate_key(name: str) -> int | str:
    """accelerate's ``max_memory`` key for a device name: the index of a CUDA device, else the name."""
    device = torch.device(name)
    return device.index if device.type == "cuda" else name

