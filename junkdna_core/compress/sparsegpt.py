"""SparseGPT (Frantar & Alistarh, 2023): prune by OBS saliency and update the survivors.

The input columns are swept left to right in blocks. A weight's saliency is
``w^2 / [U]_jj^2`` with ``U`` the upper Cholesky factor of the inverse Hessian;
after column ``j`` is pruned, its error is spread over the not yet processed
columns so the layer's output on the calibration inputs changes as little as
possible. Returns the keep-mask and the updated weights.

Selection: unstructured, the mask of a block is chosen when the sweep reaches
it, among all ``out x block`` weights (as in the reference), with counts that are
exact: block ``b`` prunes ``round(s * cum_b) - round(s * cum_{b-1})`` weights
(``cum_b`` = weights in blocks ``0..b``), so every block prunes within one of
``s * out * block`` and the layer prunes exactly ``round(s * out * in)``.
N:M (``m`` set), each group of ``m`` columns keeps the ``n = (1 - s) * m``
most salient weights of every row, chosen when the sweep reaches the group.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import torch

from junkdna_core.compress.base import LayerResult, LayerStats, MethodParams, PruningMethod
from junkdna_core.compress.obs import Factors, check_calibrated_inputs, factorize, factorize_all
from junkdna_core.compress.selection import keep_all_but_lowest, nm_mask
from junkdna_core.compress.validation import (
    check_blocksize,
    check_fraction,
    check_nm_shape,
    check_percdamp,
    n_for_sparsity,
)


@dataclass(frozen=True)
class SparseGPTParams(MethodParams):
    """SparseGPT parameters: ``sparsity`` in [0, 1); ``m`` for N:M pruning (None = unstructured;
    ``n = (1 - sparsity) * m`` must be whole); ``blocksize`` columns per block (with N:M
    rounded down to a multiple of ``m``, at least ``m``, so no group straddles two blocks);
    ``percdamp`` Hessian damping as a fraction of its mean diagonal, in (0, 1]."""

    sparsity: float
    m: int | None = None
    blocksize: int = 128
    percdamp: float = 0.01

    def __post_init__(self) -> None:
        check_fraction("sparsity", self.sparsity)
        check_blocksize(self.blocksize)
        check_percdamp(self.percdamp)
        if self.m is not None:
            n_for_sparsity(self.sparsity, self.m)

    @property
    def n(self) -> int | None:
        """Weights kept of every ``m`` (None when unstructured)."""
        return None if self.m is None else n_for_sparsity(self.sparsity, self.m)

    @property
    def sweep_blocksize(self) -> int:
        """The block size used: ``blocksize``, aligned to whole N:M groups."""
        return self.blocksize if self.m is None else max(self.m, self.blocksize // self.m * self.m)


def prune_layer(
    weight: torch.Tensor, stats: LayerStats, p: SparseGPTParams, *, layer: str = "", factors: Factors | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(keep_mask, updated_weight)`` of one ``(out, in)`` weight; pruned entries are 0, weight is float32.

    ``factors`` (from :func:`~junkdna_core.compress.obs.factorize`) are computed here when not given.
    """
    if factors is None:
        factors = factorize(stats, p.percdamp, device=weight.device, layer=layer)
    work, factor = factors.work_copy(weight), factors.factor
    rows, cols = work.shape
    keep = torch.ones_like(work, dtype=torch.bool)
    for start in range(0, cols, p.sweep_blocksize):
        end = min(start + p.sweep_blocksize, cols)
        block = work[:, start:end].clone()
        errors = torch.empty_like(block)
        local = factor[start:end, start:end]
        diagonal = torch.diagonal(local)
        scale = diagonal.square()
        if p.m is None:
            pruned = round(p.sparsity * rows * end) - round(p.sparsity * rows * start)
            keep[:, start:end] = keep_all_but_lowest(block.square() / scale, pruned)
        dropped = (~keep[:, start:end]).to(block.dtype)
        for i in range(end - start):
            if p.m is not None and i % p.m == 0:
                group = slice(i, i + p.m)
                keep[:, start + i : start + i + p.m] = nm_mask(block[:, group].square() / scale[group], p.n, p.m)
                dropped[:, group] = (~keep[:, start + i : start + i + p.m]).to(block.dtype)
            # the pruned part of the column, scaled: (w - w * keep) / d; column i itself is final
            torch.div(block[:, i] * dropped[:, i], diagonal[i], out=errors[:, i])
            block[:, i + 1 :] -= errors[:, i, None] * local[i, i + 1 :]
        work[:, start:end] = block.mul_(keep[:, start:end])
        work[:, end:] -= errors @ factor[start:end, end:]
    return keep, work


class SparseGPT(PruningMethod):
    """SparseGPT one-shot pruning (unstructured or N:M), layer by layer on calibration statistics."""

    name: ClassVar[str] = "sparsegpt"
    # 3: one sequential pass per block (each group of linears on the outputs of the already compressed ones),
    # the inverse-Hessian factor from one Cholesky and a triangular inverse (float32 rounding differs)
    version: ClassVar[str] = "3"
    calibration_pass: ClassVar[str] = "sequential"
    params_type: ClassVar[type[MethodParams]] = SparseGPTParams
    needs_calibration: ClassVar[bool] = True
    params: SparseGPTParams

    def compress(
        self,
        weights: Mapping[str, torch.Tensor],
        stats: Mapping[str, LayerStats] | None,
    ) -> dict[str, LayerResult]:
        """A keep-mask and the OBS-updated weight of every layer; sparsity 0 returns them unchanged."""
        stats = check_calibrated_inputs(self.name, weights, stats)
        if self.params.m is not None:
            for weight in weights.values():
                check_nm_shape(tuple(weight.shape), self.params.m)
        if self.params.sparsity == 0:
            return {
                name: LayerResult(mask=torch.ones_like(w, dtype=torch.bool), weight=w.detach().clone())
                for name, w in weights.items()
            }
        factors = factorize_all(weights, stats, self.params.percdamp)
        results = {}
        for name, weight in weights.items():
            keep, updated = prune_layer(weight, stats[name], self.params, layer=name, factors=factors[name])
            results[name] = LayerResult(mask=keep, weight=updated.to(weight.dtype))
        return results
