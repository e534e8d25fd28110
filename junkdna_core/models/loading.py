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
from junkdna_core.config.parsing import parse_device_map
from junkdna_core.models.conventions import TokenizerConventions, tokenizer_conventions
from junkdna_core.models.devices import dtype_name, input_device, resolve_dtype, visible_devices
from junkdna_core.models.embedded import MINILM, MINILM_FOLDER, SMOLLM2, SMOLLM2_GGUF, smollm2_parts
from junkdna_core.models.fingerprints import model_fingerprint, parameter_count
from junkdna_core.models.placement import Placement, PlacementRequest
from junkdna_core.models.specs import (
    DEFAULT_MODEL,
    SpecKind,
    check_spec,
    hub_revision,
    local_snapshot,
    model_name,
    spec_kind,
)
from junkdna_core.models.synthetic import ModelKind
from junkdna_core.storage.cache import ArtifactCache, default_cache, file_key

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from junkdna_core.models.readers import RawModel

_Weights = tuple[torch.nn.Module, "PreTrainedTokenizerBase", "Placement | None"]

# of the "model-fingerprint" memo; 2: the tokenizer's conventions; 3: also the parameter count and revision
MODEL_MEMO_VERSION = 3


class LoadedModel:
    """A model and what it is: weights on their device(s) in eval mode, read on first use.

    ``name`` is the short id used in test ids; ``source`` says exactly what was
    loaded (package, version and file; a path; or a hub id at the commit it was
    read at, whose hash is also ``revision``); ``fingerprint`` is
    :func:`model_fingerprint` of the weights as loaded (in ``dtype``, the resolved
    name: never ``auto``); ``device`` is where its inputs go; ``parameters`` is
    :func:`parameter_count` of the model (tied weights once). These are known
    without reading the weights when the model's files were fingerprinted before
    (see :func:`load_model`), so a run whose results are all cached never loads
    the model; ``model`` and ``tokenizer`` load it, and then ``placement`` says
    where its weights went and why (None until then). ``conventions`` (the
    tokenizer's, which decide how texts are fed to the model) are memoised with
    the fingerprint, so they are known without loading too.
    """

    def __init__(self, name: str, source: str, kind: ModelKind, fingerprint: str, read: Callable[[], _Weights],
                 *, device: str, dtype: str, parameters: int, revision: str | None = None,
                 conventions: TokenizerConventions | None = None) -> None:
        self.name = name
        self.source = source
        self.kind: ModelKind = kind
        self.fingerprint = fingerprint
        self.device = device
        self.dtype = dtype
        self.revision = revision
        self.placement: Placement | None = None
        self.parameters = parameters
        self._read = read
        self._weights: tuple[torch.nn.Module, PreTrainedTokenizerBase] | None = None
        self._conventions = conventions

    @classmethod
    def of(cls, name: str, source: str, kind: ModelKind, model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase,
           *, placement: Placement | None = None, revision: str | None = None) -> LoadedModel:
        """A model already in memory, fingerprinted now (its device and dtype read off its weights)."""
        floating = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
        loaded = cls(name, source, kind, model_fingerprint(model), lambda: (model, tokenizer, placement),
                     device=placement.device if placement else str(input_device(model)),
                     dtype=placement.dtype if placement else dtype_name(floating), revision=revision,
                     parameters=parameter_count(model),
                     conventions=tokenizer_conventions(tokenizer))
        loaded._loaded()
        return loaded

    @property
    def conventions(self) -> TokenizerConventions:
        """The tokenizer's conventions (read from the tokenizer on first use unless memoised)."""
        if self._conventions is None:
            self._conventions = tokenizer_conventions(self.tokenizer)
        return self._conventions

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

    def describe(self) -> dict[str, Any]:
        """What was measured, and on which device in which dtype: JSON-ready (study provenance in claim records).

        Known without reading the weights, so a warm run records what a cold one
        does; where the weights went (``placement``) is in :meth:`placement_record`.
        """
        return {"name": self.name, "source": self.source, "revision": self.revision, "kind": self.kind,
                "fingerprint": self.fingerprint, "device": self.device, "dtype": self.dtype}

    def placement_record(self) -> dict[str, Any]:
        """:meth:`describe` with the placement decision (None if the weights were never read): run environments."""
        return {**self.describe(), "placement": self.placement.describe() if self.placement else None}

    def _loaded(self) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
        if self._weights is None:
            model, tokenizer, placement = self._read()
            self._weights, self.placement = (model, tokenizer), placement
        return self._weights


