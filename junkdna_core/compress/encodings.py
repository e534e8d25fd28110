"""Compact forms of a compressed weight, which a method may return beside the dense replacement.

A :class:`~junkdna_core.compress.base.LayerResult` carries the replacement ``weight``; its
optional ``encoding`` says how that weight is made from far fewer numbers: integer codes on a
grid for quantization (:class:`QuantizedWeight`), two factors for low rank
(:class:`LowRankFactors`). ``encoding.decode(dtype)`` must equal ``weight`` bit for bit (the
runner checks it). Artifacts store the encoding instead of the dense values and decode it when
the model is loaded, so a stored 4-bit model takes about 4 bits per weight on disk.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from junkdna_core.compress.packing import MAX_CODE_BITS
from junkdna_core.config.errors import ConfigError


@dataclass(frozen=True)
class QuantizedWeight:
    """Integer codes on a uniform grid per row and column group: ``value = scale * (code - zero)``.

    ``codes``: ``(out, in)`` integers in ``[0, 2**bits - 1]``. ``scale`` and ``zero``: floating
    ``(out, groups)`` tensors (float32 from the built-in quantizers, which compute in it), ``zero``
    whole numbers in the same range; group ``g`` of a row covers input columns ``g * in / groups``
    to ``(g + 1) * in / groups`` (one group = one grid per row).
    Symmetric grids have ``zero == 2**(bits - 1)`` everywhere.
    """

    codes: torch.Tensor
    scale: torch.Tensor
    zero: torch.Tensor
    bits: int

    def __post_init__(self) -> None:
        if not isinstance(self.bits, int) or not 1 <= self.bits <= MAX_CODE_BITS:
            raise ConfigError(f"QuantizedWeight.bits must be a whole number in [1, {MAX_CODE_BITS}]; got {self.bits!r}")
        if self.codes.dim() != 2 or self.codes.dtype.is_floating_point:
            raise ConfigError(f"QuantizedWeight.codes must be a 2-D integer tensor; got {self.codes.dtype} "
                              f"{tuple(self.codes.shape)}")
        rows, cols = self.codes.shape
        for name in ("scale", "zero"):
            grid = getattr(self, name)
            if grid.dim() != 2 or grid.shape[0] != rows or grid.shape[1] < 1 or cols % grid.shape[1]:
                raise ConfigError(f"QuantizedWeight.{name} must be (out, groups) with groups dividing {cols}; "
                                  f"got {tuple(grid.shape)} for codes {tuple(self.codes.shape)}")
            if not grid.dtype.is_floating_point:
                raise ConfigError(f"QuantizedWeight.{name} must be a floating-point tensor; got {grid.dtype}")
        if self.scale.shape != self.zero.shape:
            raise ConfigError(f"QuantizedWeight.scale {tuple(self.scale.shape)} and zero {tuple(self.zero.shape)} "
                              "must have the same shape")

    @property
    def shape(self) -> tuple[int, int]:
        """The weight's ``(out, in)`` shape."""
        return tuple(self.codes.shape)  # type: ignore[return-value]

    @property
    def group_size(self) -> int | None:
        """Input columns per grid; None when each row has one grid."""
        groups = self.scale.shape[1]
        return None if groups == 1 else self.shape[1] // groups

    @property
    def symmetric(self) -> bool:
        """Whether every grid is centred (``zero == 2**(bits - 1)``)."""
        return bool(torch.all(self.zero == 2 ** (self.bits - 1)))

    def tensors(self) -> tuple[torch.Tensor, ...]:
        """The tensors the encoding holds."""
        return (self.codes, self.scale, self.zero)

    def to(self, device: str | torch.device) -> QuantizedWeight:
        """The same encoding with its tensors on ``device``."""
        return QuantizedWeight(self.codes.to(device), self.scale.to(device), self.zero.to(device), self.bits)

    def decode(self, dtype: torch.dtype) -> torch.Tensor:
        """The dequantized weight in ``dtype``, computed in the grid's dtype as the quantizer computes it."""
        rows, cols = self.shape
        groups = self.scale.shape[1]
        codes = self.codes.to(device=self.scale.device, dtype=self.scale.dtype).reshape(rows, groups, cols // groups)
        values = self.scale.unsqueeze(-1) * (codes - self.zero.unsqueeze(-1))
        return values.reshape(rows, cols).to(dtype)


@dataclass(frozen=True)
class LowRankFactors:
    """A rank-r weight as the product ``left @ right`` of float32 ``(out, r)`` and ``(r, in)`` factors."""

    left: torch.Tensor
    right: torch.Tensor

    def __post_init__(self) -> None:
        if self.left.dim() != 2 or self.right.dim() != 2 or self.left.shape[1] != self.right.shape[0]:
            raise ConfigError(f"LowRankFactors need (out, r) and (r, in) factors; got {tuple(self.left.shape)} and "
                              f"{tuple(self.right.shape)}")
        if self.left.dtype != torch.float32 or self.right.dtype != torch.float32:
            raise ConfigError(f"LowRankFactors must be float32; got {self.left.dtype} and {self.right.dtype}")

    @property
    def shape(self) -> tuple[int, int]:
        """The weight's ``(out, in)`` shape."""
        return (self.left.shape[0], self.right.shape[1])

    @property
    def rank(self) -> int:
        """The rank r."""
        return self.left.shape[1]

    def tensors(self) -> tuple[torch.Tensor, ...]:
        """The tensors the encoding holds."""
        return (self.left, self.right)

    def to(self, device: str | torch.device) -> LowRankFactors:
        """The same encoding with its tensors on ``device``."""
        return LowRankFactors(self.left.to(device), self.right.to(device))

    def decode(self, dtype: torch.dtype) -> torch.Tensor:
        """The product in ``dtype`` (float32 matrix product on the factors' device, then cast)."""
        return (self.left @ self.right.to(self.left.device)).to(dtype)


WeightEncoding = QuantizedWeight | LowRankFactors
"""The compact forms a LayerResult may carry."""
