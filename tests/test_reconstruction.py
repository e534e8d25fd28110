"""Layer reconstruction on a real layer with real inputs: the calibrated methods must earn their keep.

Inputs of two linears of a middle SmolLM2 block are caught on real English
text. Statistics come from calibration passages (CoQA, DROP); the output error
``||X W^T - X W'^T|| / ||X W^T||`` is measured on held-out passages (SQuAD), so a method
that merely fits its calibration tokens gains nothing.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
import torch

from junkdna_core.compress.base import LayerStats
from junkdna_core.compress.gptq import GPTQ
from junkdna_core.compress.rtn import RTN
from junkdna_core.compress.selection import layer_mask, nm_mask
from junkdna_core.compress.sparsegpt import SparseGPT
from junkdna_core.compress.wanda import Wanda
from junkdna_core.data.texts import calibration_texts, heldout_texts

CALIBRATION_PASSAGES, HELD_OUT_PASSAGES = 24, 8
BLOCK = 15  # of 30
LAYERS = ("self_attn.q_proj", "mlp.down_proj")


@dataclass(frozen=True)
class RealLayer:
    """One linear layer's weight, its calibration statistics and held-out inputs."""

    name: str
    weight: torch.Tensor
    stats: LayerStats
    held_out: torch.Tensor

    def error(self, weight: torch.Tensor) -> float:
        """Relative output error of ``weight`` on the held-out inputs."""
        reference = self.held_out @ self.weight.T
        return float(torch.linalg.norm(reference - self.held_out @ weight.T) / torch.linalg.norm(reference))


class _Done(Exception):
    """Raised by the last hook: nothing after the caught block needs computing."""


def _catch_inputs(model: torch.nn.Module, ids: list[torch.Tensor]) -> dict[str, list[torch.Tensor]]:
    """Per target layer, the (tokens, in_features) inputs of every passage."""
    block = model.model.layers[BLOCK]
    caught: dict[str, list[torch.Tensor]] = {name: [] for name in LAYERS}

    def hook(name: str):
        def record(_module: torch.nn.Module, args: tuple) -> None:
            caught[name].append(args[0].reshape(-1, args[0].shape[-1]).detach().clone())
            if name == LAYERS[-1]:
                raise _Done

        return record

    handles = [block.get_submodule(name).register_forward_pre_hook(hook(name)) for name in LAYERS]
    try:
        with torch.no_grad():
            for passage in ids:
                try:
                    model(passage)
                except _Done:
                    pass
    finally:
        for handle in handles:
            handle.remove()
    return caught


@pytest.fixture(scope="module")
def real_layers(smollm2) -> dict[str, RealLayer]:
    """q_proj and down_proj of SmolLM2 block 15: statistics from calibration texts, errors on held-out texts."""
    calibration_texts_, _ = calibration_texts(CALIBRATION_PASSAGES)
    held_out_texts, _ = heldout_texts(HELD_OUT_PASSAGES)
    ids = [smollm2.tokenizer(text, return_tensors="pt").input_ids[:, :512]
           for text in calibration_texts_ + held_out_texts]
    caught = _catch_inputs(smollm2.model, ids)
    layers = {}
    for name, inputs in caught.items():
        calibration = torch.cat(inputs[:CALIBRATION_PASSAGES])
        layers[name] = RealLayer(
            name=name,
            weight=smollm2.model.model.layers[BLOCK].get_submodule(name).weight.detach().clone(),
            stats=LayerStats(gram=calibration.T @ calibration, tokens=calibration.shape[0]),
            held_out=torch.cat(inputs[CALIBRATION_PASSAGES:]),
        )
    return layers


@pytest.fixture(params=LAYERS)
def layer(request: pytest.FixtureRequest, real_layers: dict[str, RealLayer]) -> RealLayer:
    return real_layers[request.param]


def _pruned(method, layer: RealLayer) -> torch.Tensor:
    result = method.compress({layer.name: layer.weight}, {layer.name: layer.stats})[layer.name]
    return result.mask * (layer.weight if result.weight is None else result.weight)


def _quantized(method, layer: RealLayer) -> torch.Tensor:
    return method.compress({layer.name: layer.weight}, {layer.name: layer.stats})[layer.name].weight


def test_sparsegpt_beats_wanda_beats_magnitude_at_half(layer: RealLayer) -> None:
    sparsegpt = layer.error(_pruned(SparseGPT.at_level(0.5), layer))
    wanda = layer.error(_pruned(Wanda.at_level(0.5), layer))
    magnitude = layer.error(layer.weight * layer_mask(layer.weight.abs(), 0.5))
    assert sparsegpt < wanda < magnitude, (sparsegpt, wanda, magnitude)


def test_sparsegpt_2_4_beats_magnitude_2_4(layer: RealLayer) -> None:
    sparsegpt = layer.error(_pruned(SparseGPT.at_level(0.5, m=4), layer))
    magnitude = layer.error(layer.weight * nm_mask(layer.weight.abs(), 2, 4))
    assert sparsegpt < magnitude, (sparsegpt, magnitude)


@pytest.mark.parametrize("bits", [4, 3])
def test_gptq_beats_rtn(layer: RealLayer, bits: int) -> None:
    gptq = layer.error(_quantized(GPTQ.at_level(bits, group_size=64), layer))
    rtn = layer.error(_quantized(RTN.at_level(bits, group_size=64), layer))
    assert gptq < rtn, (gptq, rtn)


def test_gptq_error_falls_as_bits_grow(layer: RealLayer) -> None:
    errors = [layer.error(_quantized(GPTQ.at_level(bits), layer)) for bits in (2, 3, 4, 8)]
    assert all(a > b for a, b in itertools.pairwise(errors)), errors
