"""Compress a whole model with one configured method, and verify what was done.

Data-free methods see every target weight at once (so a global scope is
possible). Calibrated methods are run block by block on the inputs produced by
the already-compressed earlier blocks, then each block is re-run to feed the
next one. The model is modified in place; the returned report carries the masks
(for holding them through fine-tuning later) and the measured sparsity.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from junkdna_core.compress.base import CompressionMethod, LayerResult
from junkdna_core.compress.calibration import (
    catch_block_inputs,
    check_calibration,
    collect_stats,
    run_block,
)
from junkdna_core.compress.encodings import LowRankFactors, QuantizedWeight, WeightEncoding
from junkdna_core.compress.masks import SparsityReport, enforce_mask, measure_sparsity
from junkdna_core.compress.targets import Target, find_blocks, find_targets
from junkdna_core.config.errors import ConfigError, MethodError


@dataclass(frozen=True)
class CompressionReport:
    """What one compression run did: the configuration, the masks, the measured sparsity, the time.

    ``masks`` are in each module's stored weight layout; ``encodings`` (codes and grids, low-rank
    factors: the compact forms methods returned, each checked to decode to its weight) are in
    ``(out_features, in_features)`` layout, as methods see weights.
    """

    method: dict[str, Any]
    targets: tuple[str, ...]
    masks: dict[str, torch.Tensor]
    sparsity: SparsityReport
    seconds: float
    encodings: dict[str, WeightEncoding] = field(default_factory=dict)


def _check_encoding(method: CompressionMethod, target: Target, result: LayerResult) -> None:
    """MethodError unless the result's encoding decodes exactly to its weight."""
    if result.weight is None:
        raise MethodError(f"{method.name} returned an encoding without the weight it encodes for {target.name}")
    if not isinstance(result.encoding, (QuantizedWeight, LowRankFactors)):
        raise MethodError(f"{method.name} returned an encoding of type {type(result.encoding).__name__} for "
                          f"{target.name}; allowed: QuantizedWeight, LowRankFactors")
    if tuple(result.encoding.shape) != tuple(result.weight.shape):
        raise MethodError(f"{method.name}'s encoding of {target.name} has shape {tuple(result.encoding.shape)}, "
                          f"its weight {tuple(result.weight.shape)}")
    decoded = result.encoding.decode(result.weight.dtype)
    if not torch.equal(decoded, result.weight.to(decoded.device)):
        raise MethodError(f"{method.name}'s encoding of {target.name} does not decode to the weight it returned "
                          f"(max difference {float((decoded - result.weight.to(decoded.device)).abs().max()):.3g})")


@torch.no_grad()
def _enforce(target: Target, result: LayerResult) -> torch.Tensor | None:
    """Write one layer's result into the model; returns the mask in the stored weight's layout."""
    weight = target.weight()
    if result.weight is not None:
        if tuple(result.weight.shape) != tuple(weight.shape):
            raise ConfigError(
                f"method returned a weight of shape {tuple(result.weight.shape)} for {target.name}, "
                f"expected {tuple(weight.shape)}"
            )
        weight.copy_(result.weight)
    if result.mask is None:
        return None
    mask = enforce_mask(target.name, weight, result.mask)
    return mask.t().contiguous() if target.transposed else mask


def _results_for(method: CompressionMethod, group: list[Target], stats) -> dict[str, LayerResult]:
    weights = {t.name: t.weight().detach() for t in group}
    results = method.compress(weights, stats)
    missing = sorted(set(weights) - set(results))
    if missing:
        raise ConfigError(f"{method.name} returned no result for {', '.join(missing)}")
    return results


def compress_model(
    model: nn.Module,
    method: CompressionMethod,
    *,
    calibration: torch.Tensor | None = None,
    targets: list[Target] | None = None,
    batch_size: int = 8,
    progress: bool = True,
) -> CompressionReport:
    """Compress ``model`` in place with ``method`` and report what was done.

    ``calibration`` is a (samples, tokens) tensor of token ids, required by
    methods with ``needs_calibration``. ``targets`` defaults to every linear in
    the transformer blocks. Raises ConfigError before any compute when the
    configuration cannot apply to this model.
    """
    targets = find_targets(model) if targets is None else targets
    method.check_shapes({t.name: tuple(t.weight().shape) for t in targets})
    if method.needs_calibration:
        if calibration is None:
            raise ConfigError(f"{method.name} needs calibration data (token ids); none was given")
        check_calibration(calibration)
        if any(t.block is None for t in targets):
            raise ConfigError(f"{method.name} is calibrated block by block; it cannot compress embeddings or the head")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1; got {batch_size}")

    start = time.perf_counter()
    masks: dict[str, torch.Tensor] = {}
    encodings: dict[str, WeightEncoding] = {}

    def record(group: list[Target], results: dict[str, LayerResult]) -> None:
        for t in group:
            result = results[t.name]
            if result.encoding is not None:
                _check_encoding(method, t, result)
                encodings[t.name] = result.encoding
            mask = _enforce(t, result)
            if mask is not None:
                masks[t.name] = mask

    was_training = model.training
    model.eval()
    try:
        if not method.needs_calibration:
            record(targets, _results_for(method, targets, None))
        else:
            _, blocks = find_blocks(model)
            batches = catch_block_inputs(model, blocks[0], calibration, batch_size)
            for index in tqdm(range(len(blocks)), desc=f"{method.name}", unit="block", disable=not progress):
                group = [t for t in targets if t.block == index]
                if group:
                    stats = collect_stats(blocks[index], group, batches)
                    record(group, _results_for(method, group, stats))
                batches = run_block(blocks[index], batches)
    finally:
        model.train(was_training)
    names = tuple(t.name for t in targets)
    return CompressionReport(
        method=method.describe(),
        targets=names,
        masks=masks,
        sparsity=measure_sparsity(model, names),
        seconds=time.perf_counter() - start,
        encodings=encodings,
    )
