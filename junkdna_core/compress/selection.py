"""Which weights to keep, given a score per weight; and the parameter checks the methods share.

Every mask is a bool tensor of the scores' shape, True where the weight is kept.
Counts are exact even when scores tie: a ``<=`` threshold would prune every
weight tied at the threshold and overshoot, so among tied scores the one with
the lower index (row-major) is pruned first. Scores are compared in float32
(float64 if any score tensor is float64), so the selection is deterministic and
does not depend on the device's sort implementation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from junkdna_core.compress.validation import check_fraction, check_nm, check_nm_shape
from junkdna_core.config.errors import ConfigError

_WHOLE_TOLERANCE = 1e-9


def layer_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Keep all but the ``round(sparsity * numel)`` lowest scores of the tensor."""
    check_fraction("sparsity", sparsity)
    k = round(sparsity * scores.numel())
    return _prune_lowest_per_row(scores.reshape(1, -1), k).reshape(scores.shape)


def row_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Keep all but the ``round(sparsity * in_features)`` lowest scores of every output row (dim 0)."""
    check_fraction("sparsity", sparsity)
    _check_matrix(scores, "row-wise pruning")
    k = round(sparsity * scores.shape[1])
    return _prune_lowest_per_row(scores, k)


def nm_mask(scores: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Keep the ``n`` highest scores of every ``m`` consecutive entries along dim 1."""
    check_nm(n, m)
    check_nm_shape(tuple(scores.shape), m)
    return _prune_lowest_per_row(scores.reshape(-1, m), m - n).reshape(scores.shape)


def global_masks(scores: Mapping[str, torch.Tensor], sparsity: float) -> dict[str, torch.Tensor]:
    """Keep all but the ``round(sparsity * total)`` lowest scores over all tensors together.

    Ties at the threshold are pruned in the order (tensor name, row-major index),
    so the result does not depend on the mapping's order.
    """
    check_fraction("sparsity", sparsity)
    k = round(sparsity * sum(s.numel() for s in scores.values()))
    if k == 0:
        return {name: torch.ones_like(s, dtype=torch.bool) for name, s in scores.items()}
    dtype = _work_dtype(list(scores.values()))
    threshold = _kth_smallest_per_row(_flat_copy(list(scores.values()), dtype), k).reshape(())
    below = {name: s.detach().to(dtype) < threshold for name, s in scores.items()}
    room = k - sum(int(b.sum()) for b in below.values())
    masks: dict[str, torch.Tensor] = {}
    for name in sorted(scores):
        tied = scores[name].detach().to(dtype) == threshold
        pruned_ties = tied & (_running_count(tied.reshape(1, -1)).reshape(tied.shape) <= room)
        room -= int(pruned_ties.sum())
        masks[name] = ~(below[name] | pruned_ties)
    return {name: masks[name] for name in scores}


def keep_all_but_lowest(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Keep-mask of ``scores``' shape pruning exactly its ``k`` lowest entries (ties: lower row-major index first)."""
    if not 0 <= k <= scores.numel():
        raise ConfigError(f"cannot prune {k} of {scores.numel()} scores")
    if k == scores.numel():
        return torch.zeros_like(scores, dtype=torch.bool)
    return _prune_lowest_per_row(scores.reshape(1, -1), k).reshape(scores.shape)


def _prune_lowest_per_row(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Keep-mask of a 2-D score tensor pruning exactly the ``k`` lowest entries of every row."""
    if k == 0:
        return torch.ones_like(scores, dtype=torch.bool)
    values = scores.detach().to(_work_dtype([scores]))
    threshold = _kth_smallest_per_row(values.clone(), k)
    below = values < threshold
    tied = values == threshold
    room = k - below.sum(dim=1, keepdim=True)
    return ~(below | (tied & (_running_count(tied) <= room)))


def _kth_smallest_per_row(scratch: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k``-th smallest (1-based) entry of every row of 2-D ``scratch``, shape ``(rows, 1)``.

    Reorders ``scratch`` in place. On the CPU this is numpy's introselect, which
    needs no index tensor (torch.kthvalue allocates an int64 index per entry).
    """
    if scratch.device.type != "cpu":
        return scratch.kthvalue(k, dim=1, keepdim=True).values
    array = scratch.numpy()
    array.partition(k - 1, axis=1)
    return torch.from_numpy(array[:, k - 1 : k].copy())


def _flat_copy(tensors: Sequence[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    """All entries of ``tensors`` in one new ``(1, total)`` tensor of ``dtype``, without intermediate copies."""
    flat = torch.empty(1, sum(t.numel() for t in tensors), dtype=dtype, device=tensors[0].device)
    offset = 0
    for t in tensors:
        flat[0, offset : offset + t.numel()].copy_(t.detach().reshape(-1))
        offset += t.numel()
    return flat


def _running_count(flags: torch.Tensor) -> torch.Tensor:
    """For a 2-D bool tensor, how many True entries each row has up to and including each column."""
    dtype = torch.int32 if flags.shape[1] < 2**31 else torch.int64
    return flags.cumsum(dim=1, dtype=dtype)


def _work_dtype(tensors: Sequence[torch.Tensor]) -> torch.dtype:
    """float64 if any of the tensors is float64, else float32."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def _check_matrix(scores: torch.Tensor, what: str) -> None:
    if scores.dim() != 2:
        raise ConfigError(f"{what} needs a 2-D (out_features, in_features) tensor; got shape {tuple(scores.shape)}")
