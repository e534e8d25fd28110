"""Bit-packing of keep-masks and integer codes, in the layouts compressed-tensors uses on disk.

- A mask is packed row by row, least significant bit first, each row padded to whole bytes:
  ``numpy.packbits(mask, axis=-1, bitorder="little")``, the ``bitmask`` tensor of
  compressed-tensors' sparse-bitmask format; 1 bit per weight.
- Integer codes (unsigned, ``bits`` wide) are packed densely along each row into int32 words:
  element ``i`` of a row occupies bits ``i * bits`` .. ``i * bits + bits - 1`` of the row's
  little-endian bit stream, and a row takes ``ceil(cols * bits / 32)`` words. This is
  compressed-tensors' ``pack_to_int32`` (which first offsets its signed int8 codes by
  ``2**(bits - 1)``, making them exactly these unsigned codes); here ``bits`` may reach 16.

Both work on any host byte order and in row chunks, so packing a 70B model's largest matrix
needs a few hundred MB of scratch memory, not bits-times the matrix.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from junkdna_core.config.errors import ConfigError

MAX_CODE_BITS = 16
_CHUNK_BITS = 1 << 27  # bits expanded at once (128 MiB of uint8 scratch)


def pack_mask(mask: torch.Tensor) -> torch.Tensor:
    """A 2-D bool mask as uint8 rows of bits, shape ``(rows, ceil(cols / 8))``."""
    if mask.dim() != 2 or mask.dtype != torch.bool:
        raise ConfigError(f"a mask to pack must be a 2-D bool tensor; got {mask.dtype} of shape {tuple(mask.shape)}")
    return torch.from_numpy(np.packbits(mask.detach().cpu().numpy(), axis=-1, bitorder="little"))


def unpack_mask(bits: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`pack_mask`: the bool mask of ``shape``."""
    rows, cols = shape
    if tuple(bits.shape) != (rows, math.ceil(cols / 8)) or bits.dtype != torch.uint8:
        raise ConfigError(f"packed mask of shape {tuple(bits.shape)} ({bits.dtype}) does not hold a {shape} mask")
    unpacked = np.unpackbits(bits.cpu().numpy(), axis=-1, count=cols, bitorder="little")
    return torch.from_numpy(unpacked.astype(bool))


def _check_bits(bits: int) -> None:
    if not isinstance(bits, int) or isinstance(bits, bool) or not 1 <= bits <= MAX_CODE_BITS:
        raise ConfigError(f"codes can be packed at 1 to {MAX_CODE_BITS} bits; got {bits!r}")


def packed_words(cols: int, bits: int) -> int:
    """How many int32 words one row of ``cols`` codes of ``bits`` bits takes."""
    return math.ceil(cols * bits / 32)


def _rows_per_chunk(row_bits: int) -> int:
    return max(1, _CHUNK_BITS // max(1, row_bits))


def pack_codes(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Unsigned integer codes ``(rows, cols)`` in ``[0, 2**bits - 1]`` packed into int32 ``(rows, words)``."""
    _check_bits(bits)
    if codes.dim() != 2 or codes.dtype.is_floating_point or codes.dtype == torch.bool:
        raise ConfigError(f"codes to pack must be a 2-D integer tensor; got {codes.dtype} {tuple(codes.shape)}")
    values = codes.detach().cpu().numpy()
    if values.size and (values.min() < 0 or values.max() >= 1 << bits):
        raise ConfigError(f"codes must lie in [0, {(1 << bits) - 1}] for {bits} bits; got [{values.min()}, "
                          f"{values.max()}]")
    rows, cols = values.shape
    words = packed_words(cols, bits)
    shifts = np.arange(bits, dtype=np.uint32)
    out = np.empty((rows, words * 4), dtype=np.uint8)
    step = _rows_per_chunk(cols * bits)
    for start in range(0, rows, step):
        block = values[start : start + step].astype(np.uint32)
        planes = ((block[..., None] >> shifts) & 1).astype(np.uint8).reshape(block.shape[0], cols * bits)
        planes = np.pad(planes, ((0, 0), (0, words * 32 - cols * bits)))
        out[start : start + block.shape[0]] = np.packbits(planes, axis=1, bitorder="little")
    little_words = out.view("<u4").reshape(rows, words)
    return torch.from_numpy(little_words.astype(np.uint32).view(np.int32))


def unpack_codes(words: torch.Tensor, bits: int, shape: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`pack_codes`: the codes of ``shape``, as uint8 up to 8 bits, else int32."""
    _check_bits(bits)
    rows, cols = shape
    expected = (rows, packed_words(cols, bits))
    if tuple(words.shape) != expected or words.dtype != torch.int32:
        raise ConfigError(f"packed codes of shape {tuple(words.shape)} ({words.dtype}) do not hold {shape} codes "
                          f"of {bits} bits; expected int32 {expected}")
    raw = words.cpu().numpy().view(np.uint32).astype("<u4").view(np.uint8).reshape(rows, -1)
    weights = (1 << np.arange(bits, dtype=np.uint32)).astype(np.uint32)
    out = np.empty((rows, cols), dtype=np.uint8 if bits <= 8 else np.int32)
    step = _rows_per_chunk(cols * bits)
    for start in range(0, rows, step):
        planes = np.unpackbits(raw[start : start + step], axis=1, count=cols * bits, bitorder="little")
        block = planes.reshape(-1, cols, bits).astype(np.uint32) @ weights
        out[start : start + block.shape[0]] = block
    return torch.from_numpy(out)
