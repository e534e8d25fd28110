"""The on-disk format of a compressed model: what compression changed, layer by layer, in one safetensors file.

Every target weight is stored in ``(out_features, in_features)`` layout in the smallest form
that reloads it exactly, under tensor names that follow compressed-tensors (the format
llm-compressor writes and vLLM loads):

=================  ==========================================================================
form               tensors (``<name>`` is the module name)
=================  ==========================================================================
(unchanged)        none: the layer is the dense model's
``bitmask``        ``<name>.weight.bitmask``: the keep-mask, 1 bit per weight (the weight is the
                   dense weight times the mask: magnitude, N:M, random, Wanda)
``sparse-bitmask`` ``.weight.bitmask`` and ``.weight.compressed``: the kept values in the model's
                   dtype, row-major (SparseGPT's updated survivors)
``pack-quantized`` ``.weight_packed`` (int32, codes packed along rows), ``.weight_scale``,
                   ``.weight_zero_point`` (codes packed along columns) and ``.weight_shape``,
                   as compressed-tensors' pack-quantized; ``.weight.bitmask`` too when a mask
                   also holds (codes offset by ``2**(bits-1)`` are compressed-tensors' signed ones)
``low-rank``       ``.weight_left`` and ``.weight_right`` (float32 factors), when smaller than
                   the dense weight
``dense``          ``.weight`` in the model's dtype (anything else a method returned)
=================  ==========================================================================

The file's header metadata (one key, ``junkdna``, a JSON document) says, per layer, its form, shape, dtype, code bits and whether
the module stores its weight transposed (GPT-2's Conv1D). Loading decodes every layer on the
CPU, where the same artifact gives the same weights on any machine, and writes it into a copy
of the dense model: values equal the compressed model that was built (a pruned weight that
was ``-0.0`` reloads as ``0.0``), and every load of an artifact gives the same bits.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from junkdna_core.compress.encodings import LowRankFactors, QuantizedWeight, WeightEncoding
from junkdna_core.compress.packing import pack_codes, pack_mask, unpack_codes, unpack_mask
from junkdna_core.compress.runner import CompressionReport
from junkdna_core.compress.targets import find_targets
from junkdna_core.config.errors import CacheError

FORMAT_NAME = "junkdna-compressed"
FORMAT_VERSION = "2"
WEIGHTS_FILE = "weights.safetensors"
_METADATA_KEY = "junkdna"
_DTYPES = {str(d).removeprefix("torch."): d for d in (torch.float32, torch.float16, torch.bfloat16, torch.float64)}


@dataclass(frozen=True)
class StoredLayer:
    """One layer of an artifact: its form, ``(out, in)`` shape, dtype, code bits and stored layout."""

    name: str
    form: str
    shape: tuple[int, int]
    dtype: torch.dtype
    transposed: bool
    bits: int | None = None

    def describe(self) -> dict[str, Any]:
        return {"form": self.form, "shape": list(self.shape), "dtype": str(self.dtype).removeprefix("torch."),
                "transposed": self.transposed, "bits": self.bits}


def _encode_layer(
    name: str, new: torch.Tensor, old: torch.Tensor, mask: torch.Tensor | None, encoding: WeightEncoding | None,
) -> tuple[str, int | None, dict[str, torch.Tensor]] | None:
    """The smallest exact form of one layer's new weight (all arguments on the CPU, ``(out, in)``), or None."""
    if mask is not None and bool(mask.all()):
        mask = None
    if mask is None and torch.equal(new, old):
        return None
    masked = {} if mask is None else {f"{name}.weight.bitmask": pack_mask(mask)}
    forms: list[tuple[str, int | None, dict[str, torch.Tensor]]] = [("dense", None, {f"{name}.weight": new})]
    if isinstance(encoding, QuantizedWeight):
        rows, cols = encoding.shape
        forms.append(("pack-quantized", encoding.bits, masked | {
            f"{name}.weight_packed": pack_codes(encoding.codes, encoding.bits),
            f"{name}.weight_scale": encoding.scale,
            f"{name}.weight_zero_point": pack_codes(encoding.zero.t().to(torch.int32), encoding.bits).t(),
            f"{name}.weight_shape": torch.tensor([rows, cols], dtype=torch.int64),
        }))
    if isinstance(encoding, LowRankFactors) and mask is None:
        forms.append(("low-rank", None, {f"{name}.weight_left": encoding.left, f"{name}.weight_right": encoding.right}))
    if mask is not None and torch.equal(new, old * mask):
        forms.append(("bitmask", None, masked))
    elif mask is not None:
        forms.append(("sparse-bitmask", None, masked | {f"{name}.weight.compressed": new[mask]}))
    form, bits, tensors = min(forms, key=lambda f: sum(t.numel() * t.element_size() for t in f[2].values()))
    return form, bits, {key: tensor.contiguous() for key, tensor in tensors.items()}


