"""The CUDA paths on a tiny random model, in float32 and bfloat16: ``pytest tests -m gpu`` on a GPU node.

The same code as on the CPU, with the device chosen as a user chooses it (a
``--jd-device`` string): scoring (the packed-attention path and one sequence per
option) against the CPU, every built-in compression method through the
artifact cache, fine-tuning a few steps, a model split over GPU and host, and
one GPU per xdist worker. Each test is skipped, with the reason, without CUDA.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch

from junkdna_core.compress.registry import available_methods, get_method
from junkdna_core.config.budgets import get_budget
from junkdna_core.models.devices import input_device
from junkdna_core.models.loading import LoadedModel, load_model
from junkdna_core.models.synthetic import tiny_llama_config
from junkdna_core.scoring.engine import perplexity, score_continuations
from junkdna_core.scoring.generation import generate
from junkdna_core.storage.cache import ArtifactCache
from junkdna_core.study.artifacts import calibration_batch, compressed_model
from junkdna_core.study.finetune import Example, FinetuneConfig, build_classifier, evaluate, finetune, transfer_masks

DEVICE = "cuda"
CUDA = torch.cuda.is_available()
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not CUDA, reason="needs a CUDA device; on a GPU node run pytest tests -m gpu"),
]
DTYPES = [
    "float32",
    pytest.param("bfloat16", marks=pytest.mark.skipif(
        CUDA and not torch.cuda.is_bf16_supported(including_emulation=False),
        reason="this CUDA device does not support bfloat16")),
]
BUILT_IN = sorted(name for name, cls in available_methods().items() if cls.__module__.startswith("junkdna_core."))
REQUESTS = [("Question: what do plants absorb from the air?\nAnswer:", [" carbon dioxide", " oxygen", " water"]),
            ("The capital of France is", [" Paris", " London"]), ("", [" An empty context"])]
TRAIN = [Example(f"t{i}", ((f"it was {w} indeed", None),), int(w in ("good", "great", "nice")))
         for i, w in enumerate(["good", "great", "fine", "bad", "awful", "poor", "nice", "sad"] * 2)]
# Per-token log-likelihood differences allowed against the float32 CPU reference.
TOLERANCE = {"float32": 1e-3, "bfloat16": 0.1}


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> ArtifactCache:
    return ArtifactCache(tmp_path_factory.mktemp("gpu-cache"))


@pytest.fixture(scope="module")
def reference(cache: ArtifactCache) -> LoadedModel:
    """random:tiny-llama on the CPU in float32: what every CUDA result is compared with."""
    return load_model("random:tiny-llama", device="cpu", dtype="float32", cache=cache)


def _on_gpu(spec: str, dtype: str, cache: ArtifactCache, **options: object) -> LoadedModel:
    loaded = load_model(spec, device=DEVICE, dtype=dtype, cache=cache, **options)
    assert input_device(loaded.model).type == torch.device(DEVICE).type and loaded.dtype == dtype
    return loaded


def _close(got: list, expected: list, dtype: str) -> None:
    for row, ref in zip(got, expected, strict=True):
        for score, want in zip(row, ref, strict=True):
            assert score.tokens == want.tokens and math.isfinite(score.loglik)
            assert abs(score.loglik - want.loglik) <= TOLERANCE[dtype] * want.tokens, (score, want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_scoring_on_cuda_matches_the_cpu(dtype: str, reference: LoadedModel, cache: ArtifactCache) -> None:
    gpu = _on_gpu("random:tiny-llama", dtype, cache)
    expected = score_continuations(reference.model, reference.tokenizer, REQUESTS, progress=False, reuse_prefix=False)
    for reuse_prefix in (True, False):  # the packed-attention path, and one sequence per option
        _close(score_continuations(gpu.model, gpu.tokenizer, REQUESTS, progress=False, reuse_prefix=reuse_prefix,
                                   batch_size=2), expected, dtype)
    texts = ["A first text to measure perplexity on.", "A second one."]
    cpu_ppl = perplexity(reference.model, reference.tokenizer, texts, progress=False)
    assert abs(math.log(perplexity(gpu.model, gpu.tokenizer, texts, progress=False)) - math.log(cpu_ppl)) <= \
        TOLERANCE[dtype]
    assert len(generate(gpu.model, gpu.tokenizer, ["Once upon a time"], max_new_tokens=4, progress=False)) == 1


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", BUILT_IN)
def test_every_built_in_method_compresses_on_cuda(method: str, dtype: str, cache: ArtifactCache) -> None:
    dense = _on_gpu("random:tiny-llama", dtype, cache)
    cls = get_method(method)
    levels = cls.default_levels(get_budget("smoke"))
    fits = {"group_size": 16} if "group_size" in {f.name for f in dataclasses.fields(cls.params_type)} else {}
    configured = cls.at_level(levels[len(levels) // 2], **fits)  # groups that divide the tiny model's 32 inputs
    calibration = calibration_batch(dense.tokenizer, samples=4, tokens=32) if configured.needs_calibration else None
    built = compressed_model(dense, configured, cache=cache, calibration=calibration, progress=False)
    again = compressed_model(dense, configured, cache=cache, calibration=calibration, progress=False)  # from the cache
    for name in built.report["targets"]:
        weight = built.model.get_submodule(name).weight
        assert weight.device.type == torch.device(DEVICE).type and weight.dtype == getattr(torch, dtype)
        assert torch.isfinite(weight).all() and torch.equal(weight, again.model.get_submodule(name).weight)
    if cls.family == "pruning":
        assert abs(built.report["sparsity"] - configured.level) < 0.02, built.report["sparsity"]
    scores = score_continuations(built.model, dense.tokenizer, REQUESTS, progress=False)
    assert all(math.isfinite(s.loglik) for row in scores for s in row)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fine_tuning_a_few_steps_on_cuda_holds_the_mask(dtype: str, cache: ArtifactCache) -> None:
    encoder = _on_gpu("random:tiny-bert", dtype, cache)
    classifier = build_classifier(encoder, 2, seed=0)
    assert input_device(classifier).type == torch.device(DEVICE).type
    masks = transfer_masks(classifier, get_method("magnitude").at_level(0.5))
    config = FinetuneConfig(epochs=1, batch_size=4, learning_rate=5e-3, max_length=16, min_steps=4)
    losses = finetune(classifier, encoder.tokenizer, TRAIN, config, mode="sparse", masks=masks, seed=0)
    assert len(losses) == 4 and all(math.isfinite(x) for x in losses)
    modules = dict(classifier.named_modules())
    assert all(torch.all(modules[name].weight[~mask.to(DEVICE)] == 0) for name, mask in masks.items())
    scored = evaluate(classifier, encoder.tokenizer, TRAIN, max_length=16)
    assert len(scored.correct) == len(TRAIN) and math.isfinite(scored.loss)


def test_a_model_larger_than_its_gpu_budget_is_split_over_gpu_and_host(cache: ArtifactCache, tmp_path: Path) -> None:
    """Blocks larger than in tiny-llama (whose embedding is nearly all of it), so that some fit the GPU's budget."""
    config = tiny_llama_config(49152, hidden_size=64, intermediate_size=4096, num_hidden_layers=4,
                               tie_word_embeddings=False)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.json").write_text(json.dumps(config.to_dict()))
    reference = load_model(f"random:{tmp_path / 'config'}", device="cpu", dtype="float32", cache=cache)
    reference.model.save_pretrained(tmp_path / "model")
    reference.tokenizer.save_pretrained(tmp_path / "model")
    split = _on_gpu(str(tmp_path / "model"), "float32", cache, max_memory={"cuda:0": 30 * 2**20})
    assert split.placement.strategy == "split" and split.placement.device == "cuda:0"
    assert {"cuda:0", "cpu"} <= set(split.placement.device_map.values()), split.placement.device_map
    assert split.fingerprint == reference.fingerprint
    expected = score_continuations(reference.model, reference.tokenizer, REQUESTS, progress=False)
    _close(score_continuations(split.model, split.tokenizer, REQUESTS, progress=False), expected, "float32")


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_each_xdist_worker_loads_its_model_on_its_own_gpu(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        def test_model(jd_model, jd_session, jd_record):
            jd_record({"claim": "model", "worker": jd_session.worker, **jd_model.describe()})
    """)
    results = pytester.path / "out"
    pytester.runpytest_subprocess("--jd-model", "random:tiny-llama", "--jd-results", str(results), "-n", "2",
                                  "--dist", "each").assert_outcomes(passed=2)
    run = json.loads(next(results.glob("run-*.json")).read_text())
    assert {r["worker"]: r["device"] for r in run["records"]} == {0: "cuda:0", 1: "cuda:1"}
    assert {m["worker"]: m["placement"]["device"] for m in run["environment"]["models"]} == {0: "cuda:0", 1: "cuda:1"}
