"""pytest-benchmark kernels of calibrated compression: one calibrated layer of each method, a block's statistics.

    pytest benchmarks/perf --benchmark-only --benchmark-autosave      # store a run
    pytest benchmarks/perf --benchmark-only --benchmark-compare       # compare with the last stored one
    pytest benchmarks/perf --benchmark-only --benchmark-compare-fail=mean:15%   # fail on a slowdown

Shapes are SmolLM2-135M's (hidden 576, MLP 1536; calibration 8 x 256 tokens per
batch) unless JUNKDNA_PERF_SIZE=tiny (what tests/test_perf_scripts.py uses, so the
kernels cannot rot). Weights and statistics are random with fixed seeds; run
without -n (pytest-benchmark switches itself off under xdist) and at one torch
thread (set here), so runs compare like for like.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
import torch

from junkdna_core.compress.base import LayerStats
from junkdna_core.compress.calibration import BlockBatch, collect_stats, compress_in_one_pass, input_groups
from junkdna_core.compress.registry import get_method
from junkdna_core.compress.targets import find_targets


@dataclass(frozen=True)
class Size:
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    samples: int
    tokens: int


SIZES = {
    "smollm2": Size(hidden=576, intermediate=1536, heads=9, kv_heads=3, samples=8, tokens=256),
    "tiny": Size(hidden=64, intermediate=128, heads=4, kv_heads=2, samples=2, tokens=16),
}
SIZE = SIZES[os.environ.get("JUNKDNA_PERF_SIZE", "smollm2")]
LAYER_METHODS = {"wanda": (0.5, {}), "sparsegpt": (0.5, {}), "gptq": (4, {"group_size": 64 if SIZE.hidden >= 64 else 16})}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _layer(out_features: int, in_features: int) -> tuple[torch.Tensor, LayerStats]:
    """A random ``(out, in)`` weight and the Gram statistics of random inputs (fixed seeds)."""
    g = torch.Generator().manual_seed(out_features * 7919 + in_features)
    x = torch.randn(SIZE.samples * SIZE.tokens, in_features, generator=g)
    return torch.randn(out_features, in_features, generator=g), LayerStats(gram=x.T @ x, tokens=x.shape[0])


@pytest.mark.parametrize("name", sorted(LAYER_METHODS))
@pytest.mark.parametrize("shape", ["mlp_up", "mlp_down"])
def test_one_calibrated_layer(benchmark, name, shape):
    out_features, in_features = ((SIZE.intermediate, SIZE.hidden) if shape == "mlp_up"
                                 else (SIZE.hidden, SIZE.intermediate))
    weight, stats = _layer(out_features, in_features)
    level, options = LAYER_METHODS[name]
    method = get_method(name).at_level(level, **options)
    results = benchmark(method.compress, {"layer": weight}, {"layer": stats})
    assert results["layer"].weight is not None or results["layer"].mask is not None


@pytest.fixture(scope="module")
def block_and_batch():
    """One random Llama decoder block and one calibration batch as it receives it."""
    import transformers
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRotaryEmbedding

    config = transformers.LlamaConfig(hidden_size=SIZE.hidden, intermediate_size=SIZE.intermediate,
                                      num_attention_heads=SIZE.heads, num_key_value_heads=SIZE.kv_heads,
                                      max_position_embeddings=max(SIZE.tokens, 64), vocab_size=128)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        block = LlamaDecoderLayer(config, layer_idx=0).eval()
        hidden = torch.randn(SIZE.samples, SIZE.tokens, SIZE.hidden)
    positions = torch.arange(SIZE.tokens).unsqueeze(0)
    embeddings = LlamaRotaryEmbedding(config)(hidden, positions)
    return block, BlockBatch(hidden, {"position_embeddings": embeddings, "position_ids": positions,
                                      "attention_mask": None})


def _block_targets(block: torch.nn.Module) -> list:
    holder = torch.nn.Module()
    holder.layers = torch.nn.ModuleList([block])
    return find_targets(holder)


@pytest.mark.parametrize("statistics", ["gram", "input_norms"])
def test_block_statistics(benchmark, block_and_batch, statistics):
    block, batch = block_and_batch
    targets = _block_targets(block)
    stats = benchmark(collect_stats, block, targets, [batch], frozenset({statistics}))
    assert set(stats) == {t.name for t in targets}


def test_block_forward(benchmark, block_and_batch):
    """The reference the statistics are read against: one plain forward of the same block on the same batch."""
    block, batch = block_and_batch
    with torch.inference_mode():
        out = benchmark(block, batch.hidden, **batch.kwargs)
    assert out is not None


def test_block_compressed_in_one_pass(benchmark, block_and_batch):
    """Wanda's sequential pass over one block: statistics, masks and the pass that feeds the next block."""
    block, batch = block_and_batch
    targets = _block_targets(block)
    groups = [[targets[i] for i in members] for members in input_groups(block, targets, batch)]
    method = get_method("wanda").at_level(0.5)

    def compress(group, stats):  # computes the masks; leaves the block's weights as they are, for every round
        method.compress({t.name: t.weight().detach() for t in group}, stats)

    out = benchmark(compress_in_one_pass, block, groups, batch, frozenset({"input_norms"}), compress)
    assert out.hidden.shape == batch.hidden.shape
