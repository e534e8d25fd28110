"""Read a model's weights and tokenizer from each kind of source a spec names.

Kept apart from :mod:`junkdna_core.models.loading` so that naming, fingerprinting and
opening a model whose results are cached never imports transformers: this
module is imported on the first read of weights.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_model
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedTokenizerBase,
)
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
    MODEL_FOR_MASKED_LM_MAPPING_NAMES,
)

from junkdna_core.config.errors import ConfigError, MissingResourceError
from junkdna_core.models.embedded import MINILM, MINILM_FOLDER, SMOLLM2, SMOLLM2_GGUF, smollm2_parts
from junkdna_core.models.placement import Placement, PlacementRequest, place_in_memory, place_pretrained
from junkdna_core.models.specs import (
    DEFAULT_ENCODER,
    DEFAULT_MODEL,
    RANDOM_PREFIX,
    SpecKind,
    hub_offline,
    hub_revision,
    local_revisions,
    local_snapshot,
    random_config_path,
)
from junkdna_core.models.synthetic import RANDOM_CONFIGS, RANDOM_SEED, ModelKind
from junkdna_core.storage.cache import ArtifactCache, default_cache

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawModel:
    """A model as read, in its dtype and where ``placement`` says, before it is fingerprinted.

    ``revision``: the commit hash a hub model was read at (None for other sources).
    """

    model: torch.nn.Module
    tokenizer: PreTrainedTokenizerBase
    source: str
    kind: ModelKind
    placement: Placement
    revision: str | None = None


def read(spec: str, kind: SpecKind, cache: ArtifactCache | None, dtype: torch.dtype,
         request: PlacementRequest) -> RawModel:
    """Read the model ``spec`` (of ``kind``) names, its weights in ``dtype``, placed as ``request`` asks."""
    if kind == "smollm2":
        return _read_smollm2(cache, dtype, request)
    if kind == "minilm":
        return _read_minilm(dtype, request)
    if kind == "random":
        return _read_random(spec[len(RANDOM_PREFIX) :], cache, dtype, request)
    if kind == "folder":
        return _read_folder(Path(spec).expanduser(), dtype, request)
    return _read_hub(spec, dtype, request)


def _is_causal(config: PretrainedConfig) -> bool:
    """True if the config describes a decoder-only causal LM, False for an encoder."""
    architectures = getattr(config, "architectures", None) or []
    if architectures:
        return any(arch.endswith(("ForCausalLM", "LMHeadModel")) for arch in architectures)
    model_type = config.model_type
    return model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def _model_class(kind: ModelKind) -> Any:
    """The auto class of a model of ``kind``."""
    return AutoModelForCausalLM if kind == "causal" else AutoModel


def _read_pretrained(location: str | Path, config: PretrainedConfig, dtype: torch.dtype, request: PlacementRequest,
                     *, source: str, kind: ModelKind | None = None, revision: str | None = None,
                     tokenizer: PreTrainedTokenizerBase | None = None) -> RawModel:
    """A pretrained model from a folder or hub id (at ``revision``), read straight to where it is placed.

    ``kind`` defaults to what the config calls for; ``tokenizer`` to the one at ``location``.
    """
    kind = kind or ("causal" if _is_causal(config) else "encoder")
    model_class = _model_class(kind)
    placement = request.plan(model_class, config, dtype)
    load = functools.partial(model_class.from_pretrained, str(location), dtype=dtype, revision=revision)
    model = place_pretrained(load, placement)
    if tokenizer is None:
        tokenizer = AutoTokenizer.from_pretrained(str(location), revision=revision)
    return RawModel(model, tokenizer, source, kind, placement, revision)


# --- smollm2 -----------------------------------------------------------------


def _gguf_model() -> torch.nn.Module:
    """SmolLM2 read straight from its GGUF, dequantized to float32 (about 25 s on a CPU)."""
    gguf_path = SMOLLM2.locate(SMOLLM2_GGUF)
    logger.info("reading %s (one-time conversion to float32 safetensors)", gguf_path)
    return AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)


def _gguf_tokenizer() -> PreTrainedTokenizerBase:
    """The SmolLM2 tokenizer read from the GGUF's metadata (about 12 s)."""
    gguf_path = SMOLLM2.locate(SMOLLM2_GGUF)
    return AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)


