"""One GPU per xdist worker, dtype ``auto``: tested on CPU with a faked CUDA device count, through the same code."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
import torch

from junkdna_core.config.errors import ConfigError
from junkdna_core.config.parsing import device_list, parse_device, training_dtype
from junkdna_core.models.devices import (
    devices_spec,
    dtype_name,
    resolve_device,
    resolve_dtype,
    visible_devices,
    worker_devices,
)


def fake_cuda(monkeypatch: pytest.MonkeyPatch, count: int, *, bf16: bool = True) -> None:
    """Make torch report ``count`` CUDA devices (bf16-capable or not) on this CPU-only machine."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: bf16)
    monkeypatch.setattr(torch.cuda, "device", lambda device: contextlib.nullcontext())


def cuda(*indices: int) -> tuple[torch.device, ...]:
    return tuple(torch.device("cuda", i) for i in indices)


def test_device_lists_parse_to_a_canonical_form() -> None:
    assert parse_device(" CUDA:0 , cuda:02") == "cuda:0,cuda:2"
    assert device_list("cuda:0,cuda:2") == ("cuda:0", "cuda:2")
    assert device_list("auto") == ("auto",)
    for bad in ("cuda:0,cuda:0", "cpu,cuda:0", "cuda:0,", "cuda,cuda:1", "gpu"):
        with pytest.raises(ConfigError, match=repr(bad)):
            parse_device(bad)


