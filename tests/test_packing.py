"""Bit-packing of masks and integer codes: exact round trips, compact sizes, and compressed-tensors' layout."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from junkdna_core.compress.packing import MAX_CODE_BITS, pack_codes, pack_mask, packed_words, unpack_codes, unpack_mask
from junkdna_core.config.errors import ConfigError

shapes = st.tuples(st.integers(1, 9), st.integers(1, 70))


@settings(max_examples=60, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**31), density=st.floats(0.0, 1.0))
def test_masks_round_trip_at_one_bit_per_weight(shape, seed, density):
    mask = torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < density
    bits = pack_mask(mask)
    assert bits.dtype == torch.uint8 and tuple(bits.shape) == (shape[0], math.ceil(shape[1] / 8))
    assert torch.equal(unpack_mask(bits, shape), mask)


def test_mask_bits_are_little_endian_rows():
    mask = torch.tensor([[True, False, False, False, False, False, False, False, True], [False] * 8 + [True]])
    assert pack_mask(mask).tolist() == [[1, 1], [0, 1]]


@settings(max_examples=80, deadline=None)
@given(shape=shapes, bits=st.integers(1, MAX_CODE_BITS), seed=st.integers(0, 2**31))
def test_codes_round_trip_in_bits_per_code(shape, bits, seed):
    codes = torch.randint(0, 2**bits, shape, generator=torch.Generator().manual_seed(seed))
    words = pack_codes(codes, bits)
    assert words.dtype == torch.int32 and tuple(words.shape) == (shape[0], packed_words(shape[1], bits))
    unpacked = unpack_codes(words, bits, shape)
    assert unpacked.dtype == (torch.uint8 if bits <= 8 else torch.int32)
    assert torch.equal(unpacked.long(), codes)


def test_codes_are_packed_densely_least_significant_bit_first():
    codes = torch.tensor([[1, 2, 3, 0, 7, 5, 6, 4, 1, 1, 1]])  # 11 codes of 3 bits: 33 bits, two words
    words = pack_codes(codes, 3)
    stream = sum(int(c) << (3 * i) for i, c in enumerate(codes[0].tolist()))
    assert words.view(torch.int32).numpy().astype(np.uint32).tolist() == [[stream & 0xFFFFFFFF, stream >> 32]]


@pytest.mark.parametrize("bad", [0, MAX_CODE_BITS + 1, True, 2.0])
def test_bad_bit_widths_are_config_errors(bad):
    with pytest.raises(ConfigError, match="bits"):
        pack_codes(torch.zeros(2, 2, dtype=torch.int64), bad)


def test_codes_out_of_range_and_float_codes_are_config_errors():
    with pytest.raises(ConfigError, match=r"\[0, 15\]"):
        pack_codes(torch.tensor([[16]]), 4)
    with pytest.raises(ConfigError, match="integer"):
        pack_codes(torch.zeros(2, 2), 4)
    with pytest.raises(ConfigError, match="do not hold"):
        unpack_codes(torch.zeros(2, 1, dtype=torch.int32), 4, (2, 9))
    with pytest.raises(ConfigError, match="does not hold"):
        unpack_mask(torch.zeros(2, 1, dtype=torch.uint8), (2, 9))


def test_layout_is_compressed_tensors_pack_to_int32():
    helpers = pytest.importorskip("compressed_tensors.compressors.pack_quantized.helpers")
    generator = torch.Generator().manual_seed(0)
    for bits in range(1, 9):
        for shape in [(5, 7), (3, 64), (4, 33), (96, 160)]:
            codes = torch.randint(0, 2**bits, shape, generator=generator)
            signed = (codes - 2 ** (bits - 1)).to(torch.int8)
            assert torch.equal(pack_codes(codes, bits), helpers.pack_to_int32(signed, bits))
            assert torch.equal(pack_codes(codes.t().contiguous(), bits).t(),
                               helpers.pack_to_int32(signed, bits, packed_dim=0))
            assert torch.equal(helpers.unpack_from_int32(pack_codes(codes, bits), bits, torch.Size(shape)), signed)
