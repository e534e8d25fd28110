"""Compressed models as cache artifacts: built once, stored compactly, loaded onto a dense copy.

An artifact stores only what compression changed, each layer in its smallest exact form
(:mod:`junkdna_core.study.artifact_format`): a keep-mask at 1 bit per weight where weights were
only zeroed (magnitude, N:M, random, Wanda), mask plus kept values where survivors changed
(SparseGPT), packed integer codes plus group scales and zero points for quantization (RTN, GPTQ),
factors for low rank. Every evaluation reads the stored artifact, never the in-memory build, so
a cold run and a warm run give the same numbers.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from junkdna_core.compress.base import CompressionMethod
from junkdna_core.compress.runner import compress_model
from junkdna_core.config.errors import ConfigError
from junkdna_core.models.conventions import InputFormat, input_format, tokenizer_conventions
from junkdna_core.models.loading import LoadedModel
from junkdna_core.models.placement import check_compressible
from junkdna_core.storage.cache import ArtifactCache
from junkdna_core.study.artifact_format import load_compressed, save_compressed
from junkdna_core.study.failures import naming_failures

ARTIFACT_VERSION = 2  # 2: compact per-layer forms (artifact_format v2) replace masks.npz + dense changed weights
COMPRESSED_KIND = "compressed"
_REPORT = "report.json"


@dataclass(frozen=True)
class Calibration:
    """Calibration token ids (samples x tokens) and where they came from."""

    input_ids: torch.Tensor
    fingerprint: str
    source: str


def calibration_batch(tokenizer: Any, *, samples: int = 32, tokens: int = 256, seed: int = 0,
                      inputs: InputFormat | None = None) -> Calibration:
    """``samples`` windows of ``tokens`` token ids cut from the offline calibration texts.

    Every window starts with the model's decided prefix (``inputs``; by default the tokenizer's own
    conventions: its BOS token exactly when it adds one by default), followed by the next tokens of
    the texts, each text ended by the EOS token. The chat template never applies (the texts are not
    prompts).
    """
    from junkdna_core.data.texts import calibration_texts

    prefix = list((inputs or input_format(tokenizer_conventions(tokenizer))).prefix)
    if samples < 1 or tokens < len(prefix) + 2:
        raise ConfigError(f"calibration needs samples >= 1 and tokens >= {len(prefix) + 2} (2 after the prefix "
                          f"{prefix}); got {samples} x {tokens}")
    width = tokens - len(prefix)
    ids: list[int] = []
    n_texts = samples
    while len(ids) < samples * width:
        texts, text_fingerprint = calibration_texts(n_texts, seed=seed)  # ConfigError past the pool's size
        ids = []
        for text in texts:
            ids.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
            if tokenizer.eos_token_id is not None:
                ids.append(tokenizer.eos_token_id)
        n_texts *= 2
    body = torch.tensor(ids[: samples * width], dtype=torch.long).reshape(samples, width)
    batch = torch.cat([torch.tensor([prefix] * samples, dtype=torch.long).reshape(samples, len(prefix)), body], dim=1)
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
    return cache.key(COMPRESSED_KIND, artifact_parts(dense, method, calibration))


@contextmanager
def stored_compressed(
    dense: LoadedModel,
    method: CompressionMethod,
    *,
    cache: ArtifactCache,
    calibration: Calibration | None = None,
    progress: bool = True,
) -> Iterator[Path]:
    """The cache directory of the dense model compressed by ``method``, built once (across processes) if
    missing, held under its shared lock for the with-block (a cache cap never evicts it mid-read).

    The build verifies the level the method reached (a miss is a MethodError and
    nothing is stored) and writes it as ``measured`` in the build report; the stored
    layers decode exactly to the weights that were measured.
    """
    if method.needs_calibration and calibration is None:
        raise ConfigError(f"{method.name} needs calibration data; none was given")
    check_compressible(dense.model, dense.name)

    def build(out: Path) -> None:
        model = copy.deepcopy(dense.model)
        report = compress_model(
            model, method, calibration=calibration.input_ids if method.needs_calibration else None,
            progress=progress,
        )
        save_compressed(dense.model, model, report, out)
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

    with ExitStack() as held:
        with naming_failures(dense.name, dense.fingerprint, method):  # the build's failures, not the reader's
            path = held.enter_context(cache.use(COMPRESSED_KIND, artifact_parts(dense, method, calibration), build,
                                                description=f"{dense.name} {method!r}"))
        yield path


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
        with stored_compressed(dense, method, cache=cache, calibration=calibration, progress=progress) as path:
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
    with stored_compressed(dense, method, cache=cache, calibration=calibration, progress=progress) as path:
        with naming_failures(dense.name, dense.fingerprint, method):
            model = load_compressed(dense.model, path)
        return CompressedModel(
            model=model,
            method=method.describe(),
            level=method.level,
            report=json.loads((path / _REPORT).read_text()),
            path=path,
        )
