"""Sequential onloading: a calibrated method compresses a model kept elsewhere, one block at a time on the device."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from junkdna_core.compress.offload import load_blocks_from_disk, offload_blocks_to_disk
from junkdna_core.compress.registry import get_method
from junkdna_core.compress.runner import compress_model
from junkdna_core.compress.targets import find_blocks

CALIBRATED = [("wanda", 0.5, {}), ("sparsegpt", 0.5, {}), ("gptq", 4, {"group_size": 16})]


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.state_dict().items()}


@pytest.mark.parametrize(("name", "level", "options"), CALIBRATED)
def test_blocks_held_on_disk_give_the_same_model_as_compressing_in_place(
    tiny_llama, calibration_ids, tmp_path, name, level, options
):
    in_place = copy.deepcopy(tiny_llama)
    expected = compress_model(in_place, get_method(name).at_level(level, **options), calibration=calibration_ids,
                              progress=False)
    _, blocks = find_blocks(tiny_llama)
    offload_blocks_to_disk(blocks, tmp_path)
    assert all(p.device.type == "meta" for p in blocks.parameters())
    report = compress_model(tiny_llama, get_method(name).at_level(level, **options), calibration=calibration_ids,
                            offload_folder=tmp_path, progress=False)
    assert report.onloaded and report.device == "cpu"
    assert all(p.device.type == "meta" for p in blocks.parameters())  # between and after their turns: on disk
    load_blocks_from_disk(blocks, tmp_path)
    ours, theirs = _weights(tiny_llama), _weights(in_place)
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert report.measured == expected.measured
    assert report.sparsity == expected.sparsity
    assert report.masks.keys() == expected.masks.keys()
    assert all(torch.equal(report.masks[k], expected.masks[k]) for k in report.masks)


def test_onloading_on_request_puts_every_block_back_where_it_was(tiny_llama, calibration_ids):
    in_place = copy.deepcopy(tiny_llama)
    compress_model(in_place, get_method("wanda").at_level(0.5), calibration=calibration_ids, progress=False)
    report = compress_model(tiny_llama, get_method("wanda").at_level(0.5), calibration=calibration_ids, offload=True,
                            progress=False)
    assert report.onloaded
    assert {p.device.type for p in tiny_llama.parameters()} == {"cpu"}
    ours, theirs = _weights(tiny_llama), _weights(in_place)
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_a_model_on_its_execution_device_is_not_onloaded(tiny_llama, calibration_ids):
    report = compress_model(tiny_llama, get_method("wanda").at_level(0.5), calibration=calibration_ids,
                            progress=False)
    assert not report.onloaded and report.device == "cpu"


def test_an_offload_folder_is_refused_for_a_data_free_method(tiny_llama, tmp_path):
    from junkdna_core.config.errors import ConfigError

    with pytest.raises(ConfigError, match="offload_folder applies to calibrated methods only"):
        compress_model(tiny_llama, get_method("magnitude").at_level(0.5), offload_folder=tmp_path, progress=False)


# Peak memory, measured in a child process: the model's blocks are written to disk by the parent, so the
# child never holds them all; it builds the model on the meta device and loads only what is outside the blocks.
MEASURE = textwrap.dedent('''
    import json, re, sys
    from pathlib import Path
    import torch, transformers
    from safetensors.torch import load_file
    from junkdna_core.compress.offload import load_blocks_from_disk
    from junkdna_core.compress.registry import get_method
    from junkdna_core.compress.runner import compress_model
    from junkdna_core.compress.targets import find_blocks

    def status(field):
        return int(re.search(rf"^{field}:\\s+(\\d+) kB", Path("/proc/self/status").read_text(), re.M).group(1)) * 1024

    folder, mode = Path(sys.argv[1]), sys.argv[2]
    torch.set_num_threads(1)
    config = transformers.LlamaConfig(**json.loads((folder / "config.json").read_text()))
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(config).eval()
    model.load_state_dict(load_file(str(folder / "rest.safetensors")), strict=False, assign=True)
    model.model.rotary_emb = transformers.models.llama.modeling_llama.LlamaRotaryEmbedding(config)
    _, blocks = find_blocks(model)
    Path("/proc/self/clear_refs").write_text("5")  # restart the peak (VmHWM) from here
    base = status("VmRSS")
    if mode == "in-memory":
        load_blocks_from_disk(blocks, folder / "blocks")
    ids = torch.randint(0, config.vocab_size, (8, 128), generator=torch.Generator().manual_seed(0))
    report = compress_model(model, get_method("wanda").at_level(0.5), calibration=ids, progress=False,
                            offload_folder=folder / "blocks" if mode == "onloaded" else None)
    print(json.dumps({"growth": status("VmHWM") - base, "onloaded": report.onloaded,
                      "masks": sum(m.numel() for m in report.masks.values())}))
''')


def test_peak_memory_with_blocks_on_disk_is_about_one_block(tmp_path):
    import transformers
    from safetensors.torch import save_file

    config = transformers.LlamaConfig(vocab_size=512, hidden_size=384, intermediate_size=1536, num_hidden_layers=24,
                                      num_attention_heads=6, num_key_value_heads=2, max_position_embeddings=256,
                                      tie_word_embeddings=False)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    _, blocks = find_blocks(model)
    block_bytes = [sum(p.numel() * p.element_size() for p in b.parameters()) for b in blocks]
    rest = {k: v.contiguous() for k, v in model.state_dict().items() if not k.startswith("model.layers.")}
    save_file(rest, str(tmp_path / "rest.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps(config.to_diff_dict()))
    offload_blocks_to_disk(blocks, tmp_path / "blocks")
    del model, blocks
    script = tmp_path / "measure.py"
    script.write_text(MEASURE)

    def peak(mode: str) -> dict:
        root = str(Path(__file__).resolve().parents[1])  # this checkout's junkdna_core, whatever is installed
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
               # a fixed threshold: freed tensors go back to the OS instead of staying in glibc's heap
               "MALLOC_MMAP_THRESHOLD_": "65536"}
        done = subprocess.run([sys.executable, str(script), str(tmp_path), mode], capture_output=True, text=True,
                              env=env, check=False, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    onloaded, in_memory = peak("onloaded"), peak("in-memory")
    assert onloaded["onloaded"] and not in_memory["onloaded"]
    # Both keep the report's bool masks in host memory (1 byte per weight). Beyond them, holding every
    # block costs at least all their bytes; onloading one at a time about one block (plus activations and
    # statistics), far below that.
    masks = sum(block_bytes) // 4
    assert in_memory["growth"] - masks >= sum(block_bytes)
    assert onloaded["growth"] - masks < 0.25 * sum(block_bytes), (onloaded, in_memory, sum(block_bytes))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize(("name", "level", "options"), CALIBRATED)
def test_a_model_kept_on_the_cpu_is_compressed_on_cuda_one_block_at_a_time(name, level, options):
    import transformers

    config = transformers.LlamaConfig(vocab_size=512, hidden_size=384, intermediate_size=1536, num_hidden_layers=24,
                                      num_attention_heads=6, num_key_value_heads=2, max_position_embeddings=256)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config).eval()
    ids = torch.randint(0, 512, (8, 128), generator=torch.Generator().manual_seed(0))
    on_device = copy.deepcopy(model).to("cuda")
    compress_model(on_device, get_method(name).at_level(level, **options), calibration=ids, progress=False)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    report = compress_model(model, get_method(name).at_level(level, **options), calibration=ids, device="cuda",
                            progress=False)
    assert report.onloaded and report.device.startswith("cuda")
    assert {p.device.type for p in model.parameters()} == {"cpu"}  # the model stays on the CPU
    _, blocks = find_blocks(model)
    assert torch.cuda.max_memory_allocated() < 0.25 * sum(p.numel() * p.element_size() for p in blocks.parameters())
    for key, value in _weights(on_device).items():
        torch.testing.assert_close(model.state_dict()[key], value.cpu(), rtol=1e-4, atol=1e-5)