def load_model(
    spec: str = DEFAULT_MODEL,
    *,
    device: str = "auto",
    dtype: str = "auto",
    cache: ArtifactCache | None = None,
    device_map: str = "auto",
    max_memory: dict[str, int] | None = None,
) -> LoadedModel:
    """The model named by ``spec`` (see :mod:`~junkdna_core.models.specs`), for ``device`` in ``dtype``.

    ``device`` is an ``--jd-device`` value: the model's inputs go to the first
    device it names, and a model too large for that one is spread over the others,
    the host and disk (``device_map`` and ``max_memory``: see
    :mod:`~junkdna_core.models.placement`). ``dtype`` ``auto`` resolves per device
    (:func:`~junkdna_core.models.devices.resolve_dtype`). ``cache`` holds the
    converted SmolLM2 and the fingerprints of model files (default: an
    ArtifactCache at ``$JUNKDNA_CACHE`` or the user cache dir). The spec and
    options are checked before anything is read (ConfigError); a missing package
    raises MissingResourceError naming the install command. When the files behind
    ``spec`` (identified by content key, or path, size and modification time)
    were fingerprinted before in the resolved dtype, the weights are read only on
    first use, and then checked against that fingerprint.
    """
    check_spec(spec)
    devices = visible_devices(device)
    torch_dtype = resolve_dtype(dtype, devices[0])
    request = PlacementRequest(devices, parse_device_map(device_map), max_memory)
    cache = default_cache(cache)
    kind = spec_kind(spec)
    read = functools.partial(_prepared, spec, kind, cache, torch_dtype, request)
    where = {"device": str(devices[0]), "dtype": dtype_name(torch_dtype)}
    files = _files_identity(spec, kind, cache)
    if files is None:
        return _eager(spec, read)
    first: list[LoadedModel] = []

    def fingerprint_now() -> dict[str, Any]:
        first.append(_eager(spec, read))
        return {"fingerprint": first[0].fingerprint, "source": first[0].source, "kind": first[0].kind,
                "revision": first[0].revision, "conventions": first[0].conventions.describe(),
                "parameters": first[0].parameters}

    # The resolved dtype, never "auto": the same weights in float32 and bfloat16 are two models.
    known = cache.get_or_compute_json("model-fingerprint", {"files": files, "dtype": where["dtype"],
                                                            "memo": MODEL_MEMO_VERSION}, fingerprint_now)
    if first:
        return first[0]

    def read_checked() -> _Weights:
        raw = read()
        actual = model_fingerprint(raw.model)
        if actual != known["fingerprint"]:
            raise CorruptResourceError(
                f"model {spec!r}: the weights read now (fingerprint {actual}) are not the ones fingerprinted "
                f"earlier ({known['fingerprint']}), although their files look unchanged; results of this run may "
                f"mix the two. Remove the memo with `junkdna cache clear --kind model-fingerprint` and rerun."
            )
        return raw.model, raw.tokenizer, raw.placement

    return LoadedModel(model_name(spec), known["source"], known["kind"], known["fingerprint"], read_checked,
                       parameters=known["parameters"], revision=known.get("revision"),
                       conventions=TokenizerConventions.from_description(known["conventions"]), **where)


def _prepared(spec: str, kind: SpecKind, cache: ArtifactCache, dtype: torch.dtype,
              request: PlacementRequest) -> RawModel:
    """The model read in ``dtype``, placed as ``request`` asks and put in eval mode, with what it is."""
    from junkdna_core.models.readers import read  # imports transformers: only when weights are read

    raw = read(spec, kind, cache, dtype, request)
    raw.model.eval()
    # Causal LMs keep the KV cache (generation, shared-prefix scoring); encoders never use one.
    raw.model.config.use_cache = raw.kind == "causal"
    return raw


def _eager(spec: str, read: Callable[[], RawModel]) -> LoadedModel:
    """The model read now and fingerprinted."""
    raw = read()
    return LoadedModel.of(model_name(spec), raw.source, raw.kind, raw.model, raw.tokenizer,
                          placement=raw.placement, revision=raw.revision)


def _files_identity(spec: str, kind: SpecKind, cache: ArtifactCache) -> dict[str, Any] | None:
    """What identifies the files ``spec`` reads without reading them, or None (random weights, not yet local)."""
    if kind == "smollm2":  # the converted folder is content-addressed by the GGUF it came from
        return {"smollm2": cache.key("model", smollm2_parts(SMOLLM2.locate(SMOLLM2_GGUF), dtype="float32"))}
    if kind == "minilm":
        return {"minilm": _folder_identity(MINILM.locate(MINILM_FOLDER))}
    if kind == "folder":
        return {"folder": _folder_identity(Path(spec).expanduser())}
    if kind == "hub":
        repo_id, revision = hub_revision(spec)
        snapshot = local_snapshot(repo_id, revision)
        return {"hub": repo_id, "snapshot": _folder_identity(snapshot)} if snapshot else None
    return None


def _folder_identity(folder: Path) -> dict[str, Any]:
    """The folder's resolved path and a :func:`~junkdna_core.storage.cache.file_key` of each file in it."""
    return {"path": str(folder.resolve()),
            "files": [file_key(path, folder) for path in sorted(folder.iterdir()) if path.is_file()]}
