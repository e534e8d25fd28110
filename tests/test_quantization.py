"""Synthetic unit tests of the quantizer, RTN, GPTQ, SparseGPT and the shared OBS helpers."""

from __future__ import annotations

import itertools
import logging
import re
from importlib.metadata import entry_points

import numpy as np
import pytest
import torch

from junkdna_core.compress.base import LayerStats
from junkdna_core.compress.gptq import GPTQ, GPTQParams
from junkdna_core.compress.obs import damped_hessian, inverse_cholesky
from junkdna_core.compress.quantizer import fit_grid, quantize_dequantize, quantize_groups
from junkdna_core.compress.rtn import RTN, RTNParams
from junkdna_core.compress.sparsegpt import SparseGPT, SparseGPTParams
from junkdna_core.config.budgets import BUDGETS
from junkdna_core.config.errors import ConfigError

torch.set_num_threads(1)

ROWS, COLS, TOKENS = 24, 64, 400


def _inputs(seed: int = 0) -> torch.Tensor:
    """Correlated synthetic layer inputs (tokens x COLS), with uneven feature scales."""
    gen = torch.Generator().manual_seed(seed)
    mix = torch.randn(COLS, COLS, generator=gen) / COLS**0.5
    scales = torch.linspace(0.2, 3.0, COLS)
    return (torch.randn(TOKENS, COLS, generator=gen) @ mix + 0.3 * torch.randn(TOKENS, COLS, generator=gen)) * scales


def _weight(seed: int = 1, rows: int = ROWS, cols: int = COLS) -> torch.Tensor:
    return torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed))


def _stats(x: torch.Tensor) -> LayerStats:
    return LayerStats(gram=x.T @ x, tokens=x.shape[0])


def _output_error(x: torch.Tensor, w: torch.Tensor, w_new: torch.Tensor) -> float:
    return float(torch.linalg.norm(x @ w.T - x @ w_new.T))


