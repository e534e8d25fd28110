"""Layer-by-layer calibration: block inputs, input statistics, and running one block.

The model is never run whole on the calibration batch past the first block:
the inputs of block 0 are caught, then each block is run on its own, so peak
memory stays near one block's activations. Two schemes (a method's
``calibration_pass``): "block" takes the statistics of every linear of a block
in one pass (:func:`collect_stats`), then a second pass (:func:`run_block`)
feeds the compressed block's outputs on (the Wanda/SparseGPT reference);
"sequential" compresses each group of linears reading one input as the one pass
reaches it (:func:`compress_in_one_pass`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from accelerate.utils import send_to_device
from torch import nn

from junkdna_core.compress.base import LayerStats
from junkdna_core.compress.offload import module_device
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
    embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    device = module_device(embeddings if embeddings is not None else model)
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


def send_batches(batches: list[BlockBatch], device: torch.device) -> list[BlockBatch]:
    """The batches with every tensor (hidden states and keyword arguments, nested) on ``device``."""
    return [BlockBatch(send_to_device(b.hidden, device), send_to_device(b.kwargs, device)) for b in batches]


@torch.inference_mode()
def run_block(block: nn.Module, batches: list[BlockBatch]) -> list[BlockBatch]:
    """The block's outputs for each batch, ready to feed the next block."""
    out = []
    for b in batches:
        result = block(b.hidden, **b.kwargs)
        hidden = result[0] if isinstance(result, (tuple, list)) else result
        out.append(BlockBatch(hidden, b.kwargs))
    return out


class _SharingChanged(Exception):
    """Two linears read the same input tensor in one batch but not in another: collect them apart."""


@torch.inference_mode()
def collect_stats(
    block: nn.Module,
    targets: list[Target],
    batches: list[BlockBatch],
    statistics: frozenset[str] = frozenset({"gram"}),
) -> dict[str, LayerStats]:
    """Input statistics of each target linear in one block, over one pass of ``batches``.

    ``statistics`` names what to collect (see :data:`~junkdna_core.compress.base.STATISTICS`):
    with ``"gram"`` the sum of ``x x^T`` over tokens, else only the sum of ``x_j^2``.
    Linears that read the same input tensor in every batch (q/k/v, gate/up) get
    one shared LayerStats, computed once.
    """
    try:
        return _collect(block, targets, batches, "gram" in statistics, share=True)
    except _SharingChanged:
        return _collect(block, targets, batches, "gram" in statistics, share=False)


def _collect(
    block: nn.Module, targets: list[Target], batches: list[BlockBatch], gram: bool, *, share: bool
) -> dict[str, LayerStats]:
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    owner: dict[str, str] = {}  # layer -> the layer whose statistics it shares (itself when it owns them)
    seen: list[tuple[torch.Tensor, str]] = []  # this batch's inputs, each with the first layer that read it

    def make_hook(name: str):
        def hook(_module: nn.Module, args: tuple) -> None:
            x = args[0]
            first = next((n for tensor, n in seen if tensor is x), None) if share else None
            if owner.setdefault(name, first or name) != (first or name):
                raise _SharingChanged
            if first is not None:
                return
            seen.append((x, name))
            flat = _rows(x)
            if gram:
                sums[name] = sums[name].addmm_(flat.t(), flat) if name in sums else flat.t() @ flat
            else:
                squares = flat.square().sum(dim=0)
                sums[name] = sums[name].add_(squares) if name in sums else squares
            counts[name] = counts.get(name, 0) + flat.shape[0]

        return hook

    handles = [t.module.register_forward_pre_hook(make_hook(t.name)) for t in targets]
    try:
        for b in batches:
            seen.clear()
            block(b.hidden, **b.kwargs)
    finally:
        seen.clear()
        for h in handles:
            h.remove()
    missing = [t.name for t in targets if t.name not in owner]
    if missing:
        raise ConfigError(f"calibration never reached {', '.join(missing)}: cannot compute its input statistics")
    shared = {
        name: LayerStats(gram=sums[name], tokens=counts[name], layer=name) if gram
        else LayerStats(squares=sums[name], tokens=counts[name], layer=name)
        for name in sums
    }
    return {t.name: shared[owner[t.name]] for t in targets}


