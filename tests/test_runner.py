"""The whole compression pipeline on tiny random-weight transformers (no download, seconds)."""

from __future__ import annotations

import copy

import pytest
import torch
import transformers

from junkdna_core.compress.registry import available_methods, get_method
from junkdna_core.compress.runner import compress_model
from junkdna_core.compress.targets import find_blocks, find_targets
from junkdna_core.config.errors import ConfigError

LEVELS = {"magnitude": 0.5, "random": 0.5, "nm": 0.5, "wanda": 0.5, "sparsegpt": 0.5,
          "rtn": 4, "gptq": 4, "lowrank": 0.5}
OPTIONS = {"rtn": {"group_size": 16}, "gptq": {"group_size": 16}}


def test_every_builtin_method_is_covered_here():
    assert set(LEVELS) <= set(available_methods())


def test_targets_are_the_block_linears_only(tiny_llama):
    names = [t.name for t in find_targets(tiny_llama)]
    assert len(names) == 2 * 7
    assert all(n.startswith("model.layers.") for n in names)
    assert "lm_head" not in names and "model.embed_tokens" not in names
    with_head = [t.name for t in find_targets(tiny_llama, include_head=True, include_embeddings=True)]
    # tied or not, embedding and head each appear once at most
    assert "model.embed_tokens" in with_head
    assert len(with_head) == len(set(with_head))
    prefix, blocks = find_blocks(tiny_llama)
    assert prefix == "model.layers" and len(blocks) == 2


@pytest.mark.parametrize("name", sorted(LEVELS))
def test_pipeline_compresses_a_tiny_llama(name, tiny_llama, calibration_ids):
    dense = copy.deepcopy(tiny_llama)
    method = get_method(name).at_level(LEVELS[name], **OPTIONS.get(name, {}))
    report = compress_model(tiny_llama, method, calibration=calibration_ids, progress=False)
    assert report.method["method"] == name
    assert len(report.targets) == 14
    with torch.no_grad():
        logits = tiny_llama(calibration_ids).logits
        dense_logits = dense(calibration_ids).logits
    assert torch.isfinite(logits).all()
    assert not torch.allclose(logits, dense_logits)  # something was actually compressed
    if method.family == "pruning":
        assert report.sparsity.overall == pytest.approx(0.5, abs=1e-9)
        for target, mask in report.masks.items():
            weight = tiny_llama.get_submodule(target).weight
            assert torch.all(weight[~mask] == 0)
    else:
        assert report.masks == {}
    # the embeddings and head are untouched
    assert torch.equal(tiny_llama.model.embed_tokens.weight, dense.model.embed_tokens.weight)


def test_calibrated_method_without_calibration_fails_before_compute(tiny_llama):
    before = copy.deepcopy(tiny_llama.state_dict())
    with pytest.raises(ConfigError, match="needs calibration"):
        compress_model(tiny_llama, get_method("wanda").at_level(0.5), progress=False)
    with pytest.raises(ConfigError, match="token ids"):
        compress_model(tiny_llama, get_method("sparsegpt").at_level(0.5), calibration=torch.rand(4, 8),
                       progress=False)
    after = tiny_llama.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize(("name", "level", "options", "message"), [
    ("gptq", 4, {"group_size": 24}, "does not divide"),
    ("rtn", 4, {"group_size": 24}, "does not divide"),
    ("wanda", 0.4, {"m": 5}, "multiple of 5"),
    ("sparsegpt", 0.4, {"m": 5}, "multiple of 5"),
])
def test_impossible_shape_fails_before_any_compute(tiny_llama, calibration_ids, monkeypatch, name, level, options,
                                                   message):
    from junkdna_core.compress import runner

    def no_calibration_pass(*args, **kwargs):
        raise AssertionError("the calibration pass ran before the shapes were checked")

    monkeypatch.setattr(runner, "catch_block_inputs", no_calibration_pass)
    before = copy.deepcopy(tiny_llama.state_dict())
    with pytest.raises(ConfigError, match=message):
        compress_model(tiny_llama, get_method(name).at_level(level, **options), calibration=calibration_ids,
                       progress=False)
    after = tiny_llama.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_global_magnitude_over_a_gpt2_conv1d_model():
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=64, n_embd=32, n_layer=2, n_head=4, n_positions=32,
                                     bos_token_id=0, eos_token_id=0)
    model = transformers.GPT2LMHeadModel(config).eval()
    report = compress_model(model, get_method("magnitude").at_level(0.3, scope="global"), progress=False)
    assert len(report.targets) == 2 * 4  # c_attn, c_proj, c_fc, mlp.c_proj per block
    assert report.sparsity.zeros == round(0.3 * report.sparsity.total)  # exact over all layers together
    for name, mask in report.masks.items():
        assert mask.shape == model.get_submodule(name).weight.shape  # stored (in, out) layout


def test_calibrated_method_on_a_bert_encoder():
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=64, max_position_embeddings=32)
    model = transformers.BertModel(config).eval()
    ids = torch.randint(0, 64, (4, 12), generator=torch.Generator().manual_seed(0))
    report = compress_model(model, get_method("wanda").at_level(0.5), calibration=ids, progress=False)
    assert report.sparsity.overall == pytest.approx(0.5)
    assert model(ids).last_hidden_state.isfinite().all()
