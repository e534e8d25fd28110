"""Tests of low-rank (truncated SVD) compression."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from junkdna_core.compress.lowrank import LowRank, LowRankParams
from junkdna_core.config.budgets import BUDGETS, get_budget
from junkdna_core.config.errors import ConfigError

torch.set_num_threads(1)


def frobenius_error(weight: torch.Tensor, fraction: float) -> float:
    approx = LowRank.at_level(fraction).compress({"w": weight}, None)["w"].weight
    return float(torch.linalg.matrix_norm(weight.double() - approx.double()))


@settings(max_examples=30, deadline=None)
@given(
    out_features=st.integers(1, 12),
    in_features=st.integers(1, 12),
    fraction=st.floats(0.01, 1.0),
    seed=st.integers(0, 99),
)
def test_error_matches_eckart_young(out_features: int, in_features: int, fraction: float, seed: int) -> None:
    torch.manual_seed(seed)
    weight = torch.randn(out_features, in_features)
    method = LowRank(LowRankParams(fraction))
    r = max(1, round(fraction * min(out_features, in_features)))
    assert method.rank(tuple(weight.shape)) == r
    approx = method.compress({"w": weight}, None)["w"].weight
    assert approx.shape == weight.shape and approx.dtype == weight.dtype
    singular = np.linalg.svd(weight.double().numpy(), compute_uv=False)
    expected = math.sqrt(float(np.sum(singular[r:] ** 2)))
    assert frobenius_error(weight, fraction) == pytest.approx(expected, abs=1e-4)
    assert np.linalg.matrix_rank(approx.double().numpy(), tol=1e-4) == min(r, len(singular))


def test_error_falls_strictly_with_rank_and_vanishes_at_full_rank() -> None:
    torch.manual_seed(0)
    weight = torch.randn(24, 16)
    fractions = [r / 16 for r in range(1, 17)]
    errors = [frobenius_error(weight, f) for f in fractions]
    assert all(a > b for a, b in itertools.pairwise(errors))
    assert errors[-1] < 1e-4 * float(torch.linalg.matrix_norm(weight))


def test_default_levels_weakest_first() -> None:
    assert LowRank.default_levels(BUDGETS["smoke"]) == (0.75, 0.5, 0.25)
    assert LowRank.default_levels(BUDGETS["full"]) == (0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1)
    torch.manual_seed(1)
    weight = torch.randn(10, 20)
    errors = [frobenius_error(weight, f) for f in LowRank.default_levels(BUDGETS["full"])]
    assert errors == sorted(errors)


def test_keeps_dtype_and_inputs_and_returns_no_mask() -> None:
    torch.manual_seed(2)
    weights = {"a": torch.randn(8, 6).to(torch.bfloat16), "b": torch.randn(5, 9)}
    before = {name: w.clone() for name, w in weights.items()}
    results = LowRank.at_level(0.5).compress(weights, None)
    assert list(results) == ["a", "b"]
    for name, w in weights.items():
        assert torch.equal(w, before[name])
        assert results[name].mask is None
        assert results[name].weight.dtype == w.dtype and results[name].weight.shape == w.shape
    assert LowRank.at_level(0.5).describe() == {"method": "lowrank", "version": "1", "params": {"rank_fraction": 0.5}}


@pytest.mark.parametrize("fraction", [0, 0.0, 1.5, -0.25, math.nan, "0.5", True, None], ids=repr)
def test_invalid_rank_fraction_is_config_error_naming_value(fraction) -> None:
    for make in (lambda: LowRankParams(fraction), lambda: LowRank.at_level(fraction)):
        with pytest.raises(ConfigError, match=r"rank_fraction must be a number in \(0, 1\]") as info:
            make()
        assert str(fraction) in str(info.value)


def test_other_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"\(2, 3, 4\)"):
        LowRank.at_level(0.5).compress({"ok": torch.zeros(3, 3), "bad": torch.zeros(2, 3, 4)}, None)
    with pytest.raises(ConfigError, match="'rank'"):
        LowRank.at_level(0.5, rank=3)
    with pytest.raises(ConfigError, match="'tiny'"):
        get_budget("tiny")


def test_a_rank_sweep_decomposes_each_cpu_weight_once_and_gives_the_same_factors(monkeypatch):
    from junkdna_core.compress import lowrank

    calls = []
    real = torch.linalg.svd
    monkeypatch.setattr(torch.linalg, "svd", lambda *a, **k: calls.append(a[0].shape) or real(*a, **k))
    monkeypatch.setattr(lowrank, "SVD_MEMO", lowrank.SVDMemo(max_bytes=2**30))
    weights = {"a": torch.randn(16, 8, generator=torch.Generator().manual_seed(0)),
               "b": torch.randn(6, 10, generator=torch.Generator().manual_seed(1)).bfloat16()}
    swept = {f: LowRank.at_level(f).compress(weights, None) for f in (0.75, 0.5, 0.25)}
    assert len(calls) == 2  # one SVD per weight for the three rank fractions
    fresh = lowrank.SVDMemo(max_bytes=0)  # keeps nothing: every call decomposes
    monkeypatch.setattr(lowrank, "SVD_MEMO", fresh)
    for fraction, results in swept.items():
        again = LowRank.at_level(fraction).compress(weights, None)
        for name in weights:
            assert torch.equal(results[name].weight, again[name].weight)
    assert len(calls) == 2 + 3 * 2 and fresh.held == 0
    changed = {"a": weights["a"].clone()}
    changed["a"][0, 0] += 1  # other content, other key
    monkeypatch.setattr(lowrank, "SVD_MEMO", lowrank.SVDMemo(max_bytes=2**30))
    LowRank.at_level(0.5).compress(weights, None)
    LowRank.at_level(0.5).compress(changed, None)
    assert len(calls) == 8 + 2 + 1