def test_visible_devices_on_a_four_gpu_node(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_cuda(monkeypatch, 4)
    assert visible_devices("auto") == visible_devices("cuda") == cuda(0, 1, 2, 3)
    assert visible_devices("cuda:0,cuda:2") == cuda(0, 2)
    assert visible_devices("cpu") == (torch.device("cpu"),)
    assert resolve_device("auto") == torch.device("cuda", 0)
    with pytest.raises(ConfigError, match=r"only 4 CUDA device\(s\) exist \(cuda:0..cuda:3\); cuda:5 is not"):
        visible_devices("cuda:1,cuda:5")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_without_cuda_auto_is_the_cpu_and_cuda_is_an_error() -> None:
    assert visible_devices("auto") == (torch.device("cpu"),)
    for device in ("cuda", "cuda:1", "cuda:0,cuda:1"):
        with pytest.raises(ConfigError, match="CUDA is not available"):
            visible_devices(device)


@pytest.mark.parametrize(
    ("gpus", "workers", "expected"),
    [
        (4, 4, [(0,), (1,), (2,), (3,)]),  # one GPU per worker
        (2, 5, [(0,), (1,), (0,), (1,), (0,)]),  # more workers than GPUs: k mod G
        (4, 2, [(0, 2), (1, 3)]),  # fewer workers: the spare GPUs hold what does not fit on the first
        (3, 1, [(0, 1, 2)]),  # no xdist: the first device, the others as spares
    ],
)
def test_worker_k_gets_device_k_mod_g(monkeypatch: pytest.MonkeyPatch, gpus: int, workers: int,
                                      expected: list[tuple[int, ...]]) -> None:
    fake_cuda(monkeypatch, gpus)
    assert [worker_devices("auto", k, workers) for k in range(workers)] == [cuda(*e) for e in expected]


def test_a_device_list_is_shared_out_in_its_order(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_cuda(monkeypatch, 4)
    assert [worker_devices("cuda:3,cuda:1", k, 3) for k in range(3)] == [cuda(3), cuda(1), cuda(3)]
    assert devices_spec(worker_devices("cuda:0,cuda:2", 0, 1)) == "cuda:0,cuda:2"
    assert visible_devices(devices_spec(cuda(1, 3))) == cuda(1, 3)
    with pytest.raises(ConfigError, match="worker index 2 is not in 0..1"):
        worker_devices("auto", 2, 2)


@pytest.mark.parametrize(("bf16", "expected"), [(True, torch.bfloat16), (False, torch.float16)])
def test_dtype_auto_follows_the_device(monkeypatch: pytest.MonkeyPatch, bf16: bool, expected: torch.dtype) -> None:
    fake_cuda(monkeypatch, 2, bf16=bf16)
    assert resolve_dtype("auto", torch.device("cuda", 1)) == expected
    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("float32", torch.device("cuda", 0)) == torch.float32  # an explicit dtype wins
    assert dtype_name(expected) == str(expected).removeprefix("torch.")


def test_fine_tuned_models_keep_float32_under_auto() -> None:
    assert training_dtype("auto") == "float32"
    assert training_dtype("bfloat16") == "bfloat16"


def test_the_resolved_dtype_is_in_every_cache_key_never_auto(tmp_path: Path) -> None:
    """The fingerprint memo and every artifact built from the model are keyed by float32 on the CPU, not 'auto'."""
    from junkdna_core.compress.registry import get_method
    from junkdna_core.data.settings import get_setting
    from junkdna_core.models.loading import load_model
    from junkdna_core.results.claims import provenance
    from junkdna_core.storage.cache import ArtifactCache
    from junkdna_core.study.sweep import run_study

    cache = ArtifactCache(tmp_path / "cache")
    original = load_model("random:tiny-llama", device="cpu", dtype="float32", cache=cache)
    original.model.save_pretrained(tmp_path / "tiny")
    original.tokenizer.save_pretrained(tmp_path / "tiny")
    auto = load_model(str(tmp_path / "tiny"), device="cpu", dtype="auto", cache=cache)
    assert (auto.dtype, auto.fingerprint) == ("float32", original.fingerprint)
    explicit = load_model(str(tmp_path / "tiny"), device="cpu", dtype="float32", cache=cache)
    assert "not loaded" in repr(explicit)  # the same memo entry: "auto" was resolved before keying it
    configs = [get_method("magnitude").at_level(level) for level in (0.3, 0.5, 0.7)]
    study = run_study(auto, get_setting("setting2"), configs, cache=cache, items=2, progress=False)
    info = provenance(study).more["model_info"]  # where the measurement ran, in every claim record
    assert (info["device"], info["dtype"], info["fingerprint"]) == ("cpu", "float32", original.fingerprint)
    assert auto.placement.strategy == "single" and auto.placement.reason.startswith("fits: ")
    manifests = [json.loads(p.read_text()) for p in (tmp_path / "cache").rglob("MANIFEST.json")]
    memo = [m for m in manifests if m.get("kind") == "model-fingerprint"]
    assert memo and all(m["parts"]["dtype"] == "float32" for m in memo)
    # (the --jd-bos policy "auto" may be in a key beside the prefix it decided: it is not a dtype)
    assert len(manifests) > 5 and not any('"dtype": "auto"' in json.dumps(m.get("parts")) for m in manifests)


FAKE_GPUS = """
import torch
torch.cuda.is_available = lambda: True
torch.cuda.device_count = lambda: {count}
torch.cuda.get_device_name = lambda device=None: "faked GPU"
"""
RECORD_DEVICE = """
def test_device(jd_device, jd_session, jd_record):
    jd_record({"claim": "device", "device": jd_device, "worker": jd_session.worker})
"""


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-n", "3", "--dist", "each"], {0: "cuda:0", 1: "cuda:1", 2: "cuda:0"}),
        (["-n", "2", "--dist", "each", "--jd-device", "cuda:1"], {0: "cuda:1", 1: "cuda:1"}),
        ([], {0: "cuda:0,cuda:1"}),
    ],
)
def test_each_xdist_worker_takes_its_gpu(pytester: pytest.Pytester, args: list[str], expected: dict[int, str]):
    """Through the plugin: worker gw<k> takes cuda:(k mod 2) on a faked 2-GPU machine; the record says which."""
    pytester.makeconftest(FAKE_GPUS.format(count=2))
    pytester.makepyfile(RECORD_DEVICE)
    results = pytester.path / "out"
    pytester.runpytest_subprocess("--jd-results", str(results), *args).assert_outcomes(passed=len(expected))
    [record] = results.glob("run-*.json")
    assert {r["worker"]: r["device"] for r in json.loads(record.read_text())["records"]} == expected
