"""`junkdna check-model`: a model's conventions and the checks that say whether the suite scores it right."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from junkdna_core.cli import main
from junkdna_core.config.errors import ConfigError
from junkdna_core.models.loading import LoadedModel, load_model
from junkdna_core.scoring import engine
from junkdna_core.scoring.model_checks import check_model, rounding_tolerance
from junkdna_core.storage.cache import ArtifactCache


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> ArtifactCache:
    return ArtifactCache(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def tiny(cache) -> LoadedModel:
    return load_model("random:tiny-llama", device="cpu", cache=cache)


def _with(tiny: LoadedModel, *, model=None, tokenizer=None) -> LoadedModel:
    return LoadedModel.of("variant", "test", "causal", model or tiny.model, tokenizer or tiny.tokenizer)


def _check(report, name):
    return next(check for check in report.checks if check.name == name)


def test_a_model_the_suite_scores_right_passes_every_check(tiny, cache, capsys, tmp_path):
    out = tmp_path / "report.json"
    assert main(["check-model", "random:tiny-llama", "--settings", "setting2,setting5", "--items", "6",
                 "--json", str(out), "--cache", str(cache.root)]) == 0
    text = capsys.readouterr().out
    for line in ("PASS  bos ", "PASS  packed-scoring ", "PASS  batch-size ", "PASS  positions "):
        assert line in text
    assert "LlamaForCausalLM, 1,591,456 parameters, float32 on cpu" in text and "attention  sdpa; 2 layers" in text
    assert "every check passes" in text
    report = json.loads(out.read_text())
    assert report["passed"] and report["facts"]["tokenizer"]["adds_bos"] is False
    assert report["facts"]["positions"] == 128 and [c["name"] for c in report["checks"]] == [
        "bos", "packed-scoring", "batch-size", "positions"]


def test_a_setting_longer_than_the_model_fails_naming_it(tiny, cache, capsys):
    assert main(["check-model", "random:tiny-llama", "--settings", "setting2,setting3", "--items", "6",
                 "--cache", str(cache.root)]) == 1
    text = capsys.readouterr().out
    assert "FAIL  positions" in text and "setting3 cannot be scored on this model" in text
    assert "-k 'not setting3'" in text and "FAILED: positions" in text


def test_a_tokenizer_that_adds_bos_gets_it_and_never_drops_it(tiny, cache):
    tokenizer = copy.deepcopy(tiny.tokenizer)
    tokenizer.add_bos_token = True
    bos = tokenizer.bos_token_id
    report = check_model(_with(tiny, tokenizer=tokenizer), settings=["setting2"], items=4, cache=cache)
    assert report.passed and report.facts["tokenizer"]["prefix"] == [bos]
    assert f"(ids [{bos}]) (auto: what the tokenizer adds by default)" in _check(report, "bos").measured
    never = check_model(_with(tiny, tokenizer=tokenizer), bos="never", settings=["setting2"], items=4, cache=cache)
    assert "no special token (never" in _check(never, "bos").measured


def test_always_bos_without_a_bos_token_fails_saying_what_to_set(tiny, cache):
    tokenizer = copy.deepcopy(tiny.tokenizer)
    tokenizer.bos_token = None
    report = check_model(_with(tiny, tokenizer=tokenizer), bos="always", settings=["setting2"], items=4,
                         cache=cache)
    bos = _check(report, "bos")
    assert not report.passed and not bos.passed and "no BOS token" in bos.measured
    assert "--jd-bos auto" in bos.advice and "FAIL  bos" in report.render()


def test_attention_without_a_4d_mask_is_reported_with_what_to_set(tiny, cache):
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    AttentionInterface.register("jd_test_unmaskable", sdpa_attention_forward)  # works, but is not known to take one
    model = copy.deepcopy(tiny.model)
    model.set_attn_implementation("jd_test_unmaskable")
    report = check_model(_with(tiny, model=model), settings=["setting2"], items=4, cache=cache)
    packed = _check(report, "packed-scoring")
    assert not packed.passed and "'jd_test_unmaskable' takes no custom 4-D mask" in packed.measured
    assert "attn_implementation='sdpa'" in packed.advice
    assert _check(report, "batch-size").passed  # one sequence per option still scores right


def test_a_mask_that_lets_options_see_each_other_fails_packed_scoring(tiny, cache, monkeypatch):
    def causal_only(requests, dtype: torch.dtype, *, prefix: int = 0) -> torch.Tensor:  # each sees all before it
        width = max(len(r) for r in requests)
        allowed = torch.ones(width, prefix + width, dtype=torch.bool).tril(prefix)[None].expand(len(requests), -1, -1)
        return torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~allowed, torch.finfo(dtype).min)[:, None]

    monkeypatch.setattr(engine, "batch_mask", causal_only)
    report = check_model(tiny, settings=["setting2"], items=4, cache=cache)
    packed = _check(report, "packed-scoring")
    assert not packed.passed and "packed scoring is wrong" in packed.advice
    assert float(packed.measured.split("change ")[1].split()[0]) > 100 * rounding_tolerance(tiny.model)


def test_rounding_tolerance_follows_the_dtype_and_the_depth(tiny):
    eps = torch.finfo(torch.float32).eps
    assert rounding_tolerance(tiny.model) == pytest.approx(8 * eps * 2 ** 0.5)
    half = copy.deepcopy(tiny.model).to(torch.bfloat16)
    assert rounding_tolerance(half) == pytest.approx(8 * torch.finfo(torch.bfloat16).eps * 2 ** 0.5)


def test_bad_input_exits_2_before_any_check(capsys, tmp_path):
    assert main(["check-model", str(tmp_path / "no-such-model"), "--cache", str(tmp_path)]) == 2
    assert "model spec" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["check-model", "smollm2", "--bos", "sometimes"])
    assert exit_info.value.code == 2


def test_an_encoder_is_not_checked(cache):
    encoder = load_model("random:tiny-bert", device="cpu", cache=cache)
    with pytest.raises(ConfigError, match="checks causal language models; 'random-tiny-bert' is an encoder"):
        check_model(encoder, settings=["setting2"], items=4, cache=cache)
