"""Shared fixtures of the unit tests: tiny random-weight models, no downloads."""

from __future__ import annotations

import pytest
import torch
import transformers

pytest_plugins = ["pytester"]


def tiny_llama_config(**overrides) -> transformers.LlamaConfig:
    """A 2-block Llama small enough to compress with every method in well under a second."""
    values = dict(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    values.update(overrides)
    return transformers.LlamaConfig(**values)


@pytest.fixture
def tiny_llama() -> transformers.LlamaForCausalLM:
    """A fresh tiny random Llama (seed 0) in eval mode."""
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(tiny_llama_config()).eval()


@pytest.fixture
def calibration_ids() -> torch.Tensor:
    """Eight sequences of 16 random token ids for the tiny models (seed 1)."""
    return torch.randint(0, 128, (8, 16), generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="session")
def smollm2():
    """The embedded SmolLM2-135M (float32 copy converted once into the artifact cache)."""
    from junkdna_core.cache import ArtifactCache
    from junkdna_core.models import load_model

    torch.set_num_threads(1)
    return load_model("smollm2", device="cpu", cache=ArtifactCache())
