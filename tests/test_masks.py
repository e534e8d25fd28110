"""Mask enforcement: applied, held through optimizer steps, released, measured."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from junkdna_core.compress.masks import (
    apply_masks,
    held_masks,
    hold_masks,
    measure_sparsity,
    release_masks,
)
from junkdna_core.config.errors import ConfigError


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 4))


def _half_masks(net: nn.Sequential) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return {name: torch.rand(net.get_submodule(name).weight.shape, generator=g) > 0.5 for name in ("0", "2")}


def _train(net: nn.Module, steps: int = 5, **adamw) -> None:
    opt = torch.optim.AdamW(net.parameters(), lr=0.05, weight_decay=0.1, **adamw)
    g = torch.Generator().manual_seed(4)
    for _ in range(steps):
        x = torch.randn(32, 16, generator=g)
        loss = net(x).pow(2).mean() - net(x).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_held_mask_keeps_pruned_weights_zero_through_adamw_with_weight_decay():
    net = _net()
    masks = _half_masks(net)
    hold_masks(net, masks)
    _train(net)
    for name, mask in masks.items():
        weight = net.get_submodule(name).weight
        assert torch.all(weight[~mask] == 0)
        assert torch.count_nonzero(weight[mask]) == mask.sum()  # survivors trained, still non-zero
    released = release_masks(net)
    assert set(released) == set(masks)
    assert held_masks(net) == {}
    for name, mask in masks.items():
        assert isinstance(net.get_submodule(name).weight, nn.Parameter)
        assert torch.all(net.get_submodule(name).weight[~mask] == 0)


def test_released_mask_lets_pruned_weights_regrow():
    net = _net()
    masks = _half_masks(net)
    hold_masks(net, masks)
    release_masks(net)
    _train(net)
    for name, mask in masks.items():
        assert torch.count_nonzero(net.get_submodule(name).weight[~mask]) > 0


def test_applied_mask_zeroes_once_and_training_regrows():
    net = _net()
    masks = _half_masks(net)
    apply_masks(net, masks)
    report = measure_sparsity(net, masks)
    expected = sum(int((~m).sum()) for m in masks.values())
    assert report.zeros == expected
    assert report.overall == pytest.approx(expected / sum(m.numel() for m in masks.values()))
    _train(net)
    assert measure_sparsity(net, masks).zeros < expected


def test_mask_shape_mismatch_and_double_hold_are_errors():
    net = _net()
    with pytest.raises(ConfigError, match="shape"):
        apply_masks(net, {"0": torch.ones(3, 3, dtype=torch.bool)})
    with pytest.raises(ConfigError, match="no module named"):
        apply_masks(net, {"9": torch.ones(3, 3, dtype=torch.bool)})
    masks = _half_masks(net)
    hold_masks(net, masks)
    with pytest.raises(ConfigError, match="already holds"):
        hold_masks(net, masks)
