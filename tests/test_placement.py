"""Models larger than a device: the device-map decision with faked device memory, and the split path on CPU.

On this CPU-only machine a split model is spread over the host and disk by the
same accelerate code that spreads a 70B model over GPUs, host and disk on a
GPU node; the scorer and fine-tuning must give the same results on it.
"""

from __future__ import annotations

import json
import struct
from math import prod
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

from junkdna_core.config.errors import ConfigError
from junkdna_core.models.loading import LoadedModel, load_model
from junkdna_core.models.placement import (
    PlacementRequest,
    plan_placement,
    rebased_device_map,
    training_device_map,
    weights_bytes,
)
from junkdna_core.models.synthetic import tiny_llama_config
from junkdna_core.scoring.engine import perplexity, score_continuations
from junkdna_core.scoring.generation import generate
from junkdna_core.storage.cache import ArtifactCache

torch.set_num_threads(1)
GIB = 2**30
REQUESTS = [("The capital of France is", [" Paris", " London", " a city"]),
            ("Two plus two equals", [" four", " five"]), ("", [" Hello world"])]


def fake_gpus(monkeypatch: pytest.MonkeyPatch, free: list[int]) -> None:
    """A machine with one CUDA device per entry of ``free`` (its free bytes)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(free))
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free[torch.device(device).index], 80 * GIB))


def fake_host_memory(monkeypatch: pytest.MonkeyPatch, available: int) -> None:
    monkeypatch.setattr(psutil, "virtual_memory", lambda: SimpleNamespace(available=available))


def cuda(*indices: int) -> tuple[torch.device, ...]:
    return tuple(torch.device("cuda", i) for i in indices)


def test_weights_that_fit_stay_on_the_first_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_gpus(monkeypatch, [10 * GIB, 10 * GIB])
    fake_host_memory(monkeypatch, 64 * GIB)
    placement = plan_placement(7 * GIB, cuda(0, 1), torch.bfloat16)
    assert (placement.strategy, placement.device, placement.dtype) == ("single", "cuda:0", "bfloat16")
    assert placement.budgets == {"cuda:0": 8 * GIB, "cuda:1": 8 * GIB, "cpu": int(0.8 * 64 * GIB)}
    assert placement.reason.startswith("fits: 7.0 GiB of bfloat16 weights, 8.0 GiB budget on cuda:0 (80% of its free")


def test_weights_that_do_not_fit_are_split_and_say_why(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_gpus(monkeypatch, [10 * GIB, 10 * GIB])
    fake_host_memory(monkeypatch, 64 * GIB)
    placement = plan_placement(12 * GIB, cuda(0, 1), torch.bfloat16)
    assert (placement.strategy, placement.device) == ("split", "cuda:0")
    assert "does not fit: 12.0 GiB" in placement.reason and "spread over cuda:0, cuda:1, cpu and disk" in placement.reason
    given = plan_placement(12 * GIB, cuda(0, 1), torch.bfloat16, max_memory={"cuda:0": 13 * GIB})
    assert given.strategy == "single" and "(--jd-max-memory)" in given.reason
    assert plan_placement(12 * GIB, cuda(0, 1), torch.bfloat16, "never").strategy == "single"
    assert plan_placement(1, cuda(0, 1), torch.bfloat16, "always").strategy == "split"
    with pytest.raises(ConfigError, match="device-map policy must be one of auto, never, always; got 'sometimes'"):
        plan_placement(1, cuda(0), torch.bfloat16, "sometimes")  # type: ignore[arg-type]


def test_a_split_fills_the_gpus_in_order_then_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """The device map of a real config, with faked device memory: blocks in order over cuda:0, cuda:1, cpu."""
    config = tiny_llama_config(1024, num_hidden_layers=8, tie_word_embeddings=False)
    request = PlacementRequest(cuda(0, 1), "auto", {"cuda:0": 300_000, "cuda:1": 300_000, "cpu": 10**9})
    fake_gpus(monkeypatch, [GIB, GIB])
    placement = request.plan(AutoModelForCausalLM, config, torch.float32)
    assert (placement.strategy, placement.device) == ("split", "cuda:0")
    devices = list(placement.device_map.values())
    assert devices[0] == "cuda:0" and {"cuda:0", "cuda:1", "cpu"} <= set(devices)
    layers = [placement.device_map[f"model.layers.{i}"] for i in range(8)]
    assert layers == sorted(layers, key=["cuda:0", "cuda:1", "cpu", "disk"].index)  # in order, never back


def test_weights_bytes_are_what_the_files_hold(tmp_path: Path) -> None:
    config = tiny_llama_config(1024, tie_word_embeddings=True)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(tmp_path)
    with open(tmp_path / "model.safetensors", "rb") as handle:
        header = json.loads(handle.read(struct.unpack("<Q", handle.read(8))[0]))
    stored = sum(prod(v["shape"]) * 4 for k, v in header.items() if k != "__metadata__")
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    plan = PlacementRequest((torch.device("cpu"),), "never").plan
    assert plan(AutoModelForCausalLM, config, torch.float32).weights_bytes == weights_bytes(model) == stored + buffers
    assert plan(AutoModelForCausalLM, config, torch.bfloat16).weights_bytes == stored // 2 + buffers  # float32 buffers


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, LoadedModel]:
    """random:tiny-llama saved as a folder, and the model itself on one device."""
    root = tmp_path_factory.mktemp("placement")
    original = load_model("random:tiny-llama", device="cpu", cache=ArtifactCache(root / "cache"))
    original.model.save_pretrained(root / "tiny")
    original.tokenizer.save_pretrained(root / "tiny")
    return root / "tiny", original


def _split(saved: tuple[Path, LoadedModel], cache: ArtifactCache, **options: object) -> LoadedModel:
    folder, original = saved
    budget = int(0.9 * original.placement.weights_bytes)
    return load_model(str(folder), device="cpu", cache=cache, **({"max_memory": {"cpu": budget}} | options))


def test_a_model_larger_than_the_host_budget_is_split_and_scores_the_same(saved, tmp_path: Path) -> None:
    _, original = saved
    split = _split(saved, ArtifactCache(tmp_path))
    assert split.placement.strategy == "split" and "disk" in split.placement.device_map.values()
    assert "does not fit" in split.placement.reason and split.fingerprint == original.fingerprint
    assert split.model.hf_device_map == split.placement.device_map
    for reuse_prefix in (True, False):  # the packed-attention path and one sequence per option
        expected = score_continuations(original.model, original.tokenizer, REQUESTS, progress=False,
                                       reuse_prefix=reuse_prefix)
        assert score_continuations(split.model, split.tokenizer, REQUESTS, progress=False,
                                   reuse_prefix=reuse_prefix) == expected
    texts = ["A short text to measure.", "Another one, a little longer than the first."]
    assert perplexity(split.model, split.tokenizer, texts, progress=False) == perplexity(
        original.model, original.tokenizer, texts, progress=False)
    prompts = ["Once upon a time", "The answer is"]
    assert generate(split.model, split.tokenizer, prompts, max_new_tokens=4, progress=False) == generate(
        original.model, original.tokenizer, prompts, max_new_tokens=4, progress=False)


def test_free_host_memory_decides_the_split_and_the_record_says_so(saved, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """No option given: the faked free memory of the device (here the host) is what makes the model split."""
    folder, original = saved
    fake_host_memory(monkeypatch, original.placement.weights_bytes)  # 80% of it is the weights' budget
    cache = ArtifactCache(tmp_path)
    load_model(str(folder), device="cpu", cache=cache)  # reads the files once and fingerprints them
    lazy = load_model(str(folder), device="cpu", cache=cache)
    assert "not loaded" in repr(lazy) and lazy.placement is None and lazy.placement_record()["placement"] is None
    before = lazy.describe()
    assert lazy.model.hf_device_map  # read on first use, split then
    assert lazy.describe() == before  # what claim records hold does not depend on whether the weights were read
    info = lazy.placement_record()
    assert (info["device"], info["dtype"], info["fingerprint"]) == ("cpu", "float32", original.fingerprint)
    assert info["placement"]["strategy"] == "split" and "80% of its free memory" in info["placement"]["reason"]
    json.dumps(info)


def test_never_keeps_one_device(saved, tmp_path: Path) -> None:
    single = _split(saved, ArtifactCache(tmp_path), device_map="never")
    assert single.placement.strategy == "single" and not getattr(single.model, "hf_device_map", None)


def test_fine_tuning_refuses_weights_it_could_not_update(saved, tmp_path: Path) -> None:
    from junkdna_core.study.finetune import build_classifier

    split = _split(saved, ArtifactCache(tmp_path))
    with pytest.raises(ConfigError, match=r"offloaded to the host or disk, and fine-tuning cannot update"):
        build_classifier(split, 2, seed=0)
    assert training_device_map(saved[1].model, "tiny") is None


def test_a_classifier_keeps_the_backbone_devices() -> None:
    """The sequence-classification copy of a model spread over two GPUs keeps each block where it was."""
    config = tiny_llama_config(128, num_hidden_layers=2, tie_word_embeddings=False, pad_token_id=0)
    with torch.device("meta"):
        source = AutoModelForCausalLM.from_config(config)
        target = AutoModelForSequenceClassification.from_config(config)
    mapping = {"model.embed_tokens": "cuda:0", "model.layers.0": "cuda:0", "model.layers.1": "cuda:1",
               "model.norm": "cuda:1", "model.rotary_emb": "cuda:1", "lm_head": "cuda:1"}
    assert rebased_device_map(mapping, source, target) == {
        "model.embed_tokens": "cuda:0", "model.layers.0": "cuda:0", "model.layers.1": "cuda:1",
        "model.norm": "cuda:1", "model.rotary_emb": "cuda:1", "score": "cuda:1"}


@pytest.mark.parametrize(("method", "level", "options"), [("magnitude", 0.5, {}), ("wanda", 0.5, {}),
                                                          ("gptq", 4, {"group_size": 16})])
def test_compressing_a_model_offloaded_by_its_device_map_is_a_config_error(saved, tmp_path: Path, method: str,
                                                                           level: float, options: dict) -> None:
    from junkdna_core.compress.registry import get_method
    from junkdna_core.study.artifacts import calibration_batch, compressed_model

    cache = ArtifactCache(tmp_path)
    split = _split(saved, cache)  # forced split on the host: part of the model offloaded to disk
    assert "disk" in split.placement.device_map.values()
    compressor = get_method(method).at_level(level, **options)
    calibration = calibration_batch(split.tokenizer, samples=2, tokens=8) if compressor.needs_calibration else None
    with pytest.raises(ConfigError, match="offloaded to the host or disk .* compression needs every weight"):
        compressed_model(split, compressor, cache=cache, calibration=calibration, progress=False)
    assert not [e for e in cache.entries() if e.kind == "compressed"]  # nothing was built or stored
