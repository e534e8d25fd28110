"""The compact on-disk format of compressed models: each method's layers in their smallest exact form,
reloaded to the values that were built, the same bits at every load, and far smaller than dense weights."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import transformers
from safetensors import safe_open

from junkdna_core.compress.base import LayerResult, PruningMethod
from junkdna_core.compress.encodings import LowRankFactors, QuantizedWeight
from junkdna_core.compress.magnitude import MagnitudeParams
from junkdna_core.compress.registry import get_method
from junkdna_core.compress.runner import compress_model
from junkdna_core.compress.targets import find_targets
from junkdna_core.config.errors import CacheError, MethodError
from junkdna_core.study.artifact_format import WEIGHTS_FILE, load_compressed, read_layers, save_compressed

# method -> (level, options, the form every target layer is stored in)
CASES = {
    "magnitude": (0.5, {}, "bitmask"),
    "nm": (0.5, {}, "bitmask"),
    "random": (0.5, {}, "bitmask"),
    "wanda": (0.5, {}, "bitmask"),
    "sparsegpt": (0.5, {}, "sparse-bitmask"),
    "rtn": (4, {"group_size": 16}, "pack-quantized"),
    "gptq": (3, {"group_size": 16, "act_order": True}, "pack-quantized"),
    "lowrank": (0.25, {}, "low-rank"),
}


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {t.name: t.weight().detach().clone() for t in find_targets(model)}


def _built_and_loaded(dense, method, calibration, folder: Path):
    compressed = copy.deepcopy(dense)
    report = compress_model(compressed, method, calibration=calibration if method.needs_calibration else None,
                            progress=False)
    folder.mkdir()
    save_compressed(dense, compressed, report, folder)
    return compressed, load_compressed(dense, folder)


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_builtin_method_reloads_exactly_in_its_compact_form(name, tiny_llama, calibration_ids, tmp_path):
    level, options, form = CASES[name]
    built, loaded = _built_and_loaded(tiny_llama, get_method(name).at_level(level, **options), calibration_ids,
                                      tmp_path / "artifact")
    layers, tensors = read_layers(tmp_path / "artifact")
    assert {layer.form for layer in layers.values()} == {form}
    assert sorted(layers) == sorted(t.name for t in find_targets(tiny_llama))
    for key, value in _weights(built).items():
        assert torch.equal(_weights(loaded)[key], value), key  # the values that were built
    again = load_compressed(tiny_llama, tmp_path / "artifact")
    for key, value in _weights(loaded).items():  # every load gives the same bits
        assert torch.equal(value.view(torch.int32), _weights(again)[key].view(torch.int32)), key
    for key, value in tiny_llama.state_dict().items():  # everything but the targets is the dense model's
        if not any(key.startswith(f"{layer}.") for layer in layers):
            assert torch.equal(loaded.state_dict()[key], value), key
    stored = sum(t.numel() * t.element_size() for t in tensors.values())
    dense_bytes = sum(w.numel() * w.element_size() for w in _weights(tiny_llama).values())
    assert stored < dense_bytes * {"bitmask": 0.04, "sparse-bitmask": 0.6, "pack-quantized": 0.25,
                                   "low-rank": 0.75}[form]


def test_quantized_layers_are_compressed_tensors_pack_quantized(tiny_llama, calibration_ids, tmp_path):
    built, _ = _built_and_loaded(tiny_llama, get_method("rtn").at_level(4, group_size=16), calibration_ids,
                                 tmp_path / "artifact")
    name = "model.layers.0.mlp.down_proj"
    with safe_open(str(tmp_path / "artifact" / WEIGHTS_FILE), framework="pt") as f:
        keys = {k for k in f.keys() if k.startswith(f"{name}.")}  # noqa: SIM118 (safe_open is not iterable)
        packed, scale, zero_point, shape = (f.get_tensor(f"{name}.{k}") for k in
                                            ("weight_packed", "weight_scale", "weight_zero_point", "weight_shape"))
    rows, cols = built.get_submodule(name).weight.shape
    assert keys == {f"{name}.{k}" for k in ("weight_packed", "weight_scale", "weight_zero_point", "weight_shape")}
    assert packed.dtype == torch.int32 and tuple(packed.shape) == (rows, cols * 4 // 32)
    assert scale.dtype == torch.float32 and tuple(scale.shape) == (rows, cols // 16)
    assert zero_point.dtype == torch.int32 and tuple(zero_point.shape) == (rows * 4 // 32, cols // 16)
    assert shape.tolist() == [rows, cols]


def test_compressed_tensors_decompresses_our_layers_to_the_same_weights(tiny_llama, calibration_ids, tmp_path):
    ct = pytest.importorskip("compressed_tensors")
    from compressed_tensors.compressors.pack_quantized.base import PackedQuantizationCompressor
    from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme

    for options in ({"group_size": 16}, {"group_size": None, "symmetric": True}):
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        built, _ = _built_and_loaded(tiny_llama, get_method("gptq").at_level(4, **options), calibration_ids, folder)
        _, tensors = read_layers(folder)
        strategy = "group" if options["group_size"] else "channel"
        args = QuantizationArgs(num_bits=4, type="int", symmetric=options.get("symmetric", False),
                                strategy=strategy, group_size=options["group_size"])
        for target in find_targets(built):
            local = {k.removeprefix(f"{target.name}."): v for k, v in tensors.items()
                     if k.startswith(f"{target.name}.")}
            if args.symmetric:
                local.pop("weight_zero_point")  # compressed-tensors stores no zero point for symmetric grids
            decompressed = PackedQuantizationCompressor.decompress(local, QuantizationScheme(targets=["Linear"],
                                                                                             weights=args))
            assert torch.equal(decompressed["weight"], target.weight().detach()), (ct.__version__, target.name)


def test_gpt2_conv1d_weights_round_trip_in_their_stored_layout(tmp_path):
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=64, n_embd=32, n_layer=2, n_head=4, n_positions=32,
                                     bos_token_id=0, eos_token_id=0)
    dense = transformers.GPT2LMHeadModel(config).eval()
    for name, level in (("magnitude", 0.5), ("rtn", 4), ("lowrank", 0.25)):
        folder = tmp_path / name
        built, loaded = _built_and_loaded(dense, get_method(name).at_level(level, **(
            {"group_size": 16} if name == "rtn" else {})), None, folder)
        assert all(layer.transposed for layer in read_layers(folder)[0].values())
        for key, value in built.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], value), (name, key)


class _ValuesAndMask(PruningMethod):
    """A plugin that prunes by magnitude and also shrinks what it keeps (no encoding: stored as values)."""

    name = "shrink"
    version = "1"
    params_type = MagnitudeParams

    def compress(self, weights, stats):
        out = {}
        for key, w in weights.items():
            keep = w.abs() > w.abs().flatten().kthvalue(max(1, int(self.params.sparsity * w.numel()))).values
            out[key] = LayerResult(mask=keep, weight=w * 0.5)
        return out


def test_a_plugin_returning_mask_and_values_is_stored_as_sparse_values(tiny_llama, tmp_path):
    built, loaded = _built_and_loaded(tiny_llama, _ValuesAndMask(MagnitudeParams(sparsity=0.5)), None,
                                      tmp_path / "artifact")
    assert {layer.form for layer in read_layers(tmp_path / "artifact")[0].values()} == {"sparse-bitmask"}
    for key, value in _weights(built).items():
        assert torch.equal(_weights(loaded)[key], value)


class _WrongEncoding(PruningMethod):
    """A plugin whose encoding does not decode to the weight it returns."""

    name = "wrong"
    version = "1"
    params_type = MagnitudeParams

    def compress(self, weights, stats):
        return {key: LayerResult(mask=torch.ones_like(w, dtype=torch.bool), weight=w * 0.0, encoding=LowRankFactors(w.float()[:, :1], w.float()[:1, :]))
                for key, w in weights.items()}


def test_an_encoding_that_does_not_decode_to_the_weight_is_a_method_error(tiny_llama):
    with pytest.raises(MethodError, match="does not decode"):
        compress_model(tiny_llama, _WrongEncoding(MagnitudeParams(sparsity=0.5)), progress=False)


def test_quantized_weight_rejects_bad_shapes():
    from junkdna_core.config.errors import ConfigError

    codes = torch.zeros(4, 8, dtype=torch.uint8)
    with pytest.raises(ConfigError, match="groups dividing 8"):
        QuantizedWeight(codes, torch.ones(4, 3), torch.zeros(4, 3), 4)
    with pytest.raises(ConfigError, match="bits"):
        QuantizedWeight(codes, torch.ones(4, 2), torch.zeros(4, 2), 0)


def test_a_file_of_another_format_is_a_cache_error(tmp_path):
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(tmp_path / WEIGHTS_FILE), metadata={"format": "other"})
    with pytest.raises(CacheError, match="junkdna cache clear"):
        read_layers(tmp_path)
