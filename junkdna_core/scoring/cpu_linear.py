"""oneDNN matrix products for the float32 linear layers of a model run for inference on a CPU.

PyTorch computes a float32 ``nn.Linear`` on a CPU with the BLAS it was built with (MKL on x86); its own
oneDNN library (the kernels ``torch.compile`` calls) is faster at the shapes language models score:
with the weights reordered once into oneDNN's blocked layout, SmolLM2-135M's decoder projections ran 9-17%
and its vocabulary head (576 -> 49152 over about 100 rows) 50% faster on a 2-core AMD EPYC (Zen 4) at one
thread, and multiple-choice scoring about 1.1 times as fast (``benchmarks/perf/scoring_vs_lmeval.py``). The
products equal the BLAS's up to float rounding (log-likelihoods within about 1e-4), which is why the scorer's
version counts this change. A reordered weight is kept while the weight lives and is unchanged (the same
storage at the same version): one more copy of the linear weights in memory.

Only layers that are exactly ``nn.Linear`` with float32 weights on the CPU and no forward of their own
(a parametrization, accelerate's offload hooks, a plugin's subclass) are switched, and only while the
context is open; any other layer, device or dtype computes as before. Where oneDNN is missing (a build
without it, an unsupported CPU) nothing is switched.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parametrize
from torch.utils.weak import WeakIdKeyDictionary

__all__ = ["onednn_available", "onednn_linears"]


def _product(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` through oneDNN, for float32 CPU tensors of any leading shape."""
    rows = x.reshape(-1, x.shape[-1])
    out = torch.ops.mkldnn._linear_pointwise(rows, weight, bias, "none", [], "")
    return out.reshape(*x.shape[:-1], weight.shape[0])


@functools.cache
def onednn_available() -> bool:
    """True when this PyTorch build computes a float32 linear product through oneDNN on this CPU (checked
    once per process against ``F.linear``)."""
    ops = ("_linear_pointwise", "_reorder_linear_weight")
    if not torch.backends.mkldnn.is_available() or not all(hasattr(torch.ops.mkldnn, op) for op in ops):
        return False
    generator = torch.Generator().manual_seed(0)
    x, weight, bias = (torch.randn(*shape, generator=generator) for shape in ((3, 2, 8), (5, 8), (5,)))
    try:
        with torch.inference_mode():
            reordered = torch.ops.mkldnn._reorder_linear_weight(weight, None)
            return torch.allclose(_product(x, reordered, bias), F.linear(x, weight, bias), atol=1e-5)
    except (RuntimeError, NotImplementedError):  # an op this CPU or build cannot run
        return False


def _switchable(module: nn.Module) -> bool:
    weight, bias = getattr(module, "weight", None), getattr(module, "bias", None)
    return (
        type(module) is nn.Linear
        and "forward" not in vars(module)
        and not parametrize.is_parametrized(module)
        and type(weight) in (torch.Tensor, nn.Parameter)
        and weight.dtype == torch.float32 and weight.device.type == "cpu"
        and (bias is None or (bias.dtype == torch.float32 and bias.device.type == "cpu"))
    )


_REORDERED = WeakIdKeyDictionary()  # weight tensor -> ((data pointer, version), reordered weight)


def _reordered(weight: torch.Tensor) -> torch.Tensor:
    """``weight`` in oneDNN's layout, reordered again only when its storage or version changed since (kept per
    weight tensor, so a tied output layer shares the embedding's copy)."""
    if weight.is_inference():  # created under inference mode: no version counter to tell a change by
        return weight
    state = (weight.data_ptr(), weight._version)
    kept = _REORDERED.get(weight)
    if kept is None or kept[0] != state:
        kept = state, torch.ops.mkldnn._reorder_linear_weight(weight.detach(), None)
        _REORDERED[weight] = kept
    return kept[1]


def _forward(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    if x.dtype != torch.float32 or x.device.type != "cpu" or x.numel() == 0:
        return F.linear(x, layer.weight, layer.bias)
    return _product(x, _reordered(layer.weight), layer.bias)


@contextlib.contextmanager
def onednn_linears(model: nn.Module) -> Iterator[int]:
    """Within the context, ``model``'s plain float32 CPU linear layers multiply through oneDNN (for inference:
    the product has no gradient); yields how many were switched. On leaving, every layer is as before."""
    layers = [m for m in model.modules() if _switchable(m)] if onednn_available() else []
    for layer in layers:
        layer.forward = functools.partial(_forward, layer)  # an instance attribute shadows nn.Linear.forward
    try:
        yield len(layers)
    finally:
        for layer in layers:
            vars(layer).pop("forward", None)