def _on_grid_counts(values: torch.Tensor, group: int) -> list[int]:
    """Number of distinct values in every (row, column group)."""
    rows, cols = values.shape
    return [len(torch.unique(g)) for g in values.reshape(rows, cols // group, group).reshape(-1, group)]


# ---------------------------------------------------------------- quantizer


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("symmetric", [False, True])
def test_quantized_values_lie_on_the_grid(bits: int, symmetric: bool) -> None:
    w = _weight(seed=bits).reshape(ROWS, 4, COLS // 4)
    scale, zero = fit_grid(w, bits, symmetric)
    q = quantize_dequantize(w, scale, zero, bits)
    codes = q / scale + zero
    assert torch.allclose(codes, codes.round(), atol=1e-4)
    assert codes.min() >= -1e-4 and codes.max() <= 2**bits - 1 + 1e-4
    assert max(len(torch.unique(g)) for g in q.reshape(-1, COLS // 4)) <= 2**bits


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_asymmetric_rounding_is_to_the_nearest_grid_point(bits: int) -> None:
    w = _weight(seed=3)
    scale, zero = fit_grid(w, bits, symmetric=False)
    q = quantize_dequantize(w, scale, zero, bits)
    # the asymmetric grid spans [min(w, 0), max(w, 0)], so every value is within half a step
    assert torch.all((w - q).abs() <= scale / 2 * (1 + 1e-5))


def test_all_zero_rows_quantize_to_zero() -> None:
    w = torch.zeros(3, 8)
    assert torch.equal(quantize_groups(w, 4, None, symmetric=False), w)


def test_rtn_error_falls_as_bits_grow() -> None:
    w = _weight()
    errors = [
        float(torch.linalg.norm(w - RTN.at_level(b, group_size=16).compress({"l": w}, None)["l"].weight))
        for b in (2, 3, 4, 5, 6, 8)
    ]
    assert all(a > b for a, b in itertools.pairwise(errors)), errors


def test_rtn_groups_are_independent_grids() -> None:
    w = _weight()
    w[:, :16] *= 100.0  # a huge first group must not coarsen the grid of the others
    out = RTN.at_level(4, group_size=16).compress({"l": w}, None)["l"].weight
    per_group = torch.cat([quantize_groups(w[:, i : i + 16], 4, None, False) for i in range(0, COLS, 16)], dim=1)
    assert torch.equal(out, per_group)
    assert max(_on_grid_counts(out, 16)) <= 16


# ---------------------------------------------------------------- GPTQ


def _naive_gptq(w: torch.Tensor, hessian: torch.Tensor, bits: int, group: int | None) -> torch.Tensor:
    """Column-by-column OBQ with an explicitly eliminated inverse Hessian (float64, no blocks)."""
    w = w.double().clone()
    hinv = torch.linalg.inv(hessian.double())
    out = torch.zeros_like(w)
    if group is None:
        scale, zero = fit_grid(w, bits, False)
    for i in range(w.shape[1]):
        if group is not None and i % group == 0:
            scale, zero = fit_grid(w[:, i : i + group], bits, False)
        out[:, i] = quantize_dequantize(w[:, i : i + 1], scale, zero, bits).squeeze(1)
        err = (w[:, i] - out[:, i]) / hinv[i, i]
        w[:, i:] -= torch.outer(err, hinv[i, i:])
        hinv = hinv - torch.outer(hinv[:, i], hinv[i, :]) / hinv[i, i]
    return out


@pytest.mark.parametrize("group", [None, 8])
def test_gptq_matches_a_naive_sequential_obq(group: int | None) -> None:
    x, w = _inputs(), _weight()
    stats = _stats(x)
    hessian, _ = damped_hessian(stats, 0.01)
    expected = _naive_gptq(w, hessian, 4, group)
    got = GPTQ.at_level(4, group_size=group, blocksize=16).compress({"l": w}, {"l": stats})["l"].weight
    same = torch.isclose(got.double(), expected, atol=1e-3)
    # float32 vs float64 may flip a rare value sitting on a rounding boundary
    assert same.float().mean() > 0.99
    assert _output_error(x, w, got) == pytest.approx(_output_error(x, w, expected.float()), rel=0.02)


@pytest.mark.parametrize("act_order", [False, True])
def test_gptq_values_lie_on_group_grids_and_beat_rtn(act_order: bool) -> None:
    x, w = _inputs(), _weight()
    for bits in (2, 3, 4):
        gptq = GPTQ.at_level(bits, group_size=16, act_order=act_order).compress({"l": w}, {"l": _stats(x)})["l"]
        rtn = RTN.at_level(bits, group_size=16).compress({"l": w}, None)["l"]
        assert max(_on_grid_counts(gptq.weight, 16)) <= 2**bits
        gptq_error, rtn_error = _output_error(x, w, gptq.weight), _output_error(x, w, rtn.weight)
        assert gptq_error < rtn_error, (bits, gptq_error, rtn_error)


def test_gptq_static_groups_quantize_onto_the_original_weights_grids() -> None:
    x, w = _inputs(), _weight()
    group = 16
    out = GPTQ.at_level(3, group_size=group, static_groups=True).compress({"l": w}, {"l": _stats(x)})["l"].weight
    rows, cols = w.shape
    scale, zero = fit_grid(w.reshape(rows, cols // group, group), 3, False)
    grouped = out.reshape(rows, cols // group, group)
    assert torch.allclose(quantize_dequantize(grouped, scale, zero, 3), grouped, atol=1e-6)
    rtn = RTN.at_level(3, group_size=group).compress({"l": w}, None)["l"].weight
    assert _output_error(x, w, out) < _output_error(x, w, rtn)
    dynamic = GPTQ.at_level(3, group_size=group).compress({"l": w}, {"l": _stats(x)})["l"].weight
    assert not torch.equal(dynamic, out)  # grids fitted during the sweep differ


def test_gptq_error_falls_as_bits_grow_and_16_bits_is_near_lossless() -> None:
    x, w = _inputs(), _weight()
    errors = [
        _output_error(x, w, GPTQ.at_level(b).compress({"l": w}, {"l": _stats(x)})["l"].weight)
        for b in (2, 3, 4, 6, 8, 16)
    ]
    assert all(a > b for a, b in itertools.pairwise(errors)), errors
    assert errors[-1] < 1e-3 * float(torch.linalg.norm(x @ w.T))


def test_dead_input_columns_are_zeroed_without_nan() -> None:
    x = _inputs()
    x[:, 5] = 0.0
    w = _weight()
    for method in (GPTQ.at_level(4, group_size=16), SparseGPT.at_level(0.5)):
        out = method.compress({"l": w}, {"l": _stats(x)})["l"].weight
        assert torch.isfinite(out).all()
        assert torch.all(out[:, 5] == 0)


# ---------------------------------------------------------------- SparseGPT


def _naive_obs_prune(w: torch.Tensor, hessian: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Sequential OBS: zero each column's pruned weights and update the later columns (float64)."""
    w = w.double().clone()
    hinv = torch.linalg.inv(hessian.double())
    for i in range(w.shape[1]):
        target = w[:, i] * keep[:, i]
        err = (w[:, i] - target) / hinv[i, i]
        w[:, i:] -= torch.outer(err, hinv[i, i:])
        w[:, i] = target
        hinv = hinv - torch.outer(hinv[:, i], hinv[i, :]) / hinv[i, i]
    return w


@pytest.mark.parametrize("sparsity", [0.1, 0.37, 0.5, 0.9])
def test_sparsegpt_prunes_exact_counts(sparsity: float) -> None:
    w = _weight()
    w[:, :4] = 1.0  # ties
    res = SparseGPT.at_level(sparsity, blocksize=24).compress({"l": w}, {"l": _stats(_inputs())})["l"]
    pruned = ~res.mask
    assert int(pruned.sum()) == round(sparsity * w.numel())
    for start in range(0, COLS, 24):
        block = pruned[:, start : start + 24]
        assert abs(int(block.sum()) - sparsity * block.numel()) <= 1
    assert torch.all(res.weight[pruned] == 0)


def test_sparsegpt_first_block_mask_matches_obs_saliency() -> None:
    x, w = _inputs(), _weight()
    stats = _stats(x)
    res = SparseGPT.at_level(0.5, blocksize=32).compress({"l": w}, {"l": stats})["l"]
    hessian, _ = damped_hessian(stats, 0.01)
    u = np.linalg.cholesky(np.linalg.inv(hessian.numpy())).T  # upper factor of H^-1, independently
    saliency = w[:, :32].double().numpy() ** 2 / np.diag(u)[:32] ** 2
    threshold = np.sort(saliency.ravel())[ROWS * 16 - 1]
    assert np.array_equal(res.mask[:, :32].numpy(), saliency > threshold)


@pytest.mark.parametrize(("sparsity", "m", "blocksize"), [(0.5, 4, 16), (0.75, 8, 16), (0.25, 4, 16), (0.5, 4, 6)])
def test_sparsegpt_nm_pattern_and_obs_update(sparsity: float, m: int, blocksize: int) -> None:
    x, w = _inputs(), _weight()
    stats = _stats(x)
    res = SparseGPT.at_level(sparsity, m=m, blocksize=blocksize).compress({"l": w}, {"l": stats})["l"]
    kept_per_group = res.mask.reshape(ROWS, COLS // m, m).sum(dim=2)
    assert torch.all(kept_per_group == round((1 - sparsity) * m))
    hessian, _ = damped_hessian(stats, 0.01)
    expected = _naive_obs_prune(w, hessian, res.mask)
    assert torch.allclose(res.weight.double(), expected, atol=2e-3)


def test_sparsegpt_beats_magnitude_at_half_and_2_4() -> None:
    x, w = _inputs(), _weight()
    stats = {"l": _stats(x)}
    k = w.numel() // 2
    magnitude = w.abs() > w.abs().flatten().kthvalue(k).values
    mag24 = w.abs().reshape(-1, 4).argsort(dim=1).argsort(dim=1).reshape(w.shape) >= 2
    for params, mag_mask in (({"sparsity": 0.5}, magnitude), ({"sparsity": 0.5, "m": 4}, mag24)):
        res = SparseGPT(SparseGPTParams(**params)).compress({"l": w}, stats)["l"]
        sparsegpt_error, magnitude_error = _output_error(x, w, res.weight * res.mask), _output_error(x, w, w * mag_mask)
        assert sparsegpt_error < 0.9 * magnitude_error, (params, sparsegpt_error, magnitude_error)


def test_sparsity_zero_prunes_nothing() -> None:
    w = _weight()
    res = SparseGPT.at_level(0.0).compress({"l": w}, {"l": _stats(_inputs())})["l"]
    assert res.mask.all() and torch.equal(res.weight, w)


# ---------------------------------------------------------------- shared OBS helpers


def test_inverse_cholesky_retries_with_extra_damping(caplog: pytest.LogCaptureFixture) -> None:
    hessian = torch.tensor([[1.0, 0.0], [0.0, -1e-3]], dtype=torch.float64)
    with caplog.at_level(logging.WARNING):
        u = inverse_cholesky(hessian, layer="toy")
    assert "toy" in caplog.text and "extra damping" in caplog.text
    assert torch.allclose(u.T @ u, torch.linalg.inv(hessian + 0.01 * 0.4995 * torch.eye(2, dtype=torch.float64)))
    with pytest.raises(torch.linalg.LinAlgError, match="toy"):
        inverse_cholesky(torch.tensor([[1.0, 0.0], [0.0, -10.0]], dtype=torch.float64), layer="toy")


def test_damped_hessian_marks_dead_columns() -> None:
    gram = torch.diag(torch.tensor([4.0, 0.0, 2.0]))
    hessian, dead = damped_hessian(LayerStats(gram=gram, tokens=2), 0.1)
    assert dead.tolist() == [False, True, False]
    mean = (4.0 + 1.0 + 2.0) / 3
    assert torch.allclose(torch.diagonal(hessian), torch.tensor([4.0, 1.0, 2.0], dtype=torch.float64) + 0.1 * mean)


# ---------------------------------------------------------------- contract


@pytest.mark.parametrize(
    "method",
    [RTN.at_level(3), GPTQ.at_level(3, act_order=True), SparseGPT.at_level(0.5), SparseGPT.at_level(0.5, m=4)],
    ids=repr,
)
def test_compress_does_not_mutate_inputs(method) -> None:
    w = _weight().to(torch.bfloat16)
    stats = _stats(_inputs())
    w_before, gram_before = w.clone(), stats.gram.clone()
    res = method.compress({"l": w}, {"l": stats})["l"]
    assert torch.equal(w, w_before) and torch.equal(stats.gram, gram_before)
    assert res.weight.dtype == torch.bfloat16 and res.weight.shape == w.shape


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda: RTNParams(bits=0), "got 0"),
        (lambda: RTNParams(bits=2.5), "got 2.5"),
        (lambda: RTNParams(bits=True), "got True"),
        (lambda: GPTQParams(bits=17), "got 17"),
        (lambda: GPTQParams(bits=4, group_size=0), "got 0"),
        (lambda: GPTQParams(bits=4, percdamp=0), "got 0"),
        (lambda: GPTQParams(bits=4, blocksize=2.0), "got 2.0"),
        (lambda: SparseGPTParams(sparsity=1.0), "got 1.0"),
        (lambda: SparseGPTParams(sparsity=-0.1), "got -0.1"),
        (lambda: SparseGPTParams(sparsity=0.3, m=4), "got sparsity 0.3"),
        (lambda: SparseGPTParams(sparsity=0.5, m=4, blocksize=0), "got 0"),
        (lambda: GPTQ.at_level(4, groupsize=64), "'groupsize'"),
    ],
)
def test_invalid_params_raise_config_error(make, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.")):
        make()


def test_group_size_not_dividing_names_layer_and_divisor() -> None:
    w = torch.zeros(4, 576)
    msg = "group size 128 does not divide in_features 576 of layer model.q_proj; use a divisor such as 64"
    with pytest.raises(ConfigError, match=re.escape(f"{msg} (--jd-methods 'rtn[group_size=64]')")):
        RTN.at_level(4, group_size=128).compress({"model.q_proj": w}, None)
    stats = {"model.q_proj": LayerStats(gram=torch.eye(576), tokens=1)}
    with pytest.raises(ConfigError, match=re.escape(f"{msg} (--jd-methods 'gptq[group_size=64]')")):
        GPTQ.at_level(4, group_size=128).compress({"model.q_proj": w}, stats)


def test_calibrated_methods_reject_missing_or_bad_stats() -> None:
    w = _weight()
    for method in (GPTQ.at_level(4), SparseGPT.at_level(0.5)):
        with pytest.raises(ConfigError, match="needs calibration statistics"):
            method.compress({"l": w}, None)
        with pytest.raises(ConfigError, match="no calibration statistics for layer l"):
            method.compress({"l": w}, {"other": _stats(_inputs())})
        with pytest.raises(ConfigError, match=r"expected \(64, 64\)"):
            method.compress({"l": w}, {"l": LayerStats(gram=torch.eye(3), tokens=5)})
    with pytest.raises(ConfigError, match="multiple of 8"):
        SparseGPT.at_level(0.5, m=8).compress({"l": _weight(cols=60)}, {"l": LayerStats(gram=torch.eye(60), tokens=5)})


def test_levels_and_registration() -> None:
    assert RTN.default_levels(BUDGETS["smoke"]) == GPTQ.default_levels(BUDGETS["smoke"]) == (8, 4, 3, 2)
    assert GPTQ.default_levels(BUDGETS["full"]) == (8, 7, 6, 5, 4, 3, 2)
    assert SparseGPT.default_levels(BUDGETS["smoke"]) == (0.0, 0.2, 0.4, 0.6)
    assert SparseGPT.default_levels(BUDGETS["full"]) == tuple(i / 10 for i in range(10))
    assert GPTQ.at_level(4.0).params.bits == 4 and isinstance(GPTQ.at_level(4.0).params.bits, int)
    assert GPTQ.at_level(3).level == 3.0 and SparseGPT.at_level(0.4, m=5).params.n == 3
    registered = {ep.name: ep for ep in entry_points(group="junkdna.methods")}
    for cls in (RTN, GPTQ, SparseGPT):
        assert registered[cls.name].load() is cls
        assert cls.family in ("pruning", "quantization")
