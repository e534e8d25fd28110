"""One-shot magnitude pruning: drop the weights with the smallest absolute value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch

from junkdna_core.compress.base import LayerResult, LayerStats, MethodParams, PruningMethod
from junkdna_core.compress.selection import global_masks, layer_mask, row_mask
from junkdna_core.compress.validation import check_fraction
from junkdna_core.config.errors import ConfigError

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


class Magnitude(PruningMethod):
    """Prune the ``sparsity`` fraction of weights with the smallest ``|W|`` in each scope unit."""

    name: ClassVar[str] = "magnitude"
    version: ClassVar[str] = "1"
    params_type: ClassVar[type[MethodParams]] = MagnitudeParams
    needs_calibration: ClassVar[bool] = False
    params: MagnitudeParams

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
