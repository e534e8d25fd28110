"""Compress a whole model with one configured method, and verify what was done.

Data-free methods see every target weight at once (so a global scope is
possible). Calibrated methods are run block by block on the inputs produced by
the already-compressed earlier blocks, then each block is re-run to feed the
next one (a block at a time on the execution device when the model is kept
elsewhere: :mod:`junkdna_core.compress.offload`). Every result is checked as it
comes back (a wrong shape, a missing mask or a crash is a MethodError naming the
method) and the level reached is verified against the method's declaration
(:mod:`junkdna_core.compress.verify`) before anything is scored. The model is
modified in place; the returned report carries the masks (for holding them
through fine-tuning later), the measured sparsity and the verified level.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from junkdna_core.compress.base import (
    CompressionMethod,
    LayerResult,
    LayerStats,
    declared_calibration_pass,
    declared_statistics,
)
from junkdna_core.compress.calibration import (
    catch_block_inputs,
    check_calibration,
    collect_stats,
    compress_in_one_pass,
    input_groups,
    run_block,
    send_batches,
)
from junkdna_core.compress.encodings import LowRankFactors, QuantizedWeight, WeightEncoding
from junkdna_core.compress.masks import SparsityReport, enforce_mask
from junkdna_core.compress.offload import BlockOnloader, module_device, needs_onloading
from junkdna_core.compress.targets import Target, find_blocks, find_targets
from junkdna_core.compress.verify import LevelMeter
from junkdna_core.config.errors import ConfigError, JunkdnaError, MethodError


@dataclass(frozen=True)
class CompressionReport:
    """What one compression run did: the configuration, the masks, the measured sparsity and level, the time.

    ``measured`` is what :func:`~junkdna_core.compress.verify.verify_level` measured and checked
    (e.g. ``{"unit": "row", "sparsity": 0.5}``); ``device`` where the compression ran and
    ``onloaded`` whether blocks were moved there one at a time; ``groups`` the
    target names of each ``compress`` call, in call order. ``masks`` are in each module's
    stored weight layout, on the CPU; ``encodings`` (codes and grids, low-rank factors: the
    compact forms methods returned, each checked to decode to its weight) are in
    ``(out_features, in_features)`` layout, on the CPU, as methods see weights.
    """

    method: dict[str, Any]
    targets: tuple[str, ...]
    masks: dict[str, torch.Tensor]
    sparsity: SparsityReport
    seconds: float
    measured: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    onloaded: bool = False
    groups: tuple[tuple[str, ...], ...] = ()
    encodings: dict[str, WeightEncoding] = field(default_factory=dict)


def _label(method: CompressionMethod) -> str:
    return f"method {method.name!r} at {method.level_name}={method.level!r}"


def _checked_result(method: CompressionMethod, target: Target, result: Any) -> LayerResult:
    """``result`` if it is a usable LayerResult for ``target``; MethodError naming the method otherwise."""
    weight = target.weight()
    shape = tuple(weight.shape)
    problem = None
    if not isinstance(result, LayerResult):
        problem = f"returned {type(result).__name__} instead of a LayerResult"
    elif result.mask is None and result.weight is None:
        problem = "returned a LayerResult with neither a mask nor a weight"
    elif method.family == "pruning" and result.mask is None:
        problem = "returned no keep-mask (a pruning method must return one; it is held through fine-tuning)"
    elif result.mask is not None and not (
        isinstance(result.mask, torch.Tensor) and tuple(result.mask.shape) == shape and result.mask.dtype == torch.bool
    ):
        got = (tuple(result.mask.shape), result.mask.dtype) if isinstance(result.mask, torch.Tensor) else result.mask
        problem = f"returned a mask {got!r}; expected a bool tensor of shape {shape}"
    elif result.weight is not None:
        new = result.weight
        if not isinstance(new, torch.Tensor) or tuple(new.shape) != shape:
            got = tuple(new.shape) if isinstance(new, torch.Tensor) else type(new).__name__
            problem = f"returned a weight of shape {got}; expected {shape}"
        elif not bool(torch.isfinite(new).all()):
            problem = "returned a weight containing NaN or inf"
        elif result.encoding is not None:
            problem = _encoding_problem(result.encoding, new)
    elif result.encoding is not None:
        problem = "returned an encoding without the weight it encodes"
    if problem:
        raise MethodError(f"{_label(method)} {problem} for layer {target.name}")
    return result


def _encoding_problem(encoding: Any, weight: torch.Tensor) -> str | None:
    """What is wrong with an encoding of ``weight`` (None when it decodes to it exactly, on its device)."""
    if not isinstance(encoding, (QuantizedWeight, LowRankFactors)):
        return f"returned an encoding of type {type(encoding).__name__}; allowed: QuantizedWeight, LowRankFactors"
    if tuple(encoding.shape) != tuple(weight.shape):
        return f"returned an encoding of shape {tuple(encoding.shape)} for a weight of shape {tuple(weight.shape)}"
    decoded = encoding.decode(weight.dtype)
    if not torch.equal(decoded, weight.to(decoded.device)):
        difference = float((decoded - weight.to(decoded.device)).abs().max())
        return f"returned an encoding that does not decode to the weight it returned (max difference {difference:.3g})"
    return None


def _cpu_encoding(encoding: WeightEncoding, weight: torch.Tensor) -> WeightEncoding | None:
    """A checked encoding moved to the CPU (where artifacts decode it), or None when it decodes differently
    there (a low-rank product computed on another device): then the weight is stored as it is."""
    if all(t.device.type == "cpu" for t in encoding.tensors()):
        return encoding
    moved = encoding.to("cpu")
    return moved if torch.equal(moved.decode(weight.dtype), weight.to("cpu")) else None


@torch.no_grad()
def _enforce(target: Target, result: LayerResult) -> torch.Tensor | None:
    """Write one layer's checked result into the model; returns its mask in ``(out, in)`` layout, on the weight."""
    weight = target.weight()
    if result.weight is not None:
        weight.copy_(result.weight)
    if result.mask is None:
        return None
    return enforce_mask(target.name, weight, result.mask)


