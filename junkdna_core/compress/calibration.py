"""Layer-by-layer calibration: block inputs, input statistics, and running one block.

The model is never run whole on the calibration batch past the first block:
the inputs of block 0 are caught, then each block is run on its own, so peak
memory stays near one block's activations (the Wanda/SparseGPT scheme).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from junkdna_core.compress.base import LayerStats
from junkdna_core.compress.targets import Target
from junkdna_core.config.errors import ConfigError


class _CaughtInputs(Exception):
    """Raised inside block 0's pre-hook to stop the forward pass once its inputs are caught."""


@dataclass
class BlockBatch:
    """One calibration batch as a block receives it: hidden states plus the keyword arguments."""

    hidden: torch.Tensor
    kwargs: dict[str, Any] = field(default_factory=dict)


def check_calibration(input_ids: torch.Tensor) -> None:
    """Raise ConfigError unless ``input_ids`` is a non-empty 2-D integer tensor (samples x tokens)."""
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.numel() == 0:
        shape = tuple(input_ids.shape) if isinstance(input_ids, torch.Tensor) else type(input_ids).__name__
        raise ConfigError(f"calibration must be a non-empty (samples, tokens) tensor of token ids; got {shape}")
    if input_ids.is_floating_point():
        raise ConfigError(f"calibration token ids must be integers; got dtype {input_ids.dtype}")


@torch.inference_mode()
def catch_block_inputs(
    model: nn.Module, first_block: nn.Module, input_ids: torch.Tensor, batch_size: int
) -> list[BlockBatch]:
    """Run the model on the calibration ids just far enough to catch what block 0 receives."""
    check_calibration(input_ids)
    caught: list[BlockBatch] = []

    def hook(_module: nn.Module, args: tuple, kwargs: dict) -> None:
        hidden = args[0] if args else kwargs.pop("hidden_states")
        rest = {k: v for k, v in kwargs.items() if k != "hidden_states"}
        caught.append(BlockBatch(hidden, rest))
        raise _CaughtInputs

    handle = first_block.register_forward_pre_hook(hook, with_kwargs=True)
    device = next(model.parameters()).device
    try:
        for start in range(0, input_ids.shape[0], batch_size):
            batch = input_ids[start : start + batch_size].to(device)
            try:
                model(input_ids=batch, use_cache=False)
            except _CaughtInputs:
                pass
    finally:
        handle.remove()
    return caught


@torch.inference_mode()
def run_block(block: nn.Module, batches: list[BlockBatch]) -> list[BlockBatch]:
    """The block's outputs for each batch, ready to feed the next block."""
    out = []
    for b in batches:
        result = block(b.hidden, **b.kwargs)
        hidden = result[0] if isinstance(result, (tuple, list)) else result
        out.append(BlockBatch(hidden, b.kwargs))
    return out


@torch.inference_mode()
def collect_stats(block: nn.Module, targets: list[Target], batches: list[BlockBatch]) -> dict[str, LayerStats]:
    """Input statistics (sum of x x^T over tokens) of each target linear in one block."""
    grams: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    handles = []

    def make_hook(name: str):
        def hook(_module: nn.Module, args: tuple) -> None:
            x = args[0].detach().reshape(-1, args[0].shape[-1]).float()
            grams[name] = grams[name].addmm_(x.t(), x) if name in grams else x.t() @ x
            counts[name] = counts.get(name, 0) + x.shape[0]

        return hook

    for t in targets:
        handles.append(t.module.register_forward_pre_hook(make_hook(t.name)))
    try:
        run_block(block, batches)
    finally:
        for h in handles:
            h.remove()
    missing = [t.name for t in targets if t.name not in grams]
    if missing:
        raise ConfigError(f"calibration never reached {', '.join(missing)}: cannot compute its input statistics")
    return {name: LayerStats(gram=grams[name], tokens=counts[name]) for name in grams}