def _convert_smollm2(out_dir: Path) -> None:
    """Write SmolLM2 as a float32 safetensors folder (config, weights, tokenizer) into ``out_dir``.

    ``save_pretrained`` refuses GGUF-loaded models, so the config is rewritten
    without its ``quantization_config`` and the weights are saved with
    safetensors' ``save_model`` (which drops the tied output layer).
    """
    model = _gguf_model()
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    config.pop("_name_or_path", None)
    config["dtype"] = "float32"
    (out_dir / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    save_model(model, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    _gguf_tokenizer().save_pretrained(out_dir)


def _read_smollm2(cache: ArtifactCache | None, dtype: torch.dtype, request: PlacementRequest) -> RawModel:
    gguf_path = SMOLLM2.locate(SMOLLM2_GGUF)
    folder = default_cache(cache).get_or_build(
        "model",
        smollm2_parts(gguf_path, dtype="float32"),
        _convert_smollm2,
        description=f"SmolLM2-135M-Instruct {gguf_path.name} dequantized to float32 safetensors",
    )
    source = f"{SMOLLM2.distribution}=={SMOLLM2.installed_version()}:{gguf_path.name}"
    return _read_pretrained(folder, AutoConfig.from_pretrained(folder), dtype, request, source=source, kind="causal")


# --- minilm ------------------------------------------------------------------


def _minilm_tokenizer() -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(MINILM.locate(MINILM_FOLDER))


def _read_minilm(dtype: torch.dtype, request: PlacementRequest) -> RawModel:
    folder = MINILM.locate(MINILM_FOLDER)
    source = f"{MINILM.distribution}=={MINILM.installed_version()}:{MINILM_FOLDER}"
    return _read_pretrained(folder, AutoConfig.from_pretrained(folder), dtype, request, source=source,
                            kind="encoder", tokenizer=_minilm_tokenizer())


# --- random ------------------------------------------------------------------


def _save_smollm2_tokenizer(out_dir: Path) -> None:
    """Write the SmolLM2 tokenizer, read from the package's GGUF, into ``out_dir``."""
    _gguf_tokenizer().save_pretrained(out_dir)


def _smollm2_tokenizer(cache: ArtifactCache | None) -> PreTrainedTokenizerBase:
    """The SmolLM2 tokenizer, extracted from the GGUF once into the cache (later loads take ~1 s)."""
    gguf_path = SMOLLM2.locate(SMOLLM2_GGUF)
    folder = default_cache(cache).get_or_build(
        "tokenizer",
        smollm2_parts(gguf_path),
        _save_smollm2_tokenizer,
        description=f"SmolLM2 tokenizer from {gguf_path.name}",
    )
    return AutoTokenizer.from_pretrained(folder)


def _random_config(
    name: str, cache: ArtifactCache | None
) -> tuple[PretrainedConfig, PreTrainedTokenizerBase, ModelKind]:
    """(config, tokenizer, kind) for ``random:<name>``."""
    path = random_config_path(name)
    if path is None:
        factory, kind = RANDOM_CONFIGS[name]
        tokenizer = _smollm2_tokenizer(cache) if kind == "causal" else _minilm_tokenizer()
        return factory(len(tokenizer)), tokenizer, kind
    config = AutoConfig.from_pretrained(path)
    kind: ModelKind = "causal" if _is_causal(config) else "encoder"
    tokenizer = _smollm2_tokenizer(cache) if kind == "causal" else _minilm_tokenizer()
    if config.vocab_size < len(tokenizer):
        raise ConfigError(
            f"{path} has vocab_size={config.vocab_size}, but the {kind} tokenizer it is paired with has "
            f"{len(tokenizer)} tokens; set vocab_size >= {len(tokenizer)}"
        )
    return config, tokenizer, kind


def _read_random(name: str, cache: ArtifactCache | None, dtype: torch.dtype, request: PlacementRequest) -> RawModel:
    config, tokenizer, kind = _random_config(name, cache)
    model_class = _model_class(kind)
    placement = request.plan(model_class, config, dtype)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_SEED)
        model = model_class.from_config(config, dtype=dtype)  # drawn on the host, so every device gets the same
    return RawModel(place_in_memory(model, placement), tokenizer, f"random:{name} (seed {RANDOM_SEED})", kind,
                    placement)


# --- folders and the hub ----------------------------------------------------


_RESAVE = "re-save the model with save_pretrained, or copy the folder again"


def _folder_config(path: Path) -> PretrainedConfig:
    """The folder's config (:func:`~junkdna_core.models.specs.check_spec` saw its config.json); ConfigError naming
    config.json if it is not a readable model config."""
    config_file = path / "config.json"
    try:
        return AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as error:
        first_line = str(error).splitlines()[0] if str(error) else ""
        raise ConfigError(
            f"{config_file} is not a readable model config ({type(error).__name__}: {first_line}); {_RESAVE}"
        ) from None


def _check_safetensors(path: Path) -> None:
    """ConfigError naming the first ``*.safetensors`` file of the folder whose header or size is damaged."""
    for weights in sorted(path.glob("*.safetensors")):
        try:
            with safe_open(str(weights), framework="pt"):
                pass
        except (SafetensorError, OSError) as error:
            raise ConfigError(f"{weights} is truncated or damaged ({error}); {_RESAVE}") from None


def _read_folder(path: Path, dtype: torch.dtype, request: PlacementRequest) -> RawModel:
    config = _folder_config(path)
    _check_safetensors(path)
    return _read_pretrained(path, config, dtype, request, source=str(path.resolve()))


def _read_hub(spec: str, dtype: torch.dtype, request: PlacementRequest) -> RawModel:
    """A hub model at its pinned revision (default ``main``), its source naming the commit it was read at."""
    repo_id, revision = hub_revision(spec)
    try:
        config = AutoConfig.from_pretrained(repo_id, revision=revision)
        raw = _read_pretrained(repo_id, config, dtype, request, source=f"hf-hub:{repo_id}", revision=revision)
    except OSError as error:
        where = f" ({local_revisions(repo_id)})" if hub_offline() else ""
        raise MissingResourceError(
            f"model {spec!r} is not in the local Hugging Face cache and could not be downloaded "
            f"({type(error).__name__}: {str(error).splitlines()[0]}){where}. Offline, use the embedded model "
            f"'{DEFAULT_MODEL}' (default), '{DEFAULT_ENCODER}', 'random:tiny-llama', or a local folder."
        ) from error
    snapshot = local_snapshot(repo_id, revision)  # downloaded or found: the folder is named by its commit
    commit = snapshot.name if snapshot else getattr(config, "_commit_hash", None) or revision
    source = f"hf-hub:{repo_id}@{commit}" if commit else raw.source
    return RawModel(raw.model, raw.tokenizer, source, raw.kind, raw.placement, commit)
