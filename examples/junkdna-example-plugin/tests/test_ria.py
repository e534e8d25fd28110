"""RIA's scores and masks against independent numpy computations, and its parameter checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from junkdna_core import ConfigError, LayerStats, get_method

from junkdna_example_plugin import RIA, RIAParams

torch.set_num_threads(1)


def stats_from_norms(norms: list[float]) -> LayerStats:
    return LayerStats(gram=torch.diag(torch.tensor(norms) ** 2), tokens=1)


def numpy_ria_mask(weight: np.ndarray, norms: np.ndarray, sparsity: float, alpha: float) -> np.ndarray:
    a = np.abs(weight.astype(np.float64))
    scores = (a / a.sum(axis=1, keepdims=True) + a / a.sum(axis=0, keepdims=True)) * norms**alpha
    keep = np.ones_like(a, dtype=bool)
    pruned = round(sparsity * a.shape[1])
    for row, order in enumerate(np.argsort(scores, axis=1, kind="stable")):
        keep[row, order[:pruned]] = False
    return keep


def test_registered_under_its_entry_point():
    assert get_method("ria") is RIA


def test_hand_computed_example_prunes_the_larger_weight_of_a_heavy_column():
    # row 0 = [2, 1]; column 0 also holds 100. Scores: 2*(1/3 + 1/102) = 0.69 < 1*(1/3 + 1/2) = 0.83,
    # so RIA prunes the 2 where magnitude (and Wanda with equal norms) prunes the 1.
    w = torch.tensor([[2.0, 1.0], [100.0, 1.0]])
    stats = {"l": stats_from_norms([1.0, 1.0])}
    assert RIA.at_level(0.5).compress({"l": w}, stats)["l"].mask.tolist() == [[False, True], [True, False]]
    assert get_method("wanda").at_level(0.5).compress({"l": w}, stats)["l"].mask.tolist() == [[True, False], [True, False]]


@pytest.mark.parametrize(("sparsity", "alpha"), [(0.3, 0.5), (0.5, 0.0), (0.7, 1.0), (0.0, 0.5)])
def test_masks_match_numpy(sparsity, alpha):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(12, 40, generator=g)
    norms = torch.rand(40, generator=g) * 4
    mask = RIA.at_level(sparsity, alpha=alpha).compress({"l": w}, {"l": stats_from_norms(norms.tolist())})["l"].mask
    expected = numpy_ria_mask(w.numpy(), norms.double().numpy(), sparsity, alpha)
    # random inputs leave no near-ties, so float32 (RIA) and float64 (numpy) scores order alike
    assert np.array_equal(mask.numpy(), expected)


def test_activation_norms_change_the_choice():
    w = torch.tensor([[1.0, 1.0, 1.0, 1.0]])
    mask = RIA.at_level(0.5).compress({"l": w}, {"l": stats_from_norms([4.0, 0.0, 9.0, 1.0])})["l"].mask
    assert mask.tolist() == [[True, False, True, False]]


@pytest.mark.parametrize("alpha", [-0.5, math.nan, math.inf, True, "0.5"])
def test_invalid_alpha_is_config_error(alpha):
    with pytest.raises(ConfigError, match="alpha") as info:
        RIAParams(0.5, alpha=alpha)
    assert str(alpha) in str(info.value)


def test_missing_or_mismatched_stats_are_config_errors():
    w = torch.zeros(2, 8)
    with pytest.raises(ConfigError, match="'b'"):
        RIA.at_level(0.5).compress({"a": w, "b": w}, {"a": stats_from_norms([1.0] * 8)})
    with pytest.raises(ConfigError, match=r"\(4,\).*\(2, 8\)"):
        RIA.at_level(0.5).compress({"a": w}, {"a": stats_from_norms([1.0] * 4)})