def save_compressed(dense: nn.Module, compressed: nn.Module, report: CompressionReport, out: Path) -> None:
    """Write what compression changed in ``compressed`` (relative to ``dense``) to ``out/weights.safetensors``."""
    dense_targets = {t.name: t for t in find_targets(dense)}
    tensors: dict[str, torch.Tensor] = {}
    layers: dict[str, dict[str, Any]] = {}
    for target in find_targets(compressed):
        new = target.weight().detach().to("cpu")
        old = dense_targets[target.name].weight().detach().to("cpu")
        mask = report.masks.get(target.name)
        if mask is not None:
            mask = (mask.t() if target.transposed else mask).to("cpu")
        stored = _encode_layer(target.name, new, old, mask, report.encodings.get(target.name))
        if stored is None:
            continue
        form, bits, layer_tensors = stored
        tensors |= layer_tensors
        layers[target.name] = StoredLayer(target.name, form, tuple(new.shape), new.dtype, target.transposed,
                                          bits).describe()
    header = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "layers": layers}
    # one metadata key: safetensors writes several in a random (hash map) order, and the file must be reproducible
    save_file(tensors, str(out / WEIGHTS_FILE), metadata={_METADATA_KEY: json.dumps(header, sort_keys=True)})


def read_layers(path: Path) -> tuple[dict[str, StoredLayer], dict[str, torch.Tensor]]:
    """The layers an artifact directory stores and its tensors (on the CPU)."""
    file = path / WEIGHTS_FILE
    try:
        with safe_open(str(file), framework="pt") as handle:
            metadata = handle.metadata() or {}
        tensors = load_file(str(file))
    except (OSError, ValueError, RuntimeError) as exc:
        raise CacheError(f"cannot read the compressed model {file}: {exc}") from exc
    try:
        header = json.loads(metadata[_METADATA_KEY])
    except (KeyError, ValueError):
        header = {}
    if header.get("format") != FORMAT_NAME or header.get("version") != FORMAT_VERSION:
        raise CacheError(f"{file} is not a {FORMAT_NAME} v{FORMAT_VERSION} file (its header says "
                         f"{header.get('format')!r} v{header.get('version')!r}); clear it with "
                         "`junkdna cache clear --kind compressed`")
    layers = {
        name: StoredLayer(name, d["form"], tuple(d["shape"]), _DTYPES[d["dtype"]], d["transposed"], d["bits"])
        for name, d in header["layers"].items()
    }
    return layers, tensors


def stored_encoding(layer: StoredLayer, tensors: Mapping[str, torch.Tensor]) -> QuantizedWeight | None:
    """The codes and grids of a ``pack-quantized`` layer (None for other forms)."""
    if layer.form != "pack-quantized":
        return None
    rows, cols = layer.shape
    scale = tensors[f"{layer.name}.weight_scale"]
    zero = unpack_codes(tensors[f"{layer.name}.weight_zero_point"].t().contiguous(), layer.bits,
                        (scale.shape[1], rows)).t()
    codes = unpack_codes(tensors[f"{layer.name}.weight_packed"], layer.bits, (rows, cols))
    return QuantizedWeight(codes, scale, zero.to(scale.dtype).contiguous(), layer.bits)


def decode_layer(layer: StoredLayer, tensors: Mapping[str, torch.Tensor], dense: torch.Tensor) -> torch.Tensor:
    """The stored layer's weight ``(out, in)`` on the CPU, given the dense model's weight there."""
    name = layer.name
    bitmask = tensors.get(f"{name}.weight.bitmask")
    mask = unpack_mask(bitmask, layer.shape) if bitmask is not None else None
    if layer.form == "dense":
        return tensors[f"{name}.weight"]
    if layer.form == "low-rank":
        return LowRankFactors(tensors[f"{name}.weight_left"], tensors[f"{name}.weight_right"]).decode(layer.dtype)
    if layer.form == "sparse-bitmask":
        weight = torch.zeros(layer.shape, dtype=layer.dtype)
        weight[mask] = tensors[f"{name}.weight.compressed"]
        return weight
    if layer.form == "pack-quantized":
        weight = stored_encoding(layer, tensors).decode(layer.dtype)
    elif layer.form == "bitmask":
        weight = dense.to("cpu", layer.dtype)
    else:
        raise CacheError(f"layer {name} has the unknown form {layer.form!r}")
    return weight * mask if mask is not None else weight


@torch.no_grad()
def load_compressed(dense: nn.Module, path: Path) -> nn.Module:
    """A copy of ``dense`` with every layer the artifact at ``path`` stores decoded into it (in eval mode)."""
    model = copy.deepcopy(dense)
    layers, tensors = read_layers(path)
    for name, layer in layers.items():
        module = model.get_submodule(name)
        weight = module.weight.t() if layer.transposed else module.weight
        weight.copy_(decode_layer(layer, tensors, weight.detach()))
    return model.eval()
