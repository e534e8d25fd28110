"""Scoring kernels as pytest-benchmark benchmarks: a batch of multiple-choice items through the scorer.

    pytest benchmarks/perf/test_kernels_scoring.py --benchmark-only --benchmark-autosave
    pytest benchmarks/perf/test_kernels_scoring.py --benchmark-only --benchmark-compare

The model has SmolLM2-135M's block shapes and vocabulary (hidden 576, MLP 1536, 9 heads, 3 KV heads,
49152 tokens) with random weights and two blocks, so a round takes a fraction of a second and needs
no converted model; the items are the first eight four-option ARC-Easy validation questions in the
cloze format of setting 2, with the SmolLM2 tokenizer. One group holds the packed scorer (each
context once with the token tree of its options) and the reference that runs every (context,
option) pair as its own sequence: pytest-benchmark's table shows their ratio, measured in one run.
Run without ``-n`` (pytest-benchmark switches itself off under xdist); ``pytest benchmarks`` does not
collect this directory unless it is named (benchmarks/conftest.py).
"""

from __future__ import annotations

import pytest
import torch
import transformers

from junkdna_core.data.prompts import render_cloze
from junkdna_core.data.tasks import load_task
from junkdna_core.models.readers import _smollm2_tokenizer
from junkdna_core.models.synthetic import tiny_llama_config
from junkdna_core.scoring.engine import score_continuations
from junkdna_core.storage.cache import ArtifactCache

ITEMS = 8
BATCH_SIZE = 8
SMOLLM2_BLOCK = {"hidden_size": 576, "intermediate_size": 1536, "num_attention_heads": 9, "num_key_value_heads": 3,
                 "num_hidden_layers": 2, "max_position_embeddings": 2048}


@pytest.fixture(scope="module")
def scorer_inputs():
    """(model, tokenizer, requests): two SmolLM2-shaped blocks with random weights, eight ARC-Easy items."""
    torch.manual_seed(0)
    tokenizer = _smollm2_tokenizer(ArtifactCache())
    model = transformers.LlamaForCausalLM(tiny_llama_config(len(tokenizer), **SMOLLM2_BLOCK)).eval()
    items = [item for item in load_task("arc_easy", "validation") if len(item.choices) == 4][:ITEMS]
    return model, tokenizer, [render_cloze("arc_easy", item) for item in items]


@pytest.mark.benchmark(group="scoring-batch")
@pytest.mark.parametrize("reuse_prefix", [True, False], ids=["packed", "full-sequences"])
def test_score_a_batch_of_items(benchmark, scorer_inputs, reuse_prefix):
    model, tokenizer, requests = scorer_inputs
    scores = benchmark(score_continuations, model, tokenizer, requests, batch_size=BATCH_SIZE, progress=False,
                       reuse_prefix=reuse_prefix)
    assert [len(row) for row in scores] == [4] * ITEMS
