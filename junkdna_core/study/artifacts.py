"""Compressed models as cache artifacts: built once, stored compactly, loaded onto a dense copy.

An artifact stores only what compression changed. Where a layer's weights were
only zeroed (magnitude, N:M, random, Wanda) it keeps the mask as packed bits
(1 bit per weight); where values changed (SparseGPT's updates, quantization,
low rank) it keeps the new values in the model's own dtype, so a model loaded
from the cache is bit-identical to the one that was built. Every evaluation
reads the stored artifact, never the in-memory build, so a cold run and a warm
run give the same numbers.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from junkdna_core.compress.base import CompressionMethod
from junkdna_core.compress.masks import pack_mask, unpack_mask
from junkdna_core.compress.runner import compress_model
from junkdna_core.compress.targets import find_targets
from junkdna_core.config.errors import ConfigError
from junkdna_core.models.loading import LoadedModel
from junkdna_core.storage.cache import ArtifactCache
from junkdna_core.study.failures import naming_failures

ARTIFACT_VERSION = 1
_MASKS, _WEIGHTS, _REPORT = "masks.npz", "weights.safetensors", "report.json"


@dataclass(frozen=True)
class Calibration:
    """Calibration token ids (samples x tokens) and where they came from."""

    input_ids: torch.Tensor
    fingerprint: str
    source: str


def calibration_batch(tokenizer: Any, *, samples: int = 32, tokens: int = 256, seed: int = 0) -> Calibration:
    """``samples`` windows of ``tokens`` token ids cut from the offline calibration texts."""
    from junkdna_core.data.texts import calibration_texts

    if samples < 1 or tokens < 2:
        raise ConfigError(f"calibration needs samples >= 1 and tokens >= 2; got {samples} x {tokens}")
    ids: list[int] = []
    n_texts = samples
    while len(ids) < samples * tokens:
        texts, text_fingerprint = calibration_texts(n_texts, seed=seed)  # ConfigError past the pool's size
        ids = []
        for text in texts:
            ids.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
            if tokenizer.eos_token_id is not None:
                ids.append(tokenizer.eos_token_id)
        n_texts *= 2
    batch = torch.tensor(ids[: samples * tokens], dtype=torch.long).reshape(samples, tokens)
    digest = hashlib.sha256(batch.numpy().tobytes()).hexdigest()[:16]
    return Calibration(batch, f"{text_fingerprint[:16]}-{digest}", f"calibration_texts(seed={seed})")


@dataclass(frozen=True)
class CompressedModel:
    """A compressed copy of a dense model, with the build report and its cache key."""

    model: nn.Module
    method: dict[str, Any]
    level: float
    report: dict[str, Any]
    path: Path


def artifact_parts(dense: LoadedModel, method: CompressionMethod, calibration: Calibration | None) -> dict[str, Any]:
    """Everything that determines a compressed model: the cache key's parts."""
    return {
        "model": dense.fingerprint,
        "method": method.describe(),
        "calibration": calibration.fingerprint if (calibration and method.needs_calibration) else None,
        "targets": "block-linears",
        "artifact": ARTIFACT_VERSION,
    }


def compressed_key(
    cache: ArtifactCache, dense: LoadedModel, method: CompressionMethod, calibration: Calibration | None
) -> str:
    """The cache key of the compressed model, known without building it."""
    return cache.key("compressed", artifact_parts(dense, method, calibration))


def _save(dense: nn.Module, compressed: nn.Module, report_masks: dict[str, torch.Tensor], out: Path) -> None:
    dense_modules = dict(dense.named_modules())
    packed: dict[str, np.ndarray] = {}
    changed: dict[str, torch.Tensor] = {}
    for target in find_targets(compressed):
        new = target.module.weight.detach()
        old = dense_modules[target.name].weight.detach()
        mask = report_masks.get(target.name)
        if mask is not None:
            packed[target.name] = pack_mask(mask)
            if torch.equal(new, old * mask):
                continue
        if not torch.equal(new, old):
            changed[target.name] = new.to("cpu").contiguous()
    np.savez(out / _MASKS, **packed)
    save_file(changed, str(out / _WEIGHTS))


@torch.no_grad()
def _load(dense: nn.Module, path: Path) -> nn.Module:
    model = copy.deepcopy(dense)
    weights = load_file(str(path / _WEIGHTS))
    with np.load(path / _MASKS) as masks:
        for name in sorted(set(weights) | set(masks.files)):
            weight = model.get_submodule(name).weight
            if name in weights:
                weight.copy_(weights[name])
            if name in masks.files:
                weight.mul_(unpack_mask(masks[name], tuple(weight.shape)).to(weight.device))
    return model.eval()


def build_artifact(
    dense: LoadedModel,
    method: CompressionMethod,
    *,
    cache: ArtifactCache,
    calibration: Calibration | None = None,
    progress: bool = True,
) -> Path:
    """The cache directory of the dense model compressed by ``method``, built once (across processes).

    The build verifies the level the method reached (a miss is a MethodError and
    nothing is stored) and writes it as ``measured`` in the build report.
    """
    if method.needs_calibration and calibration is None:
        raise ConfigError(f"{method.name} needs calibration data; none was given")

    def build(out: Path) -> None:
        model = copy.deepcopy(dense.model)
        report = compress_model(
            model, method, calibration=calibration.input_ids if method.needs_calibration else None,
            progress=progress,
        )
        _save(dense.model, model, report.masks, out)
        (out / _REPORT).write_text(json.dumps({
            "method": report.method,
            "seconds": report.seconds,
            "sparsity": report.sparsity.overall,
            "sparsity_per_layer": report.sparsity.per_layer,
            "measured": report.measured,
            "targets": list(report.targets),
            "calibration": calibration.source if method.needs_calibration else None,
            "threads": torch.get_num_threads(),
            "device": report.device,
            "onloaded": report.onloaded,
        }, indent=1))

    with naming_failures(dense.name, dense.fingerprint, method):
        return cache.get_or_build("compressed", artifact_parts(dense, method, calibration), build,
                                  description=f"{dense.name} {method!r}")


def verified_level(
    dense: LoadedModel,
    method: CompressionMethod,
    *,
    cache: ArtifactCache,
    calibration: Calibration | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """What ``method`` measurably reached on ``dense`` (e.g. ``{"unit": "row", "sparsity": 0.5}``).

    Builds the compressed model when it is not cached (a miss of the declared
    level raises MethodError there, before anything is scored); the value is
    kept as a small JSON entry of its own, so warm runs read neither the
    artifact nor its hashes.
    """
    def measured() -> dict[str, Any]:
        path = build_artifact(dense, method, cache=cache, calibration=calibration, progress=progress)
        return json.loads((path / _REPORT).read_text())["measured"]

    return cache.get_or_compute_json("verified", artifact_parts(dense, method, calibration), measured)


def compressed_model(
    dense: LoadedModel,
    method: CompressionMethod,
    *,
    cache: ArtifactCache,
    calibration: Calibration | None = None,
    progress: bool = True,
) -> CompressedModel:
    """The dense model compressed by ``method``: built once (across processes), then read from the cache.

    Any failure but the cache's and the model files' is a CompressionError (a
    MethodError when the method misbehaved) naming the method, its level and the model.
    """
    path = build_artifact(dense, method, cache=cache, calibration=calibration, progress=progress)
    with naming_failures(dense.name, dense.fingerprint, method):
        model = _load(dense.model, path)
    return CompressedModel(
        model=model,
        method=method.describe(),
        level=method.level,
        report=json.loads((path / _REPORT).read_text()),
        path=path,
    )
