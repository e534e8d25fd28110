"""Which weight matrices a compression method touches.

By default: every linear layer inside the transformer blocks (attention and MLP
projections). Embeddings and the output head are excluded unless asked for, as
in the paper and in Wanda/SparseGPT. Found by structure, not by attribute names
such as ``model.model.layers``, so any transformers architecture works.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import nn

from junkdna_core.config.errors import ConfigError


@functools.cache
def _conv1d() -> type[nn.Module]:
    """transformers' Conv1D: GPT-2 style models store linears in it, with a transposed weight."""
    from transformers.pytorch_utils import Conv1D  # on first use: opening cached results never needs it

    return Conv1D


@dataclass(frozen=True)
class Target:
    """One weight matrix to compress: its module name, module, and block index (None outside blocks)."""

    name: str
    module: nn.Module
    block: int | None

    @property
    def transposed(self) -> bool:
        """True for Conv1D, whose weight is stored (in, out) instead of (out, in)."""
        return isinstance(self.module, _conv1d())

    def weight(self) -> torch.Tensor:
        """The weight in (out_features, in_features) layout (a view, not a copy)."""
        w = self.module.weight
        return w.t() if self.transposed else w


def find_blocks(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The model's stack of transformer blocks: the ModuleList holding the most parameters.

    Raises ConfigError when the model has no ModuleList of blocks.
    """
    best: tuple[int, str, nn.ModuleList] | None = None
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) > 0:
            size = sum(p.numel() for p in module.parameters())
            if best is None or size > best[0]:
                best = (size, name, module)
    if best is None:
        raise ConfigError(f"{type(model).__name__} has no stack of transformer blocks (no nn.ModuleList)")
    return best[1], best[2]


def _is_linear(module: nn.Module) -> bool:
    return isinstance(module, (nn.Linear, _conv1d()))


def find_targets(
    model: nn.Module, *, include_embeddings: bool = False, include_head: bool = False
) -> list[Target]:
    """The weight matrices to compress, in module order.

    Every linear inside the transformer blocks; plus the input embedding and/or
    the output head when asked (a tied head and embedding appear once).
    """
    prefix, blocks = find_blocks(model)
    targets: list[Target] = []
    for index, block in enumerate(blocks):
        for sub_name, module in block.named_modules():
            if sub_name and _is_linear(module):
                targets.append(Target(f"{prefix}.{index}.{sub_name}", module, index))
    extra: list[tuple[str, nn.Module | None]] = []
    if include_embeddings:
        extra.append(("embeddings", model.get_input_embeddings()))
    if include_head and hasattr(model, "get_output_embeddings"):
        extra.append(("head", model.get_output_embeddings()))
    names = {id(m): n for n, m in model.named_modules()}
    seen = {id(t.module.weight) for t in targets}
    for label, module in extra:
        if module is None:
            raise ConfigError(f"{type(model).__name__} has no {label} to compress")
        if id(module.weight) not in seen:
            seen.add(id(module.weight))
            targets.append(Target(names[id(module)], module, None))
    if not targets:
        raise ConfigError(f"{type(model).__name__} has no linear layers inside its transformer blocks")
    return targets
