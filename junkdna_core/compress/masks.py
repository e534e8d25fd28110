"""Enforcing, holding, releasing and measuring pruning masks.

Masks here are bool tensors shaped like the module's stored ``weight``
(True = kept), keyed by module name. Three separate steps, as in
torch.ao.pruning:

- :func:`apply_masks` zeroes the pruned weights once (one-shot pruning);
- :func:`hold_masks` attaches a parametrization so every forward pass and every
  optimizer step sees ``weight * mask`` (Sparse Transfer: a pruned weight can
  never become non-zero), and :func:`release_masks` squashes it, baking the zeros
  in and leaving a plain weight that may regrow (Sparse-to-Dense);
- :func:`measure_sparsity` re-measures zeros after the fact: verify, never assume.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize

from junkdna_core.config.errors import ConfigError


class HeldMask(nn.Module):
    """A weight parametrization that multiplies by a fixed bool mask (stored as a buffer)."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask.to(torch.bool))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.mask


def _module(model: nn.Module, name: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError as exc:
        raise ConfigError(f"model has no module named {name!r}") from exc


def checked_mask(name: str, mask: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``mask`` on the weight's device; ConfigError naming ``name`` unless it is a bool tensor of the weight's shape."""
    if not isinstance(mask, torch.Tensor) or tuple(mask.shape) != tuple(weight.shape) or mask.dtype != torch.bool:
        got = (tuple(mask.shape), mask.dtype) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ConfigError(f"the mask for {name} must be a bool tensor of shape {tuple(weight.shape)}; got {got}")
    return mask.to(weight.device)


@torch.no_grad()
def enforce_mask(name: str, weight: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Zero the pruned entries of ``weight`` in place; returns the checked mask on the weight's device."""
    checked = checked_mask(name, mask, weight)
    weight.mul_(checked)
    return checked


def apply_masks(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> None:
    """Zero every pruned weight in place (one-shot; nothing stops later training from regrowing it)."""
    for name, mask in masks.items():
        enforce_mask(name, _module(model, name).weight, mask)


def hold_masks(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> None:
    """Hold each mask through training: the effective weight is ``weight * mask`` at every step."""
    for name, mask in masks.items():
        module = _module(model, name)
        if parametrize.is_parametrized(module, "weight"):
            raise ConfigError(f"{name} already holds a mask; release it first")
        checked = enforce_mask(name, module.weight, mask)
        parametrize.register_parametrization(module, "weight", HeldMask(checked))


def held_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """The masks currently held on the model, by module name."""
    found = {}
    for name, module in model.named_modules():
        if parametrize.is_parametrized(module, "weight"):
            for p in module.parametrizations["weight"]:
                if isinstance(p, HeldMask):
                    found[name] = p.mask
    return found


def release_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """Squash every held mask into its weight (zeros baked in) and remove it; returns the masks."""
    masks = held_masks(model)
    for name in masks:
        parametrize.remove_parametrizations(_module(model, name), "weight", leave_parametrized=True)
    return masks


@dataclass(frozen=True)
class SparsityReport:
    """Measured zero fractions: per module, and over all the measured weights."""

    per_layer: dict[str, float]
    zeros: int
    total: int

    @property
    def overall(self) -> float:
        return self.zeros / self.total if self.total else 0.0


@torch.no_grad()
def measure_sparsity(model: nn.Module, names: Iterable[str]) -> SparsityReport:
    """Count the exact zeros of each named module's (effective) weight."""
    per_layer, zeros, total = {}, 0, 0
    for name in names:
        weight = _module(model, name).weight
        z = int((weight == 0).sum())
        per_layer[name] = z / weight.numel()
        zeros += z
        total += weight.numel()
    return SparsityReport(per_layer, zeros, total)
