"""Random pruning: the baseline that magnitude pruning is compared against."""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import torch

from junkdna_core.compress.base import LayerResult, LayerStats, MethodParams, PruningMethod
from junkdna_core.compress.validation import check_fraction
from junkdna_core.config.checks import check_seed


@dataclass(frozen=True)
class RandomParams(MethodParams):
    """Fraction of weights pruned per layer, and the seed that picks them (a benchmark run passes ``--jd-seed``)."""

    sparsity: float
    seed: int = 0

    def __post_init__(self) -> None:
        check_fraction("sparsity", self.sparsity)
        check_seed(self.seed, "random pruning seed")


class RandomPrune(PruningMethod):
    """Prune exactly ``round(sparsity * numel)`` weights of each layer, chosen uniformly at random.

    The choice depends only on the seed and the layer's name, not on which
    other layers are compressed with it or in what order.
    """

    name: ClassVar[str] = "random"
    version: ClassVar[str] = "1"
    params_type: ClassVar[type[MethodParams]] = RandomParams
    needs_calibration: ClassVar[bool] = False
    params: RandomParams

    def compress(
        self,
        weights: Mapping[str, torch.Tensor],
        stats: Mapping[str, LayerStats] | None,
    ) -> dict[str, LayerResult]:
        """A keep-mask per weight, drawn from a generator seeded by (seed, layer name)."""
        return {name: LayerResult(mask=self._layer_mask(name, w)) for name, w in weights.items()}

    def _layer_mask(self, name: str, weight: torch.Tensor) -> torch.Tensor:
        # torch's CPU generator uses only 32 bits of its seed, so the seed continues the
        # name's CRC-32: for a fixed layer name, distinct seeds give distinct streams.
        generator = torch.Generator().manual_seed(zlib.crc32(name.encode(), self.params.seed))
        k = round(self.params.sparsity * weight.numel())
        keep = torch.ones(weight.numel(), dtype=torch.bool)
        keep[torch.randperm(weight.numel(), generator=generator)[:k]] = False
        return keep.reshape(weight.shape).to(weight.device)
