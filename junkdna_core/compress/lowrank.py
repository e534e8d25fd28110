"""Low-rank compression: replace each weight by its best rank-r approximation (truncated SVD)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import torch

from junkdna_core.compress.base import CompressionMethod, Family, LayerResult, LayerStats, MethodParams
from junkdna_core.compress.encodings import LowRankFactors
from junkdna_core.compress.validation import check_fraction
from junkdna_core.config.budgets import Budget
from junkdna_core.config.errors import ConfigError


@dataclass(frozen=True)
class LowRankParams(MethodParams):
    """Fraction of each weight's full rank ``min(out_features, in_features)`` that is kept, in (0, 1]."""

    rank_fraction: float

    def __post_init__(self) -> None:
        check_fraction("rank_fraction", self.rank_fraction, low_open=True, high_open=False)


class LowRank(CompressionMethod):
    """Truncated SVD: keep the top ``r = max(1, round(rank_fraction * min(out, in)))`` singular directions."""

    name: ClassVar[str] = "lowrank"
    version: ClassVar[str] = "1"
    params_type: ClassVar[type[MethodParams]] = LowRankParams
    family: ClassVar[Family] = "lowrank"
    level_name: ClassVar[str] = "rank_fraction"
    needs_calibration: ClassVar[bool] = False
    params: LowRankParams

    @classmethod
    def default_levels(cls, budget: Budget) -> tuple[float, ...]:
        """The budget's ``rank_fractions``, weakest (most rank kept) first."""
        return budget.rank_fractions

    def rank(self, shape: tuple[int, ...]) -> int:
        """The rank kept for a weight of ``shape``."""
        return max(1, round(self.params.rank_fraction * min(shape)))

    def compress(
        self,
        weights: Mapping[str, torch.Tensor],
        stats: Mapping[str, LayerStats] | None,
    ) -> dict[str, LayerResult]:
        """A rank-r replacement weight per matrix (in the weight's dtype and device), with its factors."""
        for name, w in weights.items():
            if w.dim() != 2:
                raise ConfigError(f"low-rank compression needs 2-D weights; {name!r} has shape {tuple(w.shape)}")
        results = {}
        for name, w in weights.items():
            factors = self.factors(w)
            results[name] = LayerResult(weight=factors.decode(w.dtype), encoding=factors)
        return results

    def factors(self, weight: torch.Tensor) -> LowRankFactors:
        """The truncated SVD of ``weight`` as ``(U_r * S_r) @ Vh_r`` factors, in float32."""
        r = self.rank(tuple(weight.shape))
        u, s, vh = torch.linalg.svd(weight.detach().float(), full_matrices=False)
        return LowRankFactors(u[:, :r] * s[:r], vh[:r].clone())
