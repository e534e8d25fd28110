"""Built-in random-weight model configs (``random:tiny-llama``, ``random:tiny-bert``) for tests and scale runs.

transformers is imported only when a config is built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from transformers import LlamaConfig, PretrainedConfig

ModelKind = Literal["causal", "encoder"]
RANDOM_SEED = 0
"""Random models are drawn with this seed (the global RNG is left untouched)."""


def tiny_llama_config(vocab_size: int, **overrides: Any) -> LlamaConfig:
    """A 2-block Llama config (hidden 32) for tests and ``random:tiny-llama``; ``overrides`` replace fields."""
    values: dict[str, Any] = {
        "vocab_size": vocab_size,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 128,
        "tie_word_embeddings": True,
    }
    from transformers import LlamaConfig

    return LlamaConfig(**{**values, **overrides})


def tiny_bert_config(vocab_size: int) -> PretrainedConfig:
    """A 2-block BERT config (hidden 32) for ``random:tiny-bert``."""
    from transformers import BertConfig

    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=128,
    )


# Built-in random configs: name -> (config factory taking the tokenizer's vocabulary size, kind).
RANDOM_CONFIGS: dict[str, tuple[Callable[[int], PretrainedConfig], ModelKind]] = {
    "tiny-llama": (tiny_llama_config, "causal"),
    "tiny-bert": (tiny_bert_config, "encoder"),
}

