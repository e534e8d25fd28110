"""Open the model a spec names (:mod:`~junkdna_core.models.specs`), lazily, with its fingerprint.

Weights are read by :mod:`junkdna_core.models.readers`, imported on the first
read: naming, fingerprinting and opening a model whose results are cached
never imports transformers.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from junkdna_core.config.errors import CorruptResourceError
from junkdna_core.models.devices import resolve_device, resolve_dtype
from junkdna_core.models.embedded import MINILM, MINILM_FOLDER, SMOLLM2, SMOLLM2_GGUF, smollm2_parts
from junkdna_core.models.fingerprints import model_fingerprint, parameter_count
from junkdna_core.models.specs import DEFAULT_MODEL, SpecKind, model_name, spec_kind
from junkdna_core.models.synthetic import ModelKind
from junkdna_core.storage.cache import ArtifactCache, default_cache, file_key

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

MODEL_MEMO_VERSION = 2  # of the "model-fingerprint" memo; 2: it holds the parameter count

class LoadedModel:
    """A model and what it is: weights on their device in eval mode, read on first use.

    ``name`` is the short id used in test ids; ``source`` says exactly what was
    loaded (package, version and file; a path; or a hub id); ``fingerprint`` is
    :func:`model_fingerprint` of the weights as loaded (after the dtype cast);
    ``parameters`` is :func:`parameter_count` of the model (tied weights once).
    These are known without reading the weights when the model's files were
    fingerprinted before (see :func:`load_model`), so a run whose results are
    all cached never loads the model; ``model`` and ``tokenizer`` load it.
    """

    def __init__(self, name: str, source: str, kind: ModelKind, fingerprint: str, parameters: int,
                 read: Callable[[], tuple[torch.nn.Module, PreTrainedTokenizerBase]]) -> None:
        self.name = name
        self.source = source
        self.kind: ModelKind = kind
        self.fingerprint = fingerprint
        self.parameters = parameters
        self._read = read
        self._weights: tuple[torch.nn.Module, PreTrainedTokenizerBase] | None = None

    @classmethod
    def of(cls, name: str, source: str, kind: ModelKind, model: torch.nn.Module,
           tokenizer: PreTrainedTokenizerBase) -> LoadedModel:
        """A model already in memory, fingerprinted now."""
        loaded = cls(name, source, kind, model_fingerprint(model), parameter_count(model), lambda: (model, tokenizer))
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
    kind = spec_kind(spec)
    read = functools.partial(_prepared, spec, kind, cache, torch_device, torch_dtype)
    files = _files_identity(spec, kind, cache)
    if files is None:
        return _eager(spec, read)
    first: list[LoadedModel] = []

    def fingerprint_now() -> dict[str, str]:
        first.append(_eager(spec, read))
        return {"fingerprint": first[0].fingerprint, "source": first[0].source, "kind": first[0].kind,
                "parameters": first[0].parameters}

    known = cache.get_or_compute_json("model-fingerprint", {"files": files, "dtype": dtype,
                                                            "memo": MODEL_MEMO_VERSION}, fingerprint_now)
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

    return LoadedModel(model_name(spec), known["source"], known["kind"], known["fingerprint"], known["parameters"],
                       read_checked)


def _prepared(spec: str, kind: SpecKind, cache: ArtifactCache, device: torch.device,
              dtype: torch.dtype) -> tuple[torch.nn.Module, PreTrainedTokenizerBase, str, ModelKind]:
    """The model read, moved, cast and put in eval mode, with its tokenizer, source and kind."""
    from junkdna_core.models.readers import read  # imports transformers: only when weights are read

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
