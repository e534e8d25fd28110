"""The hub path, offline: a model laid out as a Hugging Face cache loads by id and by id@revision.

Each load runs in a subprocess whose environment points ``HF_HUB_CACHE`` at the
layout and sets ``HF_HUB_OFFLINE=1``, as a user on a cluster node without
internet would (huggingface_hub reads both when it is imported).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hub_cache import lay_out_hub_cache

from junkdna_core.models.fingerprints import model_fingerprint
from junkdna_core.models.loading import LoadedModel, load_model
from junkdna_core.storage.cache import ArtifactCache

torch.set_num_threads(1)
REPO = "jd-test/tiny"
FIRST, SECOND = "a" * 40, "b" * 40
LOAD = """
import json, sys
from junkdna_core.config.errors import ConfigError
from junkdna_core.models.loading import load_model
from junkdna_core.storage.cache import ArtifactCache
for spec in sys.argv[2:]:
    try:
        loaded = load_model(spec, device="cpu", cache=ArtifactCache(sys.argv[1]))
        print(json.dumps({"spec": spec, "repr": repr(loaded), **loaded.describe()}))
    except ConfigError as error:
        print(json.dumps({"spec": spec, "error": str(error)}))
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, LoadedModel, str]:
    """A hub cache holding jd-test/tiny at two commits (main: the second; tag v1: the first), and the first's model."""
    root = tmp_path_factory.mktemp("hub")
    original = load_model("random:tiny-llama", device="cpu", cache=ArtifactCache(root / "cache"))
    original.model.save_pretrained(root / "v1")
    original.tokenizer.save_pretrained(root / "v1")
    lay_out_hub_cache(root / "v1", root / "hub", REPO, FIRST, refs=("main", "v1"))
    with torch.no_grad():
        original.model.model.norm.weight.mul_(3)
    original.model.save_pretrained(root / "v2")
    original.tokenizer.save_pretrained(root / "v2")
    second = model_fingerprint(original.model)
    lay_out_hub_cache(root / "v2", root / "hub", REPO, SECOND, refs=("main",))  # a new commit on main
    first = load_model(str(root / "v1"), device="cpu", cache=ArtifactCache(root / "cache"))
    return root, first, second


def _load(root: Path, memo: Path, *specs: str) -> list[dict]:
    env = {**os.environ, "HF_HUB_CACHE": str(root / "hub"), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", LOAD, str(memo), *specs], env=env, check=True, capture_output=True,
                         text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_by_id_and_by_revision_with_id_revision_and_fingerprint_recorded(hub, tmp_path: Path) -> None:
    root, first, second = hub
    by_id, by_tag, by_commit, again = _load(root, tmp_path, REPO, f"{REPO}@v1", f"{REPO}@{FIRST}", f"{REPO}@v1")
    assert (by_id["source"], by_id["revision"], by_id["fingerprint"]) == (f"hf-hub:{REPO}@{SECOND}", SECOND, second)
    assert by_id["name"] == "tiny"
    for pinned in (by_tag, by_commit):
        assert (pinned["source"], pinned["revision"], pinned["fingerprint"]) == (
            f"hf-hub:{REPO}@{FIRST}", FIRST, first.fingerprint)
    assert (by_tag["name"], by_commit["name"]) == ("tiny-v1", f"tiny-{FIRST[:12]}")
    assert "not loaded" in again["repr"]  # the snapshot's files were fingerprinted once, for this revision
    assert again["revision"] == FIRST and again["dtype"] == "float32" and again["device"] == "cpu"


def test_an_unknown_revision_offline_names_what_the_cache_holds(hub, tmp_path: Path) -> None:
    root, _, _ = hub
    [result] = _load(root, tmp_path, f"{REPO}@v9")
    assert f"model spec '{REPO}@v9' is not in the local Hugging Face cache at revision 'v9'" in result["error"]
    assert f"refs [main -> {SECOND}, v1 -> {FIRST}] and snapshots [{FIRST}, {SECOND}]" in result["error"]
    [missing] = _load(root, tmp_path, "jd-test/absent")
    assert "holds no revision of 'jd-test/absent'" in missing["error"] and "'smollm2'" in missing["error"]


def test_the_plugin_runs_a_pinned_hub_model_and_records_it(hub, pytester: pytest.Pytester, monkeypatch) -> None:
    root, first, _ = hub
    monkeypatch.setenv("HF_HUB_CACHE", str(root / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pytester.makepyfile("""
        def test_model(jd_model, jd_record):
            jd_record({"claim": "model", **jd_model.describe()})
    """)
    results = pytester.path / "out"
    result = pytester.runpytest_subprocess("--jd-model", f"{REPO}@v1", "--jd-results", str(results), "-v")
    result.assert_outcomes(passed=1)
    run = json.loads(next(results.glob("run-*.json")).read_text())
    [record], [model] = run["records"], run["environment"]["models"]
    assert (record["source"], record["revision"], record["fingerprint"]) == (
        f"hf-hub:{REPO}@{FIRST}", FIRST, first.fingerprint)
    assert model == {**{k: v for k, v in record.items() if k not in ("claim", "test")}, "worker": 0,
                     "placement": model["placement"]}
    assert model["placement"]["strategy"] == "single"  # the decision, and why, in the run's environment
