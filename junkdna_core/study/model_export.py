"""Export one compressed model from the cache as a Hugging Face folder that transformers and vLLM load.

Two formats:

``dense``
    A normal safetensors folder (``save_pretrained``): every weight dense in the model's dtype,
    pruned weights as zeros. transformers loads it with nothing else installed. This is also what
    llm-compressor now writes for sparse models (compressed-tensors 0.20 dropped its sparse formats).
``compressed-tensors``
    For quantized models: each quantized linear as compressed-tensors ``pack-quantized`` tensors
    (``weight_packed``, ``weight_scale``, ``weight_zero_point`` for asymmetric grids,
    ``weight_shape``), and ``config.json`` carrying the ``quantization_config`` llm-compressor
    writes (``quant_method: compressed-tensors``, one config group, ``ignore`` naming the linears
    left dense). vLLM serves it with its W4A16/W8A16 kernels; transformers loads it with the
    ``compressed-tensors`` package installed, decompressing to the very weights junkdna scored.
    Possible when every quantized layer is an ``nn.Linear`` on one scheme (bits, group size,
    symmetry) with a bit width that divides 32 (1, 2, 4, 8: their packing is the same in every
    compressed-tensors release) and no mask.

``auto`` picks ``compressed-tensors`` when it is possible, else ``dense``. Either way the folder
holds the tokenizer and ``junkdna_export.json`` (method, parameters, source model and
fingerprint, cache key, format, each layer's stored form).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from junkdna_core import __version__
from junkdna_core.compress.base import CompressionMethod
from junkdna_core.config.errors import ConfigError
from junkdna_core.config.parsing import parse_export_format
from junkdna_core.models.loading import LoadedModel
from junkdna_core.storage.cache import ArtifactCache
from junkdna_core.study.artifact_format import StoredLayer, load_compressed, read_layers, stored_encoding
from junkdna_core.study.artifacts import Calibration, compressed_key, stored_compressed

PROVENANCE_FILE = "junkdna_export.json"
# The compressed-tensors release whose pack-quantized layout and config this writes (checked in the tests);
# for bit widths that divide 32 the layout is the same in every release vLLM reads.
COMPRESSED_TENSORS_VERSION = "0.20.1"


@dataclass(frozen=True)
class ExportReport:
    """Where a compressed model was exported, in which format, and why that format."""

    out: Path
    format: str
    reason: str
    files: tuple[str, ...]


def _scheme(layers: dict[str, StoredLayer], tensors: dict[str, torch.Tensor], model: nn.Module,
            ) -> tuple[dict[str, Any] | None, str]:
    """The one pack-quantized scheme of all stored layers, or None with the reason it cannot be written."""
    if not layers:
        return None, "no layer is quantized"
    if any(layer.form != "pack-quantized" for layer in layers.values()):
        forms = sorted({layer.form for layer in layers.values()} - {"pack-quantized"})
        return None, f"layers stored as {', '.join(forms)} have no compressed-tensors format"
    schemes = set()
    for name, layer in layers.items():
        if f"{name}.weight.bitmask" in tensors:
            return None, f"{name} is quantized and masked"
        if layer.transposed or not isinstance(model.get_submodule(name), nn.Linear):
            return None, f"{name} is not an nn.Linear"
        if 32 % layer.bits:
            return None, (f"{layer.bits}-bit codes are packed across int32 words, which compressed-tensors "
                          "releases before 0.20 read differently")
        groups = tensors[f"{name}.weight_scale"].shape[1]
        symmetric = stored_encoding(layer, tensors).symmetric
        schemes.add((layer.bits, None if groups == 1 else layer.shape[1] // groups, symmetric))
    if len(schemes) > 1:
        return None, f"layers use {len(schemes)} different schemes (bits, group size, symmetry)"
    (bits, group_size, symmetric), = schemes
    return {"num_bits": bits, "group_size": group_size, "symmetric": symmetric}, "every layer is pack-quantized"


def quantization_config(scheme: dict[str, Any], ignore: list[str]) -> dict[str, Any]:
    """The ``quantization_config`` of config.json, as llm-compressor writes it for a W*A16 pack-quantized model."""
    weights = {
        "num_bits": scheme["num_bits"], "type": "int", "symmetric": scheme["symmetric"],
        "group_size": scheme["group_size"], "strategy": "channel" if scheme["group_size"] is None else "group",
        "block_structure": None, "dynamic": False, "actorder": None, "observer": "minmax", "observer_kwargs": {},
    }
    return {
        "config_groups": {"group_0": {"targets": ["Linear"], "weights": weights, "input_activations": None,
                                      "output_activations": None, "format": "pack-quantized"}},
        "format": "pack-quantized",
        "global_compression_ratio": None,
        "ignore": ignore,
        "kv_cache_scheme": None,
        "quant_method": "compressed-tensors",
        "quantization_status": "compressed",
        "sparsity_config": {},
        "transform_config": {},
        "version": COMPRESSED_TENSORS_VERSION,
    }


def _compressed_tensors_state(model: nn.Module, layers: dict[str, StoredLayer], tensors: dict[str, torch.Tensor],
                              symmetric: bool) -> dict[str, torch.Tensor]:
    """The model's state dict with each quantized layer's weight replaced by its pack-quantized tensors."""
    state = dict(model.state_dict())
    for name in layers:
        del state[f"{name}.weight"]
        for suffix in ("weight_packed", "weight_scale", "weight_shape", *(() if symmetric else ("weight_zero_point",))):
            state[f"{name}.{suffix}"] = tensors[f"{name}.{suffix}"]
    return state


def export_compressed(
    dense: LoadedModel,
    method: CompressionMethod,
    out: Path,
    *,
    cache: ArtifactCache,
    calibration: Calibration | None = None,
    export_format: str = "auto",
    progress: bool = True,
) -> ExportReport:
    """Write the dense model compressed by ``method`` (built into the cache if needed) to the folder ``out``."""
    export_format = parse_export_format(export_format)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"the export folder {out} exists and is not empty; give a new or empty folder")
    with stored_compressed(dense, method, cache=cache, calibration=calibration, progress=progress) as path:
        model = load_compressed(dense.model, path)
        layers, tensors = read_layers(path)
    scheme, reason = _scheme(layers, tensors, model)
    if export_format == "dense":
        chosen, why = "dense", "asked for dense"
    elif scheme is None:
        if export_format == "compressed-tensors":
            raise ConfigError(f"{method!r} cannot be exported as compressed-tensors: {reason}; use --format dense")
        chosen, why = "dense", f"no compressed-tensors format: {reason}"
    else:
        chosen, why = "compressed-tensors", reason
    out.mkdir(parents=True, exist_ok=True)
    if chosen == "dense":
        model.save_pretrained(out)
    else:
        quantized = set(layers)
        ignore = sorted(name for name, module in model.named_modules()
                        if isinstance(module, nn.Linear) and name not in quantized)
        model.save_pretrained(out, state_dict=_compressed_tensors_state(model, layers, tensors, scheme["symmetric"]))
        config = json.loads((out / "config.json").read_text())
        config["quantization_config"] = quantization_config(scheme, ignore)
        (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    dense.tokenizer.save_pretrained(out)
    (out / PROVENANCE_FILE).write_text(json.dumps({
        "junkdna_version": __version__,
        "model": dense.name,
        "model_fingerprint": dense.fingerprint,
        "method": method.describe(),
        "calibration": calibration.fingerprint if calibration is not None and method.needs_calibration else None,
        "cache_key": compressed_key(cache, dense, method, calibration),
        "format": chosen,
        "format_reason": why,
        "layers": {name: layer.describe() for name, layer in layers.items()},
    }, indent=1, sort_keys=True) + "\n")
    return ExportReport(out, chosen, why, tuple(sorted(p.name for p in out.iterdir())))
