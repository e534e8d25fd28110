"""The min-max uniform weight quantizer shared by RTN and GPTQ.

One grid (``scale``, ``zero``) per output row and per group of ``group_size``
consecutive input columns (or per whole row when ``group_size`` is None), as in
the GPTQ reference quantizer: the range always includes 0, asymmetric grids put
``zero`` on the integer nearest ``-min / scale``, symmetric grids centre it at
``2**(bits-1)``. A quantized value is ``scale * (q - zero)`` with integer
``q`` in ``[0, 2**bits - 1]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch

from junkdna_core.compress.base import CompressionMethod, Family
from junkdna_core.compress.encodings import QuantizedWeight
from junkdna_core.compress.validation import check_group_divides
from junkdna_core.config.budgets import Budget


def fit_grid(w: torch.Tensor, bits: int, symmetric: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The min-max grid of every slice along the last dim of ``w``: ``(scale, zero)``, last dim kept as 1."""
    maxq = 2**bits - 1
    zeros = torch.zeros((), dtype=w.dtype, device=w.device)
    xmin = torch.minimum(w.amin(dim=-1, keepdim=True), zeros)
    xmax = torch.maximum(w.amax(dim=-1, keepdim=True), zeros)
    if symmetric:
        xmax = torch.maximum(-xmin, xmax)
        xmin = torch.where(xmin < 0, -xmax, xmin)
    flat = (xmin == 0) & (xmax == 0)
    xmin = torch.where(flat, -torch.ones_like(xmin), xmin)
    xmax = torch.where(flat, torch.ones_like(xmax), xmax)
    scale = (xmax - xmin) / maxq
    if symmetric:
        zero = torch.full_like(scale, (maxq + 1) / 2)
    else:
        zero = torch.round(-xmin / scale)
    return scale, zero


def quantize_codes(w: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int) -> torch.Tensor:
    """The integer code q in [0, 2**bits - 1] (as floats) of the grid point ``scale * (q - zero)`` nearest ``w``."""
    return torch.clamp(torch.round(w / scale) + zero, 0, 2**bits - 1)


def quantize_dequantize(w: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int) -> torch.Tensor:
    """``w`` rounded to the nearest point of the grid ``scale * (q - zero)``, q in [0, 2**bits - 1]."""
    return scale * (quantize_codes(w, scale, zero, bits) - zero)


def code_dtype(bits: int) -> torch.dtype:
    """The integer dtype that holds codes of ``bits`` bits: uint8 up to 8 bits, else int32."""
    return torch.uint8 if bits <= 8 else torch.int32


def quantize_groups_encoded(w: torch.Tensor, bits: int, group_size: int | None, symmetric: bool) -> QuantizedWeight:
    """Round-to-nearest quantization of a 2-D ``w`` with one grid per row and column group, as codes and grids."""
    rows, cols = w.shape
    groups = w.reshape(rows, 1 if group_size is None else cols // group_size, -1)
    scale, zero = fit_grid(groups, bits, symmetric)
    codes = quantize_codes(groups, scale, zero, bits).reshape(rows, cols).to(code_dtype(bits))
    return QuantizedWeight(codes, scale.squeeze(-1), zero.squeeze(-1), bits)


def quantize_groups(w: torch.Tensor, bits: int, group_size: int | None, symmetric: bool) -> torch.Tensor:
    """Round-to-nearest quantization of a 2-D ``w`` with one grid per row and column group (dequantized)."""
    return quantize_groups_encoded(w, bits, group_size, symmetric).decode(w.dtype)


class QuantizationMethod(CompressionMethod):
    """Base of quantization methods: levels are whole numbers of bits, 8 down to 2 by default."""

    family: ClassVar[Family] = "quantization"
    level_name: ClassVar[str] = "bits"

    @classmethod
    def level_value(cls, level: float) -> Any:
        """A level as bits: a whole float (4.0) becomes an int; anything else is passed on to validation."""
        if isinstance(level, float) and level.is_integer():
            return int(level)
        return level

    @classmethod
    def default_levels(cls, budget: Budget) -> tuple[float, ...]:
        """The budget's ``bits``, weakest (most bits) first."""
        return tuple(float(b) for b in budget.bits)

    def check_shapes(self, shapes: Mapping[str, tuple[int, int]]) -> None:
        """The group size must divide every layer's in_features."""
        for layer, shape in shapes.items():
            check_group_divides(self.params.group_size, shape[1], layer, self.name)
