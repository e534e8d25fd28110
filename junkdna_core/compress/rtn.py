"""RTN: round-to-nearest weight quantization on a min-max grid per row and column group.

The data-free baseline GPTQ is measured against: every weight is rounded to
the nearest point of its group's grid, independently of the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import torch

from junkdna_core.compress.base import LayerResult, LayerStats, MethodParams
from junkdna_core.compress.quantizer import QuantizationMethod, quantize_groups_encoded
from junkdna_core.compress.validation import check_bits, check_group_divides, check_group_size
from junkdna_core.config.errors import ConfigError


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


class RTN(QuantizationMethod):
    """Round-to-nearest quantization (weight only; no calibration)."""

    name: ClassVar[str] = "rtn"
    version: ClassVar[str] = "1"
    params_type: ClassVar[type[MethodParams]] = RTNParams
    needs_calibration: ClassVar[bool] = False
    params: RTNParams

    def compress(
        self,
        weights: Mapping[str, torch.Tensor],
        stats: Mapping[str, LayerStats] | None,
    ) -> dict[str, LayerResult]:
        """The quantized-then-dequantized weight of every layer, with its codes and grids (``stats`` is ignored)."""
        p = self.params
        for name, weight in weights.items():
            if weight.dim() != 2:
                raise ConfigError(f"rtn: weight {name} must be 2-D (out, in); got shape {tuple(weight.shape)}")
            check_group_divides(p.group_size, weight.shape[1], name, self.name)
        results = {}
        for name, weight in weights.items():
            encoded = quantize_groups_encoded(weight.detach().float(), p.bits, p.group_size, p.symmetric)
            results[name] = LayerResult(weight=encoded.decode(weight.dtype), encoding=encoded)
        return results