def _results_for(method: CompressionMethod, group: list[Target], stats) -> dict[str, LayerResult]:
    weights = {t.name: t.weight().detach() for t in group}
    try:
        results = method.compress(weights, stats)
    except JunkdnaError:
        raise
    except Exception as exc:  # a plugin's crash is named by the method, not left as a bare traceback
        raise MethodError(f"{_label(method)} raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(results, Mapping):
        raise MethodError(f"{_label(method)} returned {type(results).__name__}; expected a dict of LayerResult")
    missing = sorted(set(weights) - set(results))
    if missing:
        raise MethodError(f"{_label(method)} returned no result for {', '.join(missing)}")
    return {t.name: _checked_result(method, t, results[t.name]) for t in group}


def _execution_device(model: nn.Module, device: str | torch.device | None) -> torch.device:
    if device is None:
        return module_device(model)
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"device must name a torch device such as cpu, cuda or cuda:1; got {device!r}") from exc


def compress_model(
    model: nn.Module,
    method: CompressionMethod,
    *,
    calibration: torch.Tensor | None = None,
    targets: list[Target] | None = None,
    batch_size: int = 8,
    progress: bool = True,
    device: str | torch.device | None = None,
    offload: bool | None = None,
    offload_folder: str | Path | None = None,
) -> CompressionReport:
    """Compress ``model`` in place with ``method``, verify the level it reached, and report what was done.

    ``calibration`` is a (samples, tokens) tensor of token ids, required by
    methods with ``needs_calibration``. ``targets`` defaults to every linear in
    the transformer blocks. Raises ConfigError before any compute when the
    configuration cannot apply to this model, and MethodError when the method
    misbehaves (raises, returns a result of the wrong shape, or misses its level).

    Calibrated methods run on ``device`` (default: where the model's first
    parameter is). ``offload`` None (auto): when some block is not on ``device``
    (a model kept on the CPU because it does not fit the device, or blocks held
    in ``offload_folder``), blocks stay in their storage and are moved to
    ``device`` one at a time; True: the same for every model, so blocks already
    on ``device`` are parked in ``offload_folder`` or on their own device in
    between; False: never. With ``offload_folder``, blocks are held there as
    files (on the "meta" device in memory) before, between and after their turns;
    :func:`~junkdna_core.compress.offload.load_blocks_from_disk` brings them back.
    Data-free methods compress the weights where they are.
    """
    targets = find_targets(model) if targets is None else targets
    method.check_shapes({t.name: tuple(t.weight().shape) for t in targets})
    execution = _execution_device(model, device)
    if method.needs_calibration:
        if calibration is None:
            raise ConfigError(f"{method.name} needs calibration data (token ids); none was given")
        check_calibration(calibration)
        if any(t.block is None for t in targets):
            raise ConfigError(f"{method.name} is calibrated block by block; it cannot compress embeddings or the head")
    elif offload_folder is not None:
        raise ConfigError(f"{method.name} needs no calibration; offload_folder applies to calibrated methods only")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1; got {batch_size}")

    start = time.perf_counter()
    meter = LevelMeter(method)
    masks: dict[str, torch.Tensor] = {}
    zeros: dict[str, tuple[int, int]] = {}
    encodings: dict[str, WeightEncoding] = {}

    def record(group: list[Target], results: dict[str, LayerResult]) -> None:
        """Enforce one group's results and measure them while they are in memory."""
        group_masks = {}
        for t in group:
            result = results[t.name]
            encoding = None if result.encoding is None else _cpu_encoding(result.encoding, result.weight)
            if encoding is not None:
                encodings[t.name] = encoding
            mask = _enforce(t, result)
            if mask is not None:
                group_masks[t.name] = mask
                masks[t.name] = (mask.t().contiguous() if t.transposed else mask).to("cpu")
            weight = t.module.weight
            zeros[t.name] = (int((weight == 0).sum()), weight.numel())
        meter.add({t.name: t.weight().detach() for t in group}, group_masks)

    was_training = model.training
    model.eval()
    onloaded = False
    try:
        if not method.needs_calibration:
            record(targets, _results_for(method, targets, None))
        else:
            _, blocks = find_blocks(model)
            if offload is None:
                offload = offload_folder is not None or needs_onloading(blocks, execution)
            onloader = BlockOnloader(blocks, execution, enabled=offload, folder=offload_folder)
            if not offload:
                blocks.to(execution)
            onloaded = onloader.enabled
            _calibrate(model, blocks, method, targets, calibration, batch_size, progress, onloader, record)
    finally:
        model.train(was_training)
    measured = meter.result()
    names = tuple(t.name for t in targets)
    return CompressionReport(
        method=method.describe(),
        targets=names,
        masks=masks,
        sparsity=SparsityReport(
            {n: zeros[n][0] / zeros[n][1] for n in names},
            sum(zeros[n][0] for n in names),
            sum(zeros[n][1] for n in names),
        ),
        seconds=time.perf_counter() - start,
        measured=measured,
        device=str(execution),
        onloaded=onloaded,
        groups=tuple(tuple(g) for g in meter.groups),
        encodings=encodings,
    )


