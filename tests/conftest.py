"""Shared fixtures of the unit tests: tiny random-weight models, no downloads."""

from __future__ import annotations

import copy

import pytest
import torch
import transformers

from junkdna_core.models.synthetic import tiny_llama_config

pytest_plugins = ["pytester"]


@pytest.fixture
def tiny_llama() -> transformers.LlamaForCausalLM:
    """A fresh tiny random Llama (seed 0) in eval mode."""
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(tiny_llama_config(128, tie_word_embeddings=False)).eval()


@pytest.fixture
def calibration_ids() -> torch.Tensor:
    """Eight sequences of 16 random token ids for the tiny models (seed 1)."""
    return torch.randint(0, 128, (8, 16), generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="session")
def smollm2_tokenizer(tmp_path_factory: pytest.TempPathFactory):
    """The embedded SmolLM2 tokenizer (it adds no special token by default)."""
    from junkdna_core.models.readers import _smollm2_tokenizer
    from junkdna_core.storage.cache import ArtifactCache

    return _smollm2_tokenizer(ArtifactCache(tmp_path_factory.mktemp("tokenizer-cache")))


@pytest.fixture(scope="session")
def bos_tokenizer(smollm2_tokenizer):
    """The SmolLM2 tokenizer made to add its BOS token by default, as Llama-style tokenizers do."""
    tokenizer = copy.deepcopy(smollm2_tokenizer)
    tokenizer.add_bos_token = True
    assert tokenizer("Hi")["input_ids"][0] == tokenizer.bos_token_id
    return tokenizer


@pytest.fixture(scope="session")
def smollm2():
    """The embedded SmolLM2-135M (float32 copy converted once into the artifact cache)."""
    from junkdna_core.models.loading import load_model
    from junkdna_core.storage.cache import ArtifactCache

    torch.set_num_threads(1)
    return load_model("smollm2", device="cpu", cache=ArtifactCache())


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs a CUDA device (skipped without one); run them with -m gpu")
