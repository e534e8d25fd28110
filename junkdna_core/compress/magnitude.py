"""One-shot magnitude pruning: drop the weights with the smallest absolute value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch

from junkdna_core.compress.base import (
    Budget,
    CompressionMethod,
    Family,
    LayerResult,
    LayerStats,
    MethodParams,
    check_fraction,
    levels_for,
    params_with_options,
)
from junkdna_core.compress.selection import global_masks, layer_mask, row_mask
from junkdna_core.errors import ConfigError

Scope = Literal["row", "layer", "global"]
SCOPES: tuple[Scope, ...] = ("row", "layer", "global")


@dataclass(frozen=True)
class MagnitudeParams(MethodParams):
    """Fraction of weights to prune, counted per output row, per layer or over all target layers."""

    sparsity: float
    scope: Scope = "layer"

    def __post_init__(self) -> None:
        check_fraction("sparsity", self.sparsity)
        if self.scope not in SCOPES:
            raise ConfigError(f"magnitude scope must be one of {', '.join(map(repr, SCOPES))}; got {self.scope!r}")


class Magnitude(CompressionMethod):
    """Prune the ``sparsity`` fraction of weights with the smallest ``|W|`` in each scope unit."""

    name: ClassVar[str] = "magnitude"
    version: ClassVar[str] = "1"
    params_type: ClassVar[type[MethodParams]] = MagnitudeParams
    family: ClassVar[Family] = "pruning"
    level_name: ClassVar[str] = "sparsity"
    needs_calibration: ClassVar[bool] = False
    params: MagnitudeParams

    @classmethod
    def at_level(cls, level: float, **options: Any) -> Magnitude:
        """Magnitude pruning at sparsity ``level``; option ``scope`` (row, layer or global)."""
        return cls(params_with_options(MagnitudeParams, options, sparsity=level))

    @classmethod
    def default_levels(cls, budget: Budget) -> tuple[float, ...]:
        """Sparsities 0.0-0.9 in steps of 0.1 (full) or 0.0-0.6 in steps of 0.2 (smoke)."""
        return levels_for(budget)

    def compress(
        self,
        weights: Mapping[str, torch.Tensor],
        stats: Mapping[str, LayerStats] | None,
    ) -> dict[str, LayerResult]:
        """A keep-mask per weight; with scope ``global`` one threshold spans all of ``weights``."""
        sparsity = self.params.sparsity
        if self.params.scope == "global":
            scores = {name: w.detach().abs() for name, w in weights.items()}
            return {name: LayerResult(mask=mask) for name, mask in global_masks(scores, sparsity).items()}
        select = row_mask if self.params.scope == "row" else layer_mask
        return {name: LayerResult(mask=select(w.detach().abs(), sparsity)) for name, w in weights.items()}
