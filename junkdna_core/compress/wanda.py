"""Wanda (Sun et al., 2023): prune by ``|W_ij| * ||X_j||_2``, per output row or N:M."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import torch

from junkdna_core.compress.base import LayerResult, LayerStats, MethodParams, PruningMethod
from junkdna_core.compress.selection import nm_mask, row_mask
from junkdna_core.compress.validation import check_fraction, check_nm_shape, n_for_sparsity
from junkdna_core.config.errors import ConfigError


@dataclass(frozen=True)
class WandaParams(MethodParams):
    """Sparsity per output row; with ``m`` set, N:M pruning with ``N = (1 - sparsity) * m``."""

    sparsity: float
    m: int | None = None

    def __post_init__(self) -> None:
        check_fraction("sparsity", self.sparsity)
        if self.m is not None:
            n_for_sparsity(self.sparsity, self.m)

    @property
    def n(self) -> int | None:
        """N of N:M pruning, or None for unstructured (per-row) pruning."""
        return None if self.m is None else n_for_sparsity(self.sparsity, self.m)


class Wanda(PruningMethod):
    """Pruning by weight magnitude times input-feature norm over the calibration tokens."""

    name: ClassVar[str] = "wanda"
    # 2: one sequential pass per block (o_proj and down_proj see the pruned q/k/v and gate/up), input norms
    # from a sum of squares over all calibration tokens at once instead of the Gram diagonal
    version: ClassVar[str] = "2"
    params_type: ClassVar[type[MethodParams]] = WandaParams
    needs_calibration: ClassVar[bool] = True
    statistics: ClassVar[tuple[str, ...]] = ("input_norms",)  # no Gram matrices: one sum of squares per layer
    calibration_pass: ClassVar[str] = "sequential"
    sparsity_unit: ClassVar[str] = "row"  # exact count per output row (for the conformance kit)
    params: WandaParams

    def compress(
        self,
        weights: Mapping[str, torch.Tensor],
        stats: Mapping[str, LayerStats] | None,
    ) -> dict[str, LayerResult]:
        """A keep-mask per weight; every weight needs its layer's input statistics in ``stats``."""
        norms = {name: _input_norms(name, w, stats) for name, w in weights.items()}
        if self.params.m is not None:
            for w in weights.values():
                check_nm_shape(tuple(w.shape), self.params.m)
        return {name: LayerResult(mask=self._mask(w, norms[name])) for name, w in weights.items()}

    def _mask(self, weight: torch.Tensor, norms: torch.Tensor) -> torch.Tensor:
        scores = weight.detach().abs().float() * norms.to(device=weight.device, dtype=torch.float32)
        n, m = self.params.n, self.params.m
        if n is None or m is None:
            return row_mask(scores, self.params.sparsity)
        return nm_mask(scores, n, m)


def _input_norms(name: str, weight: torch.Tensor, stats: Mapping[str, LayerStats] | None) -> torch.Tensor:
    """``||X_j||_2`` of the layer's inputs, checked against the weight's in_features."""
    if stats is None or name not in stats:
        raise ConfigError(f"wanda needs calibration statistics for every layer; none given for {name!r}")
    norms = stats[name].input_norms
    if weight.dim() != 2 or norms.shape != (weight.shape[1],):
        raise ConfigError(
            f"wanda: statistics of {name!r} cover {tuple(norms.shape)} input features, "
            f"but its weight has shape {tuple(weight.shape)}"
        )
    return norms