def _calibrate(
    model: nn.Module,
    blocks: nn.ModuleList,
    method: CompressionMethod,
    targets: list[Target],
    calibration: torch.Tensor,
    batch_size: int,
    progress: bool,
    onloader: BlockOnloader,
    record: Callable[[list[Target], dict[str, LayerResult]], None],
) -> None:
    """Block by block, on the inputs the compressed earlier blocks give: statistics, compress, feed the next block.

    With the "sequential" pass all calibration samples go through a block at once
    and the block is compressed during that one pass; with the "block" pass the
    statistics come from one pass over the batches and a second pass feeds the next block.
    """
    statistics = declared_statistics(method)
    sequential = declared_calibration_pass(method) == "sequential"
    caught = catch_block_inputs(model, blocks[0], calibration, calibration.shape[0] if sequential else batch_size)
    batches = send_batches(caught, onloader.device)
    last = max(t.block for t in targets)
    structures: dict[tuple[str, ...], list[list[int]]] = {}  # a block's targets (relative names) -> input groups

    def compress(group: list[Target], stats: dict[str, LayerStats]) -> None:
        record(group, _results_for(method, group, stats))

    for index in tqdm(range(last + 1), desc=f"{method.name}", unit="block", disable=not progress):
        block = onloader.onload(index)
        try:
            group = [t for t in targets if t.block == index]
            if group and sequential:
                shape = tuple(t.name.split(f".{index}.", 1)[-1] for t in group)
                if shape not in structures:  # learnt once per block structure, with one forward of the block
                    structures[shape] = input_groups(block, group, batches[0])
                groups = [[group[i] for i in members] for members in structures[shape]]
                batches = [compress_in_one_pass(block, groups, batches[0], statistics, compress)]
            elif group:
                stats = collect_stats(block, group, batches, statistics)
                compress(group, stats)
                del stats
                if index < last:  # the blocks after the last target need no inputs
                    batches = run_block(block, batches)
            elif index < last:
                batches = run_block(block, batches)
        finally:
            onloader.offload(index)
