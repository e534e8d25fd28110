"""Property tests of mask selection and the data-free pruning methods (magnitude, N:M, random, Wanda)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from junkdna_core.compress import nm as nm_module
from junkdna_core.compress import wanda as wanda_module
from junkdna_core.compress.base import LayerStats
from junkdna_core.compress.magnitude import Magnitude, MagnitudeParams
from junkdna_core.compress.nm import NMMagnitude, NMParams
from junkdna_core.compress.random_prune import RandomParams, RandomPrune
from junkdna_core.compress.selection import global_masks, layer_mask, nm_mask, row_mask
from junkdna_core.compress.wanda import Wanda, WandaParams
from junkdna_core.config.budgets import BUDGETS, get_budget
from junkdna_core.config.errors import ConfigError

torch.set_num_threads(1)

PROPERTY = settings(max_examples=40, deadline=None)
SPARSITIES = st.sampled_from([0.0, 0.1, 0.25, 0.3, 0.5, 0.7, 0.9, 0.99])
TIED = st.integers(-2, 2).map(float)  # heavy ties: five distinct values
# Away from the float32 underflow range, where scaling by a power of two stops being exact.
SPREAD = st.one_of(st.just(0.0), st.floats(2**-20, 3, width=32), st.floats(-3, -(2**-20), width=32))


@st.composite
def matrices(draw: st.DrawFn, values: st.SearchStrategy[float] | None = None) -> torch.Tensor:
    """A small float32 (rows, cols) matrix, cols a multiple of 8, with tied or spread values."""
    rows = draw(st.integers(1, 6))
    cols = draw(st.sampled_from([8, 16, 24]))
    elements = values if values is not None else draw(st.sampled_from([TIED, SPREAD]))
    data = draw(st.lists(elements, min_size=rows * cols, max_size=rows * cols))
    return torch.tensor(data, dtype=torch.float32).reshape(rows, cols)


@st.composite
def weight_dicts(draw: st.DrawFn) -> dict[str, torch.Tensor]:
    """One to three named matrices, independently tied or spread."""
    names = draw(st.lists(st.sampled_from(["q", "k", "v", "up", "down"]), min_size=1, max_size=3, unique=True))
    return {name: draw(matrices()) for name in names}


def pruned_count(mask: torch.Tensor) -> int:
    return int((~mask).sum())


def assert_kept_largest(scores: torch.Tensor, mask: torch.Tensor) -> None:
    """Every kept score is >= every pruned score (checked with numpy, independently of the selection code)."""
    values = scores.numpy().reshape(-1)
    keep = mask.numpy().reshape(-1)
    if keep.all() or not keep.any():
        return
    assert values[keep].min() >= values[~keep].max()


def equal_norm_stats(weights: dict[str, torch.Tensor], scale: float) -> dict[str, LayerStats]:
    """Calibration statistics whose input norms all equal ``scale`` (a power of two: exact products)."""
    return {
        name: LayerStats(gram=torch.eye(w.shape[1]) * scale**2, tokens=1) for name, w in weights.items()
    }


# --- selection functions ------------------------------------------------------------------


@PROPERTY
@given(scores=matrices(), sparsity=SPARSITIES)
def test_layer_mask_prunes_exact_count_of_lowest(scores: torch.Tensor, sparsity: float) -> None:
    mask = layer_mask(scores, sparsity)
    assert mask.dtype == torch.bool and mask.shape == scores.shape
    assert pruned_count(mask) == round(sparsity * scores.numel())
    assert_kept_largest(scores, mask)


@PROPERTY
@given(scores=matrices(), sparsity=SPARSITIES)
def test_row_mask_prunes_exact_count_of_lowest_per_row(scores: torch.Tensor, sparsity: float) -> None:
    mask = row_mask(scores, sparsity)
    expected = round(sparsity * scores.shape[1])
    for row in range(scores.shape[0]):
        assert pruned_count(mask[row]) == expected
        assert_kept_largest(scores[row], mask[row])


@PROPERTY
@given(scores=matrices(), nm=st.sampled_from([(1, 1), (1, 2), (2, 4), (3, 4), (4, 8), (7, 8), (1, 8), (8, 8)]))
def test_nm_mask_keeps_n_largest_of_every_group(scores: torch.Tensor, nm: tuple[int, int]) -> None:
    n, m = nm
    mask = nm_mask(scores, n, m)
    groups, group_masks = scores.reshape(-1, m), mask.reshape(-1, m)
    assert (group_masks.sum(dim=1) == n).all()
    for group, group_mask in zip(groups, group_masks, strict=True):
        assert_kept_largest(group, group_mask)


@PROPERTY
@given(weights=weight_dicts(), sparsity=SPARSITIES)
def test_global_masks_prune_exact_total_with_one_threshold(
    weights: dict[str, torch.Tensor], sparsity: float
) -> None:
    masks = global_masks(weights, sparsity)
    assert list(masks) == list(weights)
    total = sum(w.numel() for w in weights.values())
    assert sum(pruned_count(m) for m in masks.values()) == round(sparsity * total)
    all_scores = torch.cat([w.reshape(-1) for w in weights.values()])
    all_masks = torch.cat([masks[name].reshape(-1) for name in weights])
    assert_kept_largest(all_scores, all_masks)


@PROPERTY
@given(weights=weight_dicts(), sparsity=SPARSITIES)
def test_global_masks_do_not_depend_on_mapping_order(weights: dict[str, torch.Tensor], sparsity: float) -> None:
    forward = global_masks(weights, sparsity)
    backward = global_masks(dict(reversed(list(weights.items()))), sparsity)
    assert all(torch.equal(forward[name], backward[name]) for name in weights)


def test_all_equal_scores_prune_lowest_indices_first() -> None:
    scores = torch.zeros(2, 8)
    assert pruned_count(layer_mask(scores, 0.3)) == round(0.3 * 16)
    assert torch.equal(layer_mask(scores, 0.25).reshape(-1), torch.arange(16) >= 4)
    assert torch.equal(row_mask(scores, 0.25), (torch.arange(8) >= 2).expand(2, 8))
    assert torch.equal(nm_mask(scores, 3, 4), torch.tensor([False, True, True, True] * 4).reshape(2, 8))


def test_zero_sparsity_keeps_everything() -> None:
    scores = torch.randn(3, 8)
    assert layer_mask(scores, 0.0).all() and row_mask(scores, 0.0).all()
    assert all(m.all() for m in global_masks({"a": scores, "b": -scores}, 0.0).values())


def test_float64_scores_are_not_rounded_to_float32() -> None:
    close = torch.tensor([1.0 + 1e-12, 1.0], dtype=torch.float64)
    assert torch.equal(layer_mask(close, 0.5), torch.tensor([True, False]))
    assert torch.equal(global_masks({"a": close}, 0.5)["a"], torch.tensor([True, False]))


# --- methods ------------------------------------------------------------------------------


@PROPERTY
@given(weights=weight_dicts(), sparsity=SPARSITIES, scope=st.sampled_from(["row", "layer", "global"]))
def test_magnitude_exact_sparsity_and_keeps_largest(
    weights: dict[str, torch.Tensor], sparsity: float, scope: str
) -> None:
    results = Magnitude(MagnitudeParams(sparsity, scope)).compress(weights, None)
    assert list(results) == list(weights)
    masks = {name: results[name].mask for name in weights}
    assert all(r.weight is None for r in results.values())
    if scope == "global":
        total = sum(w.numel() for w in weights.values())
        assert sum(pruned_count(m) for m in masks.values()) == round(sparsity * total)
        assert_kept_largest(
            torch.cat([w.abs().reshape(-1) for w in weights.values()]),
            torch.cat([masks[name].reshape(-1) for name in weights]),
        )
        return
    for name, w in weights.items():
        units = list(zip(w.abs(), masks[name], strict=True)) if scope == "row" else [(w.abs(), masks[name])]
        for scores, mask in units:
            assert pruned_count(mask) == round(sparsity * scores.numel())
            assert_kept_largest(scores, mask)


def test_global_magnitude_differs_per_layer() -> None:
    weights = {"big": torch.full((2, 8), 3.0), "small": torch.full((2, 8), 0.5)}
    masks = {name: r.mask for name, r in Magnitude.at_level(0.5, scope="global").compress(weights, None).items()}
    assert masks["big"].all() and not masks["small"].any()
    layer = Magnitude.at_level(0.5).compress(weights, None)
    assert all(pruned_count(r.mask) == 8 for r in layer.values())


@PROPERTY
@given(weights=weight_dicts(), n=st.integers(1, 8))
def test_nm_magnitude_pattern_exact_in_every_group(weights: dict[str, torch.Tensor], n: int) -> None:
    results = NMMagnitude(NMParams(n, 8)).compress(weights, None)
    for name, w in weights.items():
        groups, group_masks = w.abs().reshape(-1, 8), results[name].mask.reshape(-1, 8)
        assert (group_masks.sum(dim=1) == n).all()
        for group, group_mask in zip(groups, group_masks, strict=True):
            assert_kept_largest(group, group_mask)


def test_nm_levels_map_to_n_of_m() -> None:
    assert NMMagnitude.at_level(0.875).params == NMParams(1, 8)
    assert NMMagnitude.at_level(0.5, m=4).params == NMParams(2, 4)
    assert NMParams(2, 4).sparsity == 0.5
    full = NMMagnitude.default_levels(BUDGETS["full"])
    assert [NMMagnitude.at_level(s).params.n for s in full] == [7, 6, 5, 4, 3, 2, 1]
    assert NMMagnitude.default_levels(BUDGETS["smoke"]) == (0.25, 0.5, 0.75)
    assert NMMagnitude.at_level(0.25).level == 0.25


@PROPERTY
@given(weights=weight_dicts(), sparsity=SPARSITIES, seed=st.integers(0, 2**32 - 1))
def test_random_prune_exact_and_deterministic(weights: dict[str, torch.Tensor], sparsity: float, seed: int) -> None:
    method = RandomPrune(RandomParams(sparsity, seed))
    first = method.compress(weights, None)
    reordered = method.compress(dict(reversed(list(weights.items()))), None)
    for name, w in weights.items():
        assert pruned_count(first[name].mask) == round(sparsity * w.numel())
        assert torch.equal(first[name].mask, reordered[name].mask)
        alone = method.compress({name: w}, None)[name].mask
        assert torch.equal(first[name].mask, alone)


def test_random_prune_depends_on_seed_and_layer_name() -> None:
    w = torch.randn(16, 32)
    masks = [RandomPrune.at_level(0.5, seed=s).compress({"a": w}, None)["a"].mask for s in (0, 1)]
    assert not torch.equal(masks[0], masks[1])
    by_name = RandomPrune.at_level(0.5).compress({"a": w, "b": w}, None)
    assert not torch.equal(by_name["a"].mask, by_name["b"].mask)


def test_random_prune_is_roughly_uniform() -> None:
    # 400 layers at sparsity 0.25: each position is pruned ~100 times (binomial sd ~8.7).
    w = torch.zeros(4, 8)
    masks = RandomPrune.at_level(0.25, seed=3).compress({f"l{i}": w for i in range(400)}, None)
    pruned_per_position = sum((~r.mask).int() for r in masks.values())
    assert int(pruned_per_position.min()) > 60 and int(pruned_per_position.max()) < 140


@PROPERTY
@given(weights=weight_dicts(), sparsity=SPARSITIES, scale=st.sampled_from([0.25, 1.0, 4.0]))
def test_wanda_equals_row_magnitude_when_input_norms_are_equal(
    weights: dict[str, torch.Tensor], sparsity: float, scale: float
) -> None:
    wanda = Wanda(WandaParams(sparsity)).compress(weights, equal_norm_stats(weights, scale))
    magnitude = Magnitude(MagnitudeParams(sparsity, "row")).compress(weights, None)
    assert all(torch.equal(wanda[name].mask, magnitude[name].mask) for name in weights)


@PROPERTY
@given(weights=weight_dicts(), sparsity=SPARSITIES, data=st.data())
def test_wanda_keeps_largest_activation_weighted_scores(
    weights: dict[str, torch.Tensor], sparsity: float, data: st.DataObject
) -> None:
    stats = {}
    for name, w in weights.items():
        norms = data.draw(st.lists(st.floats(0, 4, width=32), min_size=w.shape[1], max_size=w.shape[1]))
        stats[name] = LayerStats(gram=torch.diag(torch.tensor(norms) ** 2), tokens=1)
    results = Wanda.at_level(sparsity).compress(weights, stats)
    for name, w in weights.items():
        scores = w.abs() * stats[name].input_norms
        for row_scores, row_keep in zip(scores, results[name].mask, strict=True):
            assert pruned_count(row_keep) == round(sparsity * w.shape[1])
            assert_kept_largest(row_scores, row_keep)


def test_wanda_uses_input_norms() -> None:
    w = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    stats = {"a": LayerStats(gram=torch.diag(torch.tensor([100.0, 1.0, 1.0, 0.01])), tokens=10)}
    mask = Wanda.at_level(0.5).compress({"a": w}, stats)["a"].mask
    # scores |w| * sqrt(diag): 10, 2, 3, 0.4 -> keep columns 0 and 2 (magnitude would keep 2 and 3)
    assert mask.tolist() == [[True, False, True, False]]


@PROPERTY
@given(weights=weight_dicts(), n=st.integers(1, 4))
def test_wanda_nm_pattern_exact(weights: dict[str, torch.Tensor], n: int) -> None:
    method = Wanda.at_level(1 - n / 4, m=4)
    assert method.params.n == n
    results = method.compress(weights, equal_norm_stats(weights, 1.0))
    for name, weight in weights.items():
        assert (results[name].mask.reshape(-1, 4).sum(dim=1) == n).all()
        assert torch.equal(results[name].mask, nm_mask(weight.abs(), n, 4))


@pytest.mark.parametrize(
    "method",
    [
        Magnitude.at_level(0.5),
        Magnitude.at_level(0.5, scope="row"),
        Magnitude.at_level(0.5, scope="global"),
        NMMagnitude.at_level(0.5, m=4),
        RandomPrune.at_level(0.5),
        Wanda.at_level(0.5),
        Wanda.at_level(0.5, m=4),
    ],
    ids=repr,
)
def test_compress_does_not_mutate_inputs(method) -> None:
    torch.manual_seed(0)
    weights = {"a": torch.randn(4, 8), "b": torch.randn(3, 16).to(torch.bfloat16)}
    stats = {name: LayerStats(gram=torch.rand(w.shape[1]).diag(), tokens=4) for name, w in weights.items()}
    before_w = {name: w.clone() for name, w in weights.items()}
    before_s = {name: s.gram.clone() for name, s in stats.items()}
    results = method.compress(weights, stats)
    assert all(torch.equal(weights[n], before_w[n]) for n in weights)
    assert all(torch.equal(stats[n].gram, before_s[n]) for n in stats)
    assert all(results[n].mask.shape == weights[n].shape for n in weights)


# --- validation -------------------------------------------------------------------------------

BAD_SPARSITIES = [-0.1, 1.0, math.nan, "0.5", True, 1.5, None]
SPARSITY_CONSTRUCTORS = {
    "MagnitudeParams": lambda s: MagnitudeParams(s),
    "Magnitude.at_level": lambda s: Magnitude.at_level(s, scope="global"),
    "RandomParams": lambda s: RandomParams(s),
    "WandaParams": lambda s: WandaParams(s),
    "Wanda.at_level(m=8)": lambda s: Wanda.at_level(s, m=8),
    "NMMagnitude.at_level": lambda s: NMMagnitude.at_level(s),
    "layer_mask": lambda s: layer_mask(torch.zeros(2, 8), s),
    "row_mask": lambda s: row_mask(torch.zeros(2, 8), s),
    "global_masks": lambda s: global_masks({"a": torch.zeros(2, 8)}, s),
}


@pytest.mark.parametrize("make", SPARSITY_CONSTRUCTORS.values(), ids=SPARSITY_CONSTRUCTORS.keys())
@pytest.mark.parametrize("sparsity", BAD_SPARSITIES, ids=repr)
def test_invalid_sparsity_is_config_error_naming_value(make, sparsity) -> None:
    with pytest.raises(ConfigError, match="sparsity") as info:
        make(sparsity)
    assert str(sparsity) in str(info.value)


@pytest.mark.parametrize(
    ("make", "fragments"),
    [
        (lambda: NMParams(5, 4), ["1 <= N <= M", "N=5", "M=4"]),
        (lambda: NMParams(0, 4), ["N=0", "M=4"]),
        (lambda: NMParams(-1, 4), ["N=-1"]),
        (lambda: NMParams(1, 0), ["M=0"]),
        (lambda: NMParams(True, 4), ["N=True"]),
        (lambda: NMParams(2, 4.0), ["M=4.0"]),
        (lambda: nm_mask(torch.zeros(2, 8), 9, 8), ["N=9", "M=8"]),
        (lambda: NMMagnitude.at_level(0.3), ["0.3", "0.125", "0.875"]),
        (lambda: NMMagnitude.at_level(0.5, m=3), ["0.5", "M=3"]),
        (lambda: NMMagnitude.at_level(0.5, n=4), ["'n'"]),
        (lambda: WandaParams(0.3, m=8), ["0.3", "M=8"]),
        (lambda: WandaParams(0.5, m=0), ["M=0"]),
        (lambda: WandaParams(0.5, m=True), ["M=True"]),
        (lambda: MagnitudeParams(0.5, scope="block"), ["'block'", "'row'", "'global'"]),
        (lambda: Magnitude.at_level(0.5, scpoe="row"), ["'scpoe'", "scope"]),
        (lambda: RandomParams(0.5, seed=-1), ["-1"]),
        (lambda: RandomParams(0.5, seed=2**32), [str(2**32)]),
        (lambda: RandomParams(0.5, seed=1.0), ["1.0"]),
        (lambda: get_budget("huge"), ["'huge'", "smoke", "full"]),
        (lambda: row_mask(torch.zeros(8), 0.5), ["(8,)"]),
    ],
)
def test_invalid_parameter_is_config_error_naming_value(make, fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        make()
    assert all(f in str(info.value) for f in fragments), str(info.value)


def test_nm_shape_mismatch_raises_before_any_mask(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(nm_module, "nm_mask", lambda *a: calls.append("nm_mask"))
    weights = {"ok": torch.zeros(3, 8), "bad": torch.zeros(3, 6)}
    with pytest.raises(ConfigError, match=r"M=4.*\(3, 6\)"):
        NMMagnitude(NMParams(2, 4)).compress(weights, None)
    assert calls == []


def test_wanda_shape_and_stats_errors_raise_before_any_mask(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(wanda_module, "nm_mask", lambda *a: calls.append("nm_mask"))
    monkeypatch.setattr(wanda_module, "row_mask", lambda *a: calls.append("row_mask"))
    weights = {"ok": torch.zeros(3, 8), "bad": torch.zeros(3, 6)}
    stats = equal_norm_stats(weights, 1.0)
    with pytest.raises(ConfigError, match=r"\(3, 6\)"):
        Wanda.at_level(0.5, m=4).compress(weights, stats)
    with pytest.raises(ConfigError, match="'bad'"):
        Wanda.at_level(0.5).compress(weights, {"ok": stats["ok"]})
    with pytest.raises(ConfigError, match="calibration"):
        Wanda.at_level(0.5).compress(weights, None)
    with pytest.raises(ConfigError, match=r"\(8,\).*\(3, 6\)"):
        Wanda.at_level(0.5).compress({"bad": weights["bad"]}, {"bad": stats["ok"]})
    assert calls == []


@pytest.mark.parametrize("method", [Magnitude, RandomPrune, Wanda])
def test_sparsity_levels(method) -> None:
    assert method.default_levels(BUDGETS["full"]) == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    assert method.default_levels(BUDGETS["smoke"]) == (0.0, 0.2, 0.4, 0.6)
    assert all(method.at_level(level).level == level for level in method.default_levels(BUDGETS["full"]))


def test_describe_identifies_configuration() -> None:
    assert Magnitude.at_level(0.3, scope="row").describe() == {
        "method": "magnitude",
        "version": "1",
        "params": {"sparsity": 0.3, "scope": "row"},
    }
    assert NMMagnitude.at_level(0.75).describe()["params"] == {"n": 2, "m": 8}
    assert np.isclose(Wanda.at_level(0.75, m=8).level, 0.75)
