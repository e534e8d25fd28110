"""RTN: round-to-nearest weight quantization on a min-max grid per row and column group.

The data-free baseline GPTQ is measured against: every weight is rounded to
the nearest point of its group's grid, independently of the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from junkdna_core.compress.base import (
    Budget,
    CompressionMethod,
    Family,
    LayerResult,
    LayerStats,
    MethodParams,
    levels_for,
    params_with_options,
)
from junkdna_core.compress.quantizer import (
    check_bits,
    check_group_divides,
    check_group_size,
    quantize_groups,
)
from junkdna_core.errors import ConfigError

SMOKE_BITS = (8, 4, 3, 2)
FULL_BITS = (8, 7, 6, 5, 4, 3, 2)


def level_to_bits(level: float) -> Any:
    """A level as bits: a whole float (4.0) becomes an int; anything else is passed on to validation."""
    if isinstance(level, float) and level.is_integer():
        return int(level)
    return level


@dataclass(frozen=True)
class RTNParams(MethodParams):
    """RTN parameters: ``bits`` per weight (1..16), ``group_size`` input columns per grid
    (None = one grid per row; must divide every layer's in_features), ``symmetric`` grid."""

    bits: int
    group_size: int | None = 64
    symmetric: bool = False

    def __post_init__(self) -> None:
        check_bits(self.bits)
        check_group_size(self.group_size)
        if not isinstance(self.symmetric, bool):
            raise ConfigError(f"symmetric must be True or False; got {self.symmetric!r}")


class RTN(CompressionMethod):
    """Round-to-nearest quantization (weight only; no calibration)."""

    name: ClassVar[str] = "rtn"
    version: ClassVar[str] = "1"
    params_type: ClassVar[type[MethodParams]] = RTNParams
    family: ClassVar[Family] = "quantization"
    level_name: ClassVar[str] = "bits"
    needs_calibration: ClassVar[bool] = False
    params: RTNParams

    @classmethod
    def at_level(cls, level: float, **options: Any) -> RTN:
        """RTN at ``level`` bits; ``options`` are the other :class:`RTNParams` fields."""
        return cls(params_with_options(RTNParams, options, bits=level_to_bits(level)))

    @classmethod
    def default_levels(cls, budget: Budget) -> tuple[float, ...]:
        """Bits 8, 4, 3, 2 (smoke) or 8 down to 2 (full)."""
        return levels_for(budget, smoke=SMOKE_BITS, full=FULL_BITS)

    def compress(
        self,
        weights: Mapping[str, torch.Tensor],
        stats: Mapping[str, LayerStats] | None,
    ) -> dict[str, LayerResult]:
        """The quantized-then-dequantized weight of every layer (``stats`` is ignored)."""
        p = self.params
        for name, weight in weights.items():
            if weight.dim() != 2:
                raise ConfigError(f"rtn: weight {name} must be 2-D (out, in); got shape {tuple(weight.shape)}")
            check_group_divides(p.group_size, weight.shape[1], name)
        return {
            name: LayerResult(
                weight=quantize_groups(weight.detach().float(), p.bits, p.group_size, p.symmetric).to(weight.dtype)
            )
            for name, weight in weights.items()
        }
