"""N:M structured magnitude pruning: keep the N largest ``|W|`` of every M along the input dimension."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from junkdna_core.compress.base import LayerResult, LayerStats, MethodParams, PruningMethod
from junkdna_core.compress.selection import nm_mask
from junkdna_core.compress.validation import check_nm, check_nm_shape, n_for_sparsity
from junkdna_core.config.budgets import Budget
from junkdna_core.config.errors import ConfigError

DEFAULT_M = 8


@dataclass(frozen=True)
class NMParams(MethodParams):
    """Keep ``n`` of every ``m`` consecutive weights of a row (the paper sweeps M=8, N=7..1)."""

    n: int
    m: int

    def __post_init__(self) -> None:
        check_nm(self.n, self.m)

    @property
    def sparsity(self) -> float:
        """The fraction of weights pruned, ``1 - n / m``."""
        return 1 - self.n / self.m


class NMMagnitude(PruningMethod):
    """N:M pruning by magnitude; the level is the sparsity ``1 - N/M``."""

    name: ClassVar[str] = "nm"
    version: ClassVar[str] = "1"
    params_type: ClassVar[type[MethodParams]] = NMParams
    needs_calibration: ClassVar[bool] = False
    params: NMParams

    @classmethod
    def at_level(cls, level: float, **options: Any) -> NMMagnitude:
        """N:M pruning at sparsity ``level`` with option ``m`` (default 8); ``(1 - level) * m`` must be whole."""
        unknown = sorted(set(options) - {"m"})
        if unknown:
            raise ConfigError(f"NMMagnitude has no option {', '.join(map(repr, unknown))}; allowed options: m")
        m = options.get("m", DEFAULT_M)
        return cls(NMParams(n=n_for_sparsity(level, m), m=m))

    @classmethod
    def default_levels(cls, budget: Budget) -> tuple[float, ...]:
        """The budget's ``nm_sparsities`` (N = 7..1 of M = 8 on the full budget), weakest first."""
        return budget.nm_sparsities

    def compress(
        self,
        weights: Mapping[str, torch.Tensor],
        stats: Mapping[str, LayerStats] | None,
    ) -> dict[str, LayerResult]:
        """A keep-mask per weight with exactly N kept in every group of M; shapes are checked first."""
        n, m = self.params.n, self.params.m
        for w in weights.values():
            check_nm_shape(tuple(w.shape), m)
        return {name: LayerResult(mask=nm_mask(w.detach().abs(), n, m)) for name, w in weights.items()}
