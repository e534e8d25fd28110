"""Greedy generation and the SQuAD answer metrics (exact match, token F1) of generated answers.

Prompts are fed as the scorer feeds its contexts (:func:`junkdna_core.scoring.engine.prompt_ids`):
through the chat template when the model's :class:`~junkdna_core.models.conventions.InputFormat`
says so, then led by its decided prefix (the BOS token exactly when the tokenizer adds it by
default, unless ``--jd-bos`` says otherwise). Generation runs the decoder with a KV cache and
applies the output layer to the last position only.

An instruct model often emits its end token right after "Answer:"; the end token is kept from
ending an empty answer (``min_new_tokens=1``), so every answer is the model's best non-empty one.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm

from junkdna_core.config.checks import check_count
from junkdna_core.config.errors import ConfigError
from junkdna_core.models.conventions import InputFormat
from junkdna_core.models.devices import input_device
from junkdna_core.scoring.engine import (
    check_strings,
    chunks,
    decoder_and_head,
    evaluating,
    kv_cache_keyword,
    pad,
    prompt_ids,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

GENERATION_VERSION = 1  # bump when the same prompts and settings give other answers (part of the cache key)
_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


@dataclass(frozen=True)
class GenerationSettings:
    """How answers are generated: greedy, at most ``max_new_tokens``, cut before the first ``stop`` string.

    The end-of-sequence token cannot end an answer before ``min_new_tokens`` tokens.
    """

    stop: tuple[str, ...] = ("\n",)
    max_new_tokens: int = 32
    min_new_tokens: int = 1

    def describe(self) -> dict[str, Any]:
        """The settings as JSON-ready data (part of the cache key of generated answers)."""
        return {"stop": list(self.stop), "max_new_tokens": self.max_new_tokens, "min_new_tokens": self.min_new_tokens,
                "decoding": "greedy", "version": GENERATION_VERSION}


def _end_token_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Token ids that end a generation: the tokenizer's EOS and the model's generation-config EOS."""
    ids = {tokenizer.eos_token_id}
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.update(configured if isinstance(configured, list) else [configured])
    return sorted(i for i in ids if i is not None)


def _cut_at_stop(text: str, stop: Sequence[str]) -> str:
    cuts = [text.find(s) for s in stop if s in text]
    return text[: min(cuts)] if cuts else text


def _greedy_batch(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[list[int]],
    *,
    end_ids: list[int],
    stop: Sequence[str],
    max_new_tokens: int,
    min_new_tokens: int,
) -> list[list[int]]:
    """New token ids of each prompt (without the end token), decoding greedily with left padding."""
    from transformers import DynamicCache  # a model that generates has imported transformers already

    decoder, head = decoder_and_head(model)
    ids, mask = pad(prompts, input_device(model), left=True)
    positions = (mask.cumsum(dim=-1) - 1).clamp(min=0)
    kv = {kv_cache_keyword(decoder): DynamicCache(config=model.config)}
    generated: list[list[int]] = [[] for _ in prompts]
    active = set(range(len(prompts)))
    for step in range(max_new_tokens):
        out = decoder(
            input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **kv
        )
        logits = head(out.last_hidden_state[:, -1]).float()
        if step < min_new_tokens and end_ids:
            logits[:, end_ids] = -math.inf
        next_ids = logits.argmax(dim=-1)
        for row in sorted(active):
            token = int(next_ids[row])
            if token in end_ids:
                active.discard(row)
                continue
            generated[row].append(token)
            if any(s in tokenizer.decode(generated[row], skip_special_tokens=True) for s in stop):
                active.discard(row)
        if not active:
            break
        ids = next_ids[:, None].to(mask.device)  # the head may sit on another device than the inputs
        mask = torch.cat([mask, torch.ones_like(ids)], dim=1)
        positions = positions[:, -1:] + 1
    return generated


def generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    *,
    inputs: InputFormat | None = None,
    max_new_tokens: int = 32,
    batch_size: int = 8,
    stop: Sequence[str] = ("\n",),
    min_new_tokens: int = 1,
    progress: bool = True,
) -> list[str]:
    """Greedy completion of each prompt, cut before the first stop string.

    Each prompt is fed as :func:`~junkdna_core.scoring.engine.prompt_ids` encodes it under ``inputs``
    (the model's decided input format; by default its tokenizer's own conventions). For the first ``min_new_tokens`` steps the end-of-sequence tokens are
    excluded from the argmax, so a model that would stop at once (an instruct model right after
    "Answer:") gives its best non-empty answer instead of "". A stop string is still honoured from
    the first token: a completion that starts with a stop string is "". The end-of-sequence token
    itself is never part of the returned text. ConfigError when a prompt and ``max_new_tokens``
    exceed the model's positions.
    """
    check_count("max_new_tokens", max_new_tokens)
    check_count("batch_size", batch_size)
    if not isinstance(min_new_tokens, int) or isinstance(min_new_tokens, bool) or not (
        0 <= min_new_tokens <= max_new_tokens
    ):
        raise ConfigError(
            f"min_new_tokens must be an integer in [0, max_new_tokens={max_new_tokens}], "
            f"got {min_new_tokens!r}"
        )
    check_strings("stop", stop, allow_empty_strings=False)
    check_strings("prompts", prompts, allow_empty_strings=False)
    if not prompts:
        return []
    encoded = prompt_ids(tokenizer, prompts, inputs)
    limit = getattr(model.config, "max_position_embeddings", None)
    longest = max(range(len(encoded)), key=lambda i: len(encoded[i]))
    if limit is not None and len(encoded[longest]) + max_new_tokens > limit:
        raise ConfigError(f"prompts[{longest}] has {len(encoded[longest])} tokens; with max_new_tokens="
                          f"{max_new_tokens} it needs more than the model's {limit} positions")
    end_ids = _end_token_ids(model, tokenizer)
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    texts = [""] * len(encoded)
    with evaluating(model), tqdm(total=len(encoded), desc="generating", disable=not progress) as bar:
        for chunk in chunks(order, batch_size):
            new_ids = _greedy_batch(
                model, tokenizer, [encoded[i] for i in chunk],
                end_ids=end_ids, stop=stop, max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens,
            )
            for i, ids in zip(chunk, new_ids):
                texts[i] = _cut_at_stop(tokenizer.decode(ids, skip_special_tokens=True), stop)
            bar.update(len(chunk))
    return texts


def normalize_answer(text: str) -> str:
    """SQuAD answer normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _check_answers(answers: Sequence[str]) -> None:
    if isinstance(answers, str) or len(answers) == 0:
        raise ConfigError(f"answers must be a non-empty sequence of strings, got {answers!r}")


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    """1.0 if the normalised prediction equals any normalised answer, else 0.0."""
    _check_answers(answers)
    target = normalize_answer(prediction)
    return max(float(target == normalize_answer(answer)) for answer in answers)


def _token_f1(prediction: list[str], answer: list[str]) -> float:
    if not prediction or not answer:
        return float(prediction == answer)
    overlap = sum((Counter(prediction) & Counter(answer)).values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(prediction), overlap / len(answer)
    return 2 * precision * recall / (precision + recall)


def f1_score(prediction: str, answers: Sequence[str]) -> float:
    """SQuAD token F1 between the normalised prediction and the best-matching answer.

    When either side normalises to no tokens the score is 1.0 if both do, else 0.0 (SQuAD v2).
    """
    _check_answers(answers)
    tokens = normalize_answer(prediction).split()
    return max(_token_f1(tokens, normalize_answer(answer).split()) for answer in answers)


# The answer metrics a level can record beside its own (their names: data.settings.ANSWER_METRICS).
METRIC_FUNCTIONS: Mapping[str, Callable[[str, Sequence[str]], float]] = MappingProxyType(
    {"em": exact_match, "f1": f1_score}
)


def answer_metrics(
    predictions: Sequence[str], answers: Sequence[Sequence[str]], metrics: Sequence[str]
) -> dict[str, tuple[float, ...]]:
    """Per-item values of each of ``metrics`` (``em``, ``f1``) of ``predictions`` against each item's gold answers."""
    if len(predictions) != len(answers):
        raise ConfigError(f"{len(predictions)} predictions for {len(answers)} items; one per item is required")
    unknown = [m for m in metrics if m not in METRIC_FUNCTIONS]
    if unknown:
        raise ConfigError(f"unknown answer metric {unknown[0]!r}; known: {', '.join(METRIC_FUNCTIONS)}")
    return {m: tuple(METRIC_FUNCTIONS[m](p, a) for p, a in zip(predictions, answers)) for m in metrics}