def _rows(x: torch.Tensor) -> torch.Tensor:
    """A linear's input as float32 rows, one per token: ``(tokens, in_features)``."""
    return x.detach().reshape(-1, x.shape[-1]).float()


def input_statistics(x: torch.Tensor, statistics: frozenset[str], *, layer: str = "") -> LayerStats:
    """The LayerStats of one input tensor holding every calibration token (see :func:`collect_stats`)."""
    flat = _rows(x)
    if "gram" in statistics:
        return LayerStats(gram=flat.t() @ flat, tokens=flat.shape[0], layer=layer)
    return LayerStats(squares=flat.square().sum(dim=0), tokens=flat.shape[0], layer=layer)


class _AllReached(Exception):
    """Raised once every target of a probe has been reached: the rest of the block need not run."""


@torch.inference_mode()
def input_groups(block: nn.Module, targets: list[Target], batch: BlockBatch) -> list[list[int]]:
    """The targets (as indices into ``targets``) grouped by the input tensor they read, in the order a
    forward of ``block`` on ``batch`` reaches them: ``[[q, k, v], [o], [gate, up], [down]]`` for a Llama block.

    The forward stops once every target was reached.
    """
    groups: list[tuple[torch.Tensor, list[int]]] = []
    reached: set[int] = set()

    def make_hook(index: int):
        def hook(_module: nn.Module, args: tuple) -> None:
            x = args[0]
            for tensor, members in groups:
                if tensor is x:
                    members.append(index)
                    break
            else:
                groups.append((x, [index]))
            reached.add(index)
            if len(reached) == len(targets):
                raise _AllReached

        return hook

    handles = [t.module.register_forward_pre_hook(make_hook(i)) for i, t in enumerate(targets)]
    try:
        block(batch.hidden, **batch.kwargs)
    except _AllReached:
        pass
    finally:
        for h in handles:
            h.remove()
    missing = [t.name for i, t in enumerate(targets) if i not in reached]
    if missing:
        raise ConfigError(f"calibration never reached {', '.join(missing)}: cannot compute its input statistics")
    return [members for _, members in groups]


@torch.no_grad()  # not inference mode: masks and weights computed inside the pass stay usable for training
def compress_in_one_pass(
    block: nn.Module,
    groups: list[list[Target]],
    batch: BlockBatch,
    statistics: frozenset[str],
    compress: Callable[[list[Target], dict[str, LayerStats]], None],
) -> BlockBatch:
    """One pass of ``block`` over ``batch`` that compresses it on the way; returns the compressed block's outputs.

    When the pass reaches the first linear of a group (of :func:`input_groups`), the
    statistics of its input are taken and ``compress(group, stats)`` writes the group's
    compressed weights, which that linear and the rest of the pass then use: each group
    sees inputs from the already compressed groups before it.
    """
    inputs: dict[int, torch.Tensor] = {}

    def make_hook(position: int, member: int):
        group = groups[position]

        def hook(_module: nn.Module, args: tuple) -> None:
            if member == 0:
                inputs[position] = args[0]
                stats = input_statistics(args[0], statistics, layer=group[0].name)
                compress(group, {t.name: stats for t in group})
            elif inputs.get(position) is not args[0]:
                raise ConfigError(
                    f"{group[member].name} does not read the input of {group[0].name} as the probe of this block's "
                    "structure found; the block's data flow differs between passes (compress it with a method whose "
                    "calibration_pass is 'block')"
                )

        return hook

    handles = [t.module.register_forward_pre_hook(make_hook(p, m)) for p, g in enumerate(groups) for m, t in
               enumerate(g)]
    try:
        result = block(batch.hidden, **batch.kwargs)
    finally:
        for h in handles:
            h.remove()
    missing = [g[0].name for p, g in enumerate(groups) if p not in inputs]
    if missing:
        raise ConfigError(f"calibration never reached {', '.join(missing)}: cannot compute its input statistics")
    return BlockBatch(result[0] if isinstance(result, (tuple, list)) else result, batch.kwargs)
