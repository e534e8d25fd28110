"""Model specs checked before anything is loaded (torch-free): what they name, their short names, check_spec."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from junkdna_core.config.errors import ConfigError
from junkdna_core.models.specs import ACCEPTED_FORMS, check_spec, hub_revision, model_name, spec_kind
from junkdna_core.models.synthetic import tiny_llama_config


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """HF_HUB_OFFLINE=1 with an empty local hub cache (as huggingface_hub reads them at import)."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path / "hub"


@pytest.mark.parametrize(
    ("spec", "repo", "revision"),
    [("Qwen/Qwen2.5-0.5B", "Qwen/Qwen2.5-0.5B", None), ("org/name@main", "org/name", "main"),
     ("org/name@v1.0", "org/name", "v1.0"), ("org/name@refs/pr/12", "org/name", "refs/pr/12"),
     (f"org/name@{'0a' * 20}", "org/name", "0a" * 20), ("gpt2@my_branch", "gpt2", "my_branch")],
)
def test_hub_specs_pin_a_revision(spec: str, repo: str, revision: str | None) -> None:
    assert spec_kind(spec) == "hub"
    assert hub_revision(spec) == (repo, revision)


@pytest.mark.parametrize("spec", ["org/name@", "org/name@a..b", "org/name@-x", "org/name@x/", "org/name@x.lock",
                                  "org/name@a b", "org/name@v1@v2", "org/name@a//b", "org/name@~1", "org/name@x:y"])
def test_a_malformed_revision_names_the_spec_and_the_forms(spec: str) -> None:
    with pytest.raises(ConfigError, match="malformed revision") as info:
        check_spec(spec)
    assert repr(spec) in str(info.value) and ACCEPTED_FORMS in str(info.value)


@pytest.mark.parametrize(
    ("spec", "name"),
    [("Qwen/Qwen2.5-0.5B", "Qwen2.5-0.5B"), ("org/name@v1.0", "name-v1.0"), ("org/name@refs/pr/3", "name-refs-pr-3"),
     (f"org/name@{'0123456789' * 4}", "name-012345678901"), ("smollm2", "smollm2"),
     ("random:tiny-llama", "random-tiny-llama")],
)
def test_short_names_are_valid_test_ids(spec: str, name: str) -> None:
    assert model_name(spec) == name
    assert all(c.isalnum() or c in "._-" for c in name)


def test_check_spec_accepts_what_loads(tmp_path: Path) -> None:
    folder = tmp_path / "saved"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(tiny_llama_config(49152).to_dict()))
    for spec in ("smollm2", "minilm", "random:tiny-llama", "random:tiny-bert", f"random:{folder}",
                 f"random:{folder / 'config.json'}", str(folder), "Qwen/Qwen2.5-0.5B@main"):
        check_spec(spec)  # online (HF_HUB_OFFLINE unset), a hub id may be downloaded: nothing to refuse


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda d: "random:no-such-config", r"names no random config: random model 'no-such-config' is neither"),
        (lambda d: f"random:{d}", r"names no random config"),
        (lambda d: str(d), r"is a folder without config.json"),
        (lambda d: str(d / "file.txt"), r"is not a model folder"),
        (lambda d: "./missing/folder", r"is not a model folder"),
        (lambda d: "not a hub id!", r"is not a model folder or a hub id"),
    ],
)
def test_check_spec_refuses_what_names_nothing_loadable(tmp_path: Path, make, pattern: str) -> None:
    (tmp_path / "file.txt").write_text("x")
    spec = make(tmp_path)
    with pytest.raises(ConfigError, match=pattern) as info:
        check_spec(spec)
    assert repr(spec) in str(info.value) and ACCEPTED_FORMS in str(info.value)


def test_offline_a_hub_id_must_be_in_the_local_cache(offline: Path) -> None:
    from hub_cache import lay_out_hub_cache

    with pytest.raises(ConfigError, match=r"'org/absent' is not in the local Hugging Face cache at revision 'main' and "
                                          r"HF_HUB_OFFLINE=1 forbids downloading it: .* holds no revision"):
        check_spec("org/absent")
    model = offline.parent / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    lay_out_hub_cache(model, offline, "org/present", "c" * 40, refs=("main", "stable"))
    for spec in ("org/present", "org/present@stable", f"org/present@{'c' * 40}"):
        check_spec(spec)
    with pytest.raises(ConfigError, match=rf"refs \[main -> {'c' * 40}, stable -> {'c' * 40}\] and snapshots"):
        check_spec("org/present@v2")


def test_specs_are_checked_without_torch(tmp_path: Path) -> None:
    code = ("import sys\nfrom junkdna_core.models.specs import check_spec\n"
            "for spec in ('smollm2', 'random:tiny-llama', 'org/name@v1'):\n    check_spec(spec)\n"
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, sorted(sys.modules)\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
