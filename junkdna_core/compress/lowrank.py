"""Low-rank compression: replace each weight by its best rank-r approximation (truncated SVD).

A weight's full SVD does not depend on the rank kept, so a sweep over rank
fractions decomposes each weight once per process (:class:`SVDMemo`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import torch

from junkdna_core.compress.base import CompressionMethod, Family, LayerResult, LayerStats, MethodParams
from junkdna_core.compress.encodings import LowRankFactors
from junkdna_core.compress.validation import check_fraction
from junkdna_core.config.budgets import Budget
from junkdna_core.config.errors import ConfigError


class SVDMemo:
    """The SVDs of the CPU weights this process has decomposed, keyed by shape, dtype and content, up to
    ``max_bytes`` of factors; beyond that, decompositions are not kept (the first ones stay, so a sweep
    that does not fit still reuses what does). Weights on other devices are decomposed every time."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.held = 0
        self._svds: dict[tuple[object, ...], tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def svd(self, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``torch.linalg.svd(weight.float(), full_matrices=False)``, computed once per distinct CPU weight."""
        if weight.device.type != "cpu":
            return torch.linalg.svd(weight.detach().float(), full_matrices=False)
        data = weight.detach().contiguous()
        key = (tuple(data.shape), str(data.dtype), hashlib.blake2b(data.view(torch.uint8).numpy()).digest())
        if key not in self._svds:
            factors = torch.linalg.svd(data.float(), full_matrices=False)
            size = sum(f.numel() * f.element_size() for f in factors)
            if self.held + size > self.max_bytes:
                return factors
            self._svds[key] = factors
            self.held += size
        return self._svds[key]


SVD_MEMO = SVDMemo(max_bytes=2 * 2**30)


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
        u, s, vh = SVD_MEMO.svd(weight)
        return LowRankFactors(u[:, :r] * s[:r], vh[:r].clone())
