"""`junkdna export`: a compressed model from the cache as a folder transformers (and vLLM) load, with the weights
junkdna scored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import transformers

from junkdna_core.cli import main
from junkdna_core.compress.registry import get_method
from junkdna_core.config.errors import ConfigError
from junkdna_core.models.loading import load_model
from junkdna_core.storage.cache import ArtifactCache
from junkdna_core.study.artifacts import compressed_model
from junkdna_core.study.model_export import PROVENANCE_FILE, export_compressed

IDS = torch.tensor([[1, 5, 9, 20, 7]])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    cache = ArtifactCache(tmp_path_factory.mktemp("cache"))
    return load_model("random:tiny-llama", device="cpu", cache=cache), cache


def _scored(tiny, method) -> torch.nn.Module:
    dense, cache = tiny
    return compressed_model(dense, method, cache=cache, progress=False).model


def _same_weights(ours: torch.nn.Module, theirs: torch.nn.Module) -> None:
    with torch.no_grad():  # first: a compressed-tensors model decompresses itself on its first forward
        assert torch.equal(ours(IDS).logits, theirs(IDS).logits)
    loaded = theirs.state_dict()
    for key, value in ours.state_dict().items():
        assert torch.equal(loaded[key], value), key


def test_pruned_model_exports_as_a_plain_safetensors_folder(tiny, tmp_path):
    method = get_method("magnitude").at_level(0.5)
    report = export_compressed(tiny[0], method, tmp_path / "out", cache=tiny[1], progress=False)
    assert report.format == "dense" and "bitmask" in report.reason
    assert {"config.json", "model.safetensors", "tokenizer.json", PROVENANCE_FILE} <= set(report.files)
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert "quantization_config" not in config  # transformers alone loads it
    _same_weights(_scored(tiny, method), transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "out"))
    provenance = json.loads((tmp_path / "out" / PROVENANCE_FILE).read_text())
    assert provenance["method"] == method.describe() and provenance["model_fingerprint"] == tiny[0].fingerprint
    assert provenance["format"] == "dense" and {v["form"] for v in provenance["layers"].values()} == {"bitmask"}
    assert transformers.AutoTokenizer.from_pretrained(tmp_path / "out")("hello")["input_ids"]


@pytest.mark.parametrize("symmetric", [True, False])
def test_quantized_model_exports_as_compressed_tensors_pack_quantized(tiny, tmp_path, symmetric):
    method = get_method("rtn").at_level(4, group_size=16, symmetric=symmetric)
    report = export_compressed(tiny[0], method, tmp_path / "out", cache=tiny[1], progress=False)
    assert report.format == "compressed-tensors"
    config = json.loads((tmp_path / "out" / "config.json").read_text())["quantization_config"]
    group = config["config_groups"]["group_0"]
    assert config["quant_method"] == "compressed-tensors" and config["format"] == group["format"] == "pack-quantized"
    assert group["weights"] | {"observer_kwargs": {}} == {
        "num_bits": 4, "type": "int", "symmetric": symmetric, "group_size": 16, "strategy": "group",
        "block_structure": None, "dynamic": False, "actorder": None, "observer": "minmax", "observer_kwargs": {}}
    assert config["ignore"] == ["lm_head"] and config["quantization_status"] == "compressed"
    from safetensors import safe_open

    with safe_open(str(tmp_path / "out" / "model.safetensors"), "pt") as f:
        names = {k for k in f.keys() if k.startswith("model.layers.0.mlp.down_proj.")}  # noqa: SIM118
    assert names == {f"model.layers.0.mlp.down_proj.{s}" for s in
                     ("weight_packed", "weight_scale", "weight_shape", *(() if symmetric else ("weight_zero_point",)))}
    ct = pytest.importorskip("compressed_tensors")
    from compressed_tensors.quantization import QuantizationConfig

    QuantizationConfig.model_validate(config)  # compressed-tensors reads the config as written
    if not symmetric:
        pytest.skip(f"compressed-tensors {ct.__version__} + transformers initialise asymmetric pack-quantized zero "
                    "points unpacked and refuse their own packed checkpoints; the layers decompress exactly "
                    "(test_artifact_format) and vLLM reads the packed layout")
    _same_weights(_scored(tiny, method), transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "out"))


def test_auto_falls_back_to_dense_and_compressed_tensors_refuses_what_it_cannot_hold(tiny, tmp_path):
    lowrank = get_method("lowrank").at_level(0.25)
    report = export_compressed(tiny[0], lowrank, tmp_path / "a", cache=tiny[1], progress=False)
    assert report.format == "dense" and "low-rank" in report.reason
    with pytest.raises(ConfigError, match="cannot be exported as compressed-tensors.*--format dense"):
        export_compressed(tiny[0], lowrank, tmp_path / "b", cache=tiny[1], export_format="compressed-tensors")
    three_bits = get_method("rtn").at_level(3, group_size=16)
    report = export_compressed(tiny[0], three_bits, tmp_path / "c", cache=tiny[1], progress=False)
    assert report.format == "dense" and "3-bit" in report.reason
    forced = export_compressed(tiny[0], get_method("rtn").at_level(4, group_size=16), tmp_path / "d", cache=tiny[1],
                               export_format="dense", progress=False)
    assert forced.format == "dense"
    _same_weights(_scored(tiny, get_method("rtn").at_level(4, group_size=16)),
                  transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "d"))


def test_a_non_empty_folder_is_refused_before_anything_is_built(tiny, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        export_compressed(tiny[0], get_method("magnitude").at_level(0.3), tmp_path / "out", cache=tiny[1])
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]


def test_cli_export_uses_the_runs_cache_entry(tiny, tmp_path, capsys):
    cache = tiny[1]
    method = get_method("rtn").at_level(4, group_size=16)
    _scored(tiny, method)  # built as a run would build it
    before = {e.key for e in cache.entries()}
    code = main(["export", "--model", "random:tiny-llama", "--method", "rtn", "--level", "4", "--option",
                 "group_size=16", "--device", "cpu", "--cache", str(cache.root), "--out", str(tmp_path / "out")])
    assert code == 0
    assert "as compressed-tensors" in capsys.readouterr().out
    assert {e.key for e in cache.entries()} == before  # found, not rebuilt
    assert Path(tmp_path / "out" / "model.safetensors").is_file()


@pytest.mark.parametrize(("argv", "message"), [
    (["--method", "rtn", "--level", "4", "--option", "group_size"], "NAME=VALUE"),
    (["--method", "rtn", "--level", "four"], "finite number"),
    (["--method", "rtn", "--level", "4", "--format", "gguf"], "auto, dense, compressed-tensors"),
])
def test_cli_export_rejects_bad_options_before_any_work(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        main(["export", *argv, "--out", str(tmp_path / "out")])
    assert info.value.code == 2 and message in capsys.readouterr().err
