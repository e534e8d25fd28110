"""Scoring engine: log-likelihoods of continuations (lm-evaluation-harness conventions) and perplexity.

Scoring follows lm-evaluation-harness (``loglikelihood`` of the HF causal backend): no special tokens
are added, trailing whitespace of a context moves to the front of its continuation, the continuation
tokens are the tokens of ``context + continuation`` past the context's own tokens, and an empty
context is replaced by the BOS token (the EOS token when there is no BOS).

Output-layer logits are computed only at the positions that are scored: the decoder runs alone and
the language-model head is applied to the few hidden states needed, which saves most of the
full-vocabulary projection.
"""

from __future__ import annotations

import contextlib
import math
import re
import string
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn
from tqdm.auto import tqdm

from junkdna_core.config.checks import check_count
from junkdna_core.config.errors import ConfigError
from junkdna_core.models.devices import input_device

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = [
    "ContinuationScore",
    "multiple_choice_predictions",
    "perplexity",
    "score_continuations",
]

_HEAD_ROWS = 256  # hidden states projected to the vocabulary at once (bounds logits memory)
_MASKABLE_ATTENTION = frozenset({"eager", "sdpa"})  # attention implementations that take a 4-D mask
_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


@dataclass(frozen=True)
class ContinuationScore:
    """Log-likelihood of one continuation given its context.

    ``norm_chars`` is lm-evaluation-harness's ``acc_norm`` denominator: lm-eval divides by
    ``len(choice)``, the character length of the choice without its leading target delimiter.
    """

    loglik: float  # sum of log p(continuation token | everything before it), natural log
    tokens: int  # continuation token count
    bytes: int  # UTF-8 byte length of the continuation as given (bits per byte)
    greedy: bool  # every continuation token was the argmax
    norm_chars: int  # characters of the continuation without leading whitespace (acc_norm)


@dataclass(frozen=True)
class _Request:
    """One context with its continuations, tokenised the lm-eval way."""

    context: list[int]
    continuations: list[list[int]]


# ---------------------------------------------------------------- validation and encoding


def check_strings(name: str, values: Sequence[str], *, allow_empty_strings: bool) -> None:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise ConfigError(f"{name} must be a sequence of strings, got {values!r}")
    for index, value in enumerate(values):
        if not isinstance(value, str):
            raise ConfigError(f"{name}[{index}] must be a string, got {type(value).__name__}")
        if not value and not allow_empty_strings:
            raise ConfigError(f"{name}[{index}] is an empty string; a non-empty string is required")


