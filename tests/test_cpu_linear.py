"""oneDNN linear products during inference: which layers switch, that they equal nn.Linear, that leaving restores."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from junkdna_core.scoring import cpu_linear
from junkdna_core.scoring.cpu_linear import onednn_available, onednn_linears

needs_onednn = pytest.mark.skipif(not onednn_available(), reason="this PyTorch build has no oneDNN linear product")


class _Halved(nn.Module):
    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight / 2


class _Subclass(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) + 1


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 24), nn.GELU(), nn.Linear(24, 8, bias=False))


@needs_onednn
def test_switched_layers_compute_what_nn_linear_computes():
    model = _model()
    x = torch.randn(3, 5, 16)
    with torch.inference_mode():
        expected = model(x)
        with onednn_linears(model) as switched:
            got = model(x)
            single = model(x[:1, :1])  # one row: the product's other kernel
    assert switched == 2
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(single, expected[:1, :1], rtol=1e-5, atol=1e-5)
    assert all("forward" not in vars(m) for m in model.modules())


@needs_onednn
def test_a_weight_changed_in_place_is_reordered_again():
    model = _model()
    x = torch.randn(4, 16)
    with torch.inference_mode(), onednn_linears(model):
        before = model(x)
    with torch.no_grad():
        model[0].weight.mul_(-1)
    with torch.inference_mode():
        expected = model(x)
        with onednn_linears(model):
            after = model(x)
    torch.testing.assert_close(after, expected, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(after, before)


@needs_onednn
def test_a_replaced_weight_is_not_served_from_the_old_one():
    layer = nn.Linear(8, 8)
    x = torch.randn(3, 8)
    with torch.inference_mode(), onednn_linears(layer):
        layer(x)
    layer.weight = nn.Parameter(torch.randn(8, 8))  # a new tensor, possibly at the freed one's address
    with torch.inference_mode():
        expected = layer(x)
        with onednn_linears(layer):
            got = layer(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@needs_onednn
def test_layers_with_their_own_forward_or_another_dtype_are_left_alone():
    torch.manual_seed(0)
    hooked, sub, half, plain, param = (nn.Linear(8, 8), _Subclass(8, 8), nn.Linear(8, 8).to(torch.bfloat16),
                                       nn.Linear(8, 8), nn.Linear(8, 8))
    hooked.forward = hooked.forward  # as accelerate's hooks do: an instance attribute of its own
    parametrize.register_parametrization(param, "weight", _Halved())
    model = nn.ModuleList([hooked, sub, half, plain, param])
    with onednn_linears(model) as switched:
        assert switched == 1
        assert "forward" in vars(plain) and vars(hooked)["forward"] is not vars(plain)["forward"]
    assert "forward" not in vars(plain) and "forward" in vars(hooked)


@needs_onednn
def test_inputs_of_another_dtype_or_empty_take_nn_linear(monkeypatch):
    def reached(*args):
        raise AssertionError("the oneDNN product was called")

    monkeypatch.setattr(cpu_linear, "_product", reached)
    model = nn.Linear(8, 4)
    empty = torch.randn(0, 8)
    with torch.inference_mode(), onednn_linears(model):
        assert model(empty).shape == (0, 4)
        with pytest.raises(RuntimeError, match="dtype"):
            model(torch.randn(2, 8, dtype=torch.float64))  # F.linear's own error: float64 input, float32 weight


def test_without_onednn_nothing_is_switched(monkeypatch):
    monkeypatch.setattr(cpu_linear, "onednn_available", lambda: False)
    model = _model()
    with onednn_linears(model) as switched:
        assert switched == 0
        assert all("forward" not in vars(m) for m in model.modules())


@needs_onednn
def test_leaving_on_an_error_restores_every_layer():
    model = _model()
    with pytest.raises(ValueError), onednn_linears(model):
        raise ValueError("scoring failed")
    assert all("forward" not in vars(m) for m in model.modules())


def test_a_build_without_onednn_is_detected(monkeypatch):
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    onednn_available.cache_clear()
    try:
        assert not onednn_available()
    finally:
        onednn_available.cache_clear()
