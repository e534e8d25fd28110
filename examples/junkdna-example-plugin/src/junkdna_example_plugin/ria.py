"""RIA pruning: relative importance of each weight in its row and column, times input activation norms."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import torch
from junkdna_core import ConfigError, LayerResult, LayerStats, MethodParams, PruningMethod, check_fraction


@dataclass(frozen=True)
class RIAParams(MethodParams):
    """Fraction of every output row pruned, and the exponent on the input norms (0 = data-free scores)."""

    sparsity: float
    alpha: float = 0.5

    def __post_init__(self) -> None:
        check_fraction("sparsity", self.sparsity)
        if not (_finite_number(self.alpha) and self.alpha >= 0):
            raise ConfigError(f"RIA alpha must be a finite number >= 0; got {self.alpha!r}")


def _finite_number(value: object) -> bool:
    """A real number (not a bool) that is finite as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an int beyond float range
        return False


def relative_importance(weight: torch.Tensor, norms: torch.Tensor, alpha: float) -> torch.Tensor:
    """RIA scores of an ``(out, in)`` weight: ``(|W|/row sum + |W|/column sum) * norms ** alpha`` (float32)."""
    magnitude = weight.detach().abs().float()
    rows = magnitude.sum(dim=1, keepdim=True)
    cols = magnitude.sum(dim=0, keepdim=True)
    # an all-zero row or column has only zero entries, whose share is 0 whatever the divisor
    share = magnitude / torch.where(rows > 0, rows, 1.0) + magnitude / torch.where(cols > 0, cols, 1.0)
    return share * norms.to(device=weight.device, dtype=torch.float32).pow(alpha)


def prune_lowest_per_row(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Keep-mask pruning exactly ``round(sparsity * in_features)`` lowest scores per row (ties: lower column first)."""
    pruned = round(sparsity * scores.shape[1])
    keep = torch.ones_like(scores, dtype=torch.bool)
    lowest = torch.argsort(scores, dim=1, stable=True)[:, :pruned]
    return keep.scatter_(1, lowest, False)


class RIA(PruningMethod):
    """Relative Importance and Activations pruning (Zhang et al., 2024), per output row."""

    name: ClassVar[str] = "ria"
    version: ClassVar[str] = "1"
    params_type: ClassVar[type[MethodParams]] = RIAParams
    needs_calibration: ClassVar[bool] = True
    # counted per output row: tells the junkdna conformance kit which exact count to expect
    sparsity_unit: ClassVar[str] = "row"
    # reads only LayerStats.input_norms: the runner then collects sums of squares, not Gram matrices
    statistics: ClassVar[tuple[str, ...]] = ("input_norms",)
    params: RIAParams

    def compress(
        self,
        weights: Mapping[str, torch.Tensor],
        stats: Mapping[str, LayerStats] | None,
    ) -> dict[str, LayerResult]:
        """A keep-mask per weight; every weight needs its layer's input statistics in ``stats``."""
        norms = {name: _input_norms(name, w, stats) for name, w in weights.items()}
        return {
            name: LayerResult(
                mask=prune_lowest_per_row(relative_importance(w, norms[name], self.params.alpha), self.params.sparsity)
            )
            for name, w in weights.items()
        }


def _input_norms(name: str, weight: torch.Tensor, stats: Mapping[str, LayerStats] | None) -> torch.Tensor:
    """``||X_j||_2`` of the layer's inputs, checked against the weight's in_features."""
    if stats is None or name not in stats:
        raise ConfigError(f"ria needs calibration statistics for every layer; none given for {name!r}")
    norms = stats[name].input_norms
    if weight.dim() != 2 or tuple(norms.shape) != (weight.shape[1],):
        raise ConfigError(
            f"ria: statistics of {name!r} cover {tuple(norms.shape)} input features, "
            f"but its weight has shape {tuple(weight.shape)}"
        )
    return norms