def encode(tokenizer: PreTrainedTokenizerBase, texts: list[str]) -> list[list[int]]:
    return [list(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def _prefix_token(tokenizer: PreTrainedTokenizerBase) -> int:
    for token_id in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return token_id
    raise ConfigError("an empty context needs a BOS or EOS token, but the tokenizer has neither")


def _encode_request(
    tokenizer: PreTrainedTokenizerBase, context: str, continuations: Sequence[str]
) -> _Request:
    """Tokenise one request as lm-eval's ``_encode_pair`` does, sharing the context tokens."""
    stripped = context.rstrip()
    moved = context[len(stripped) :]
    if not stripped:
        continuation_ids = encode(tokenizer, [moved + c for c in continuations])
        return _Request([_prefix_token(tokenizer)], continuation_ids)
    context_ids, *whole = encode(tokenizer, [stripped] + [stripped + moved + c for c in continuations])
    if not context_ids:
        return _Request([_prefix_token(tokenizer)], whole)
    return _Request(context_ids, [ids[len(context_ids) :] for ids in whole])


def _encode_requests(
    tokenizer: PreTrainedTokenizerBase,
    requests: Sequence[tuple[str, Sequence[str]]],
    max_positions: int | None,
) -> list[_Request]:
    encoded = []
    for index, request in enumerate(requests):
        if not isinstance(request, (tuple, list)) or len(request) != 2 or not isinstance(request[0], str):
            raise ConfigError(f"requests[{index}] must be a (context, continuations) pair, got {request!r}")
        context, continuations = request
        check_strings(f"requests[{index}] continuations", continuations, allow_empty_strings=False)
        if len(continuations) == 0:
            raise ConfigError(f"requests[{index}] has no continuations; at least one is required")
        item = _encode_request(tokenizer, context, continuations)
        _check_encoded(index, item, continuations, max_positions)
        encoded.append(item)
    return encoded


def _check_encoded(
    index: int, request: _Request, continuations: Sequence[str], max_positions: int | None
) -> None:
    for option, (text, ids) in enumerate(zip(continuations, request.continuations)):
        if not ids:
            raise ConfigError(
                f"requests[{index}] continuation {option} ({text!r}) adds no token beyond the context: "
                "the tokenizer merges it into the context's last token"
            )
        length = len(request.context) + len(ids) - 1
        if max_positions is not None and length > max_positions:
            raise ConfigError(
                f"requests[{index}] continuation {option} needs {length} positions; "
                f"the model allows at most {max_positions}"
            )


# ---------------------------------------------------------------- model plumbing


@contextlib.contextmanager
def evaluating(model: PreTrainedModel) -> Iterator[None]:
    """Eval mode and inference mode for the duration; the training flag is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


def decoder_and_head(model: PreTrainedModel) -> tuple[nn.Module, nn.Module]:
    """The decoder (hidden states, final norm applied) and the language-model head."""
    head = model.get_output_embeddings()
    if head is None or model.base_model is model:
        raise ConfigError(f"{type(model).__name__} is not a causal LM with a separate output layer")
    return model.base_model, head


def chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def pad(
    sequences: list[list[int]], device: torch.device, *, left: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids padded with 0 (always masked) and the matching attention mask."""
    width = max(len(seq) for seq in sequences)
    ids = torch.zeros(len(sequences), width, dtype=torch.long)
    mask = torch.zeros(len(sequences), width, dtype=torch.long)
    for row, seq in enumerate(sequences):
        span = slice(width - len(seq), width) if left else slice(0, len(seq))
        ids[row, span] = torch.tensor(seq, dtype=torch.long)
        mask[row, span] = 1
    return ids.to(device), mask.to(device)


def _gather(hidden: torch.Tensor, starts: list[int], lengths: list[int]) -> torch.Tensor:
    """Hidden states ``hidden[row, start:start + length]`` of every row, concatenated."""
    rows = torch.repeat_interleave(torch.arange(len(starts)), torch.tensor(lengths))
    positions = torch.cat([torch.arange(start, start + n) for start, n in zip(starts, lengths)])
    return hidden[rows.to(hidden.device), positions.to(hidden.device)]


def _token_logprobs(
    head: nn.Module, hidden: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of each target token and whether it is the argmax, from selected hidden states."""
    logprobs, greedy = [], []
    for start in range(0, hidden.shape[0], _HEAD_ROWS):
        logits = head(hidden[start : start + _HEAD_ROWS]).float()
        target = targets[start : start + _HEAD_ROWS].to(logits.device)  # the head may sit on another device
        logprobs.append(-nn.functional.cross_entropy(logits, target, reduction="none"))
        greedy.append(logits.argmax(dim=-1) == target)
    return torch.cat(logprobs), torch.cat(greedy)


def _sum_per_row(
    head: nn.Module, hidden: torch.Tensor, continuations: list[list[int]]
) -> list[tuple[float, bool]]:
    """(sum of log-probabilities, all greedy) for each continuation, its hidden states in order."""
    lengths = [len(ids) for ids in continuations]
    targets = torch.tensor([t for ids in continuations for t in ids], device=hidden.device)
    logprobs, greedy = _token_logprobs(head, hidden, targets)
    return [
        (float(lp.sum()), bool(g.all()))
        for lp, g in zip(logprobs.split(lengths), greedy.split(lengths))
    ]


# ---------------------------------------------------------------- log-likelihood scoring

_Key = tuple[int, int]  # (request index, continuation index)


def _score_full_sequences(
    model: PreTrainedModel, requests: list[_Request], batch_size: int, bar: tqdm
) -> Iterator[tuple[_Key, tuple[float, bool]]]:
    """Score every (context, continuation) pair as its own sequence: the no-reuse reference path."""
    decoder, head = decoder_and_head(model)
    keys = [(r, o) for r, req in enumerate(requests) for o in range(len(req.continuations))]
    keys.sort(key=lambda k: -(len(requests[k[0]].context) + len(requests[k[0]].continuations[k[1]])))
    for chunk in chunks(keys, batch_size):
        contexts = [requests[r].context for r, _ in chunk]
        continuations = [requests[r].continuations[o] for r, o in chunk]
        ids, mask = pad([c + t[:-1] for c, t in zip(contexts, continuations)], input_device(model))
        hidden = decoder(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
        selected = _gather(hidden, [len(c) - 1 for c in contexts], [len(t) for t in continuations])
        yield from zip(chunk, _sum_per_row(head, selected, continuations))
        bar.update(len(chunk))


@dataclass(frozen=True)
class _Packed:
    """A context followed by every continuation but its last token, laid out as one sequence.

    ``segments`` marks each token: 0 for the context, ``o + 1`` for continuation ``o``.
    ``scored[o]`` are the sequence indices whose hidden states predict continuation ``o``'s tokens.
    """

    ids: list[int]
    positions: list[int]
    segments: list[int]
    scored: list[list[int]]


def _pack(request: _Request) -> _Packed:
    context = len(request.context)
    ids, segments = list(request.context), [0] * context
    positions, scored = list(range(context)), []
    for segment, tokens in enumerate(request.continuations, start=1):
        tail = tokens[:-1]
        scored.append([context - 1, *range(len(ids), len(ids) + len(tail))])
        ids += tail
        positions += range(context, context + len(tail))
        segments += [segment] * len(tail)
    return _Packed(ids, positions, segments, scored)


def _block_mask(segments: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Additive attention mask ``(rows, 1, width, width)`` for packed rows (padding has segment -1).

    A token sees the earlier tokens of its own segment and the whole context before it; so each
    continuation attends exactly as it would right after its context. Padding sees only itself.
    """
    width = segments.shape[1]
    index = torch.arange(width, device=segments.device)
    query, key = segments[:, :, None], segments[:, None, :]
    allowed = (index[None, :] <= index[:, None]) & (key >= 0) & ((key == 0) | (key == query))
    allowed |= torch.eye(width, dtype=torch.bool, device=segments.device)
    blocked = torch.zeros(allowed.shape, dtype=dtype, device=segments.device)
    return blocked.masked_fill_(~allowed, torch.finfo(dtype).min)[:, None]


def _score_packed(
    model: PreTrainedModel, requests: list[_Request], batch_size: int, bar: tqdm
) -> Iterator[tuple[_Key, tuple[float, bool]]]:
    """Run each context once together with all its continuations, separated by a block attention mask."""
    decoder, head = decoder_and_head(model)
    packed = [_pack(request) for request in requests]
    order = sorted(range(len(requests)), key=lambda r: -len(packed[r].ids))
    device = input_device(model)
    for group in chunks(order, batch_size):
        ids, present = pad([packed[r].ids for r in group], device)
        positions, _ = pad([packed[r].positions for r in group], device)
        segments, _ = pad([packed[r].segments for r in group], device)
        mask = _block_mask(segments.masked_fill(present == 0, -1), model.dtype)
        hidden = decoder(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False)
        keys = [(r, o) for r in group for o in range(len(requests[r].continuations))]
        rows = [row for row, r in enumerate(group) for scored in packed[r].scored for _ in scored]
        columns = [column for r in group for scored in packed[r].scored for column in scored]
        last = hidden.last_hidden_state  # on the device of the decoder's last module
        selected = last[torch.tensor(rows, device=last.device), torch.tensor(columns, device=last.device)]
        continuations = [requests[r].continuations[o] for r, o in keys]
        yield from zip(keys, _sum_per_row(head, selected, continuations))
        bar.update(len(keys))


def _accepts_block_mask(model: PreTrainedModel) -> bool:
    """True if the model's attention takes a custom 4-D additive mask (eager and SDPA do)."""
    return getattr(model.config, "_attn_implementation", None) in _MASKABLE_ATTENTION


def score_continuations(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    requests: Sequence[tuple[str, Sequence[str]]],
    *,
    batch_size: int = 8,
    progress: bool = True,
    reuse_prefix: bool = True,
) -> list[list[ContinuationScore]]:
    """Log-likelihood of each continuation given its context, one list per ``(context, continuations)``.

    Matches lm-evaluation-harness's ``loglikelihood`` (see the module docstring). With ``reuse_prefix``
    each context is run once, followed in the same sequence by all its continuations, which a block
    attention mask keeps from seeing each other; ``batch_size`` is then the number of contexts per
    forward pass. ``reuse_prefix=False`` runs every (context, continuation) pair as its own sequence,
    ``batch_size`` pairs per forward pass (same scores, slower); it is also used for models whose
    attention implementation takes no custom mask (e.g. flash attention). Scores do not depend on
    ``batch_size`` beyond float rounding.
    """
    check_count("batch_size", batch_size)
    encoded = _encode_requests(tokenizer, requests, getattr(model.config, "max_position_embeddings", None))
    scorer = _score_packed if reuse_prefix and _accepts_block_mask(model) else _score_full_sequences
    raw: dict[_Key, tuple[float, bool]] = {}
    total = sum(len(req.continuations) for req in encoded)
    with evaluating(model), tqdm(total=total, desc="scoring", disable=not progress) as bar:
        raw.update(scorer(model, encoded, batch_size, bar))
    return [
        [
            ContinuationScore(
                loglik=raw[r, o][0],
                tokens=len(encoded[r].continuations[o]),
                bytes=len(text.encode("utf-8")),
                greedy=raw[r, o][1],
                norm_chars=len(text.lstrip()),
            )
            for o, text in enumerate(continuations)
        ]
        for r, (_, continuations) in enumerate(requests)
    ]


def multiple_choice_predictions(scores: list[list[ContinuationScore]]) -> dict[str, list[int]]:
    """Index of the chosen option per question under ``acc`` (raw log-likelihood), ``acc_norm``
    (log-likelihood per character of the choice, as lm-eval) and ``acc_tok`` (per token).

    Ties go to the first option, as ``numpy.argmax``.
    """
    score_of = {
        "acc": lambda s: s.loglik,
        "acc_norm": lambda s: s.loglik / s.norm_chars,
        "acc_tok": lambda s: s.loglik / s.tokens,
    }
    for index, options in enumerate(scores):
        if not options:
            raise ConfigError(f"scores[{index}] has no options; at least one is required")
        if any(s.norm_chars == 0 for s in options):
            raise ConfigError(
                f"scores[{index}] has a whitespace-only option; acc_norm needs visible characters"
            )
    return {
        name: [max(range(len(options)), key=lambda i: metric(options[i])) for options in scores]
        for name, metric in score_of.items()
    }


# ---------------------------------------------------------------- perplexity


def perplexity(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    *,
    max_length: int = 512,
    batch_size: int = 4,
    progress: bool = True,
) -> float:
    """Token-level perplexity, ``exp`` of the mean next-token NLL pooled over all texts.

    Each text is tokenised without special tokens, the BOS token is prepended when the tokenizer has
    one, and the sequence is truncated to ``max_length`` tokens; every token after the first is
    predicted.
    """
    check_count("batch_size", batch_size)
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
        raise ConfigError(f"max_length must be an integer >= 2, got {max_length!r}")
    check_strings("texts", texts, allow_empty_strings=True)
    bos = [] if tokenizer.bos_token_id is None else [tokenizer.bos_token_id]
    sequences = [seq for seq in (
        (bos + ids)[:max_length] for ids in (encode(tokenizer, list(texts)) if texts else [])
    ) if len(seq) > 1]
    if not sequences:
        raise ConfigError(
            f"perplexity needs a text of at least 2 tokens (BOS included); "
            f"got {len(texts)} texts, none that long"
        )
    sequences.sort(key=len, reverse=True)
    decoder, head = decoder_and_head(model)
    nll, count = 0.0, 0
    with evaluating(model), tqdm(total=len(sequences), desc="perplexity", disable=not progress) as bar:
        for chunk in chunks(sequences, batch_size):
            ids, mask = pad(chunk, input_device(model))
            hidden = decoder(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
            selected = _gather(hidden, [0] * len(chunk), [len(seq) - 1 for seq in chunk])
            targets = torch.tensor([t for seq in chunk for t in seq[1:]], device=hidden.device)
            logprobs, _ = _token_logprobs(head, selected, targets)
            nll -= float(logprobs.sum())
            count += len(targets)
            bar.update(len(chunk))
    return math.exp(nll / count)


