"""Scoring engine: continuation log-likelihoods, greedy generation, perplexity and answer metrics.

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
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn
from tqdm.auto import tqdm

from junkdna_core.config.errors import ConfigError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = [
    "ContinuationScore",
    "bits_per_byte",
    "exact_match",
    "f1_score",
    "generate",
    "multiple_choice_predictions",
    "normalize_answer",
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


def _check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def _check_strings(name: str, values: Sequence[str], *, allow_empty_strings: bool) -> None:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise ConfigError(f"{name} must be a sequence of strings, got {values!r}")
    for index, value in enumerate(values):
        if not isinstance(value, str):
            raise ConfigError(f"{name}[{index}] must be a string, got {type(value).__name__}")
        if not value and not allow_empty_strings:
            raise ConfigError(f"{name}[{index}] is an empty string; a non-empty string is required")


def _encode(tokenizer: PreTrainedTokenizerBase, texts: list[str]) -> list[list[int]]:
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
        continuation_ids = _encode(tokenizer, [moved + c for c in continuations])
        return _Request([_prefix_token(tokenizer)], continuation_ids)
    context_ids, *whole = _encode(tokenizer, [stripped] + [stripped + moved + c for c in continuations])
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
        _check_strings(f"requests[{index}] continuations", continuations, allow_empty_strings=False)
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
def _evaluating(model: PreTrainedModel) -> Iterator[None]:
    """Eval mode and inference mode for the duration; the training flag is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


def _parts(model: PreTrainedModel) -> tuple[nn.Module, nn.Module]:
    """The decoder (hidden states, final norm applied) and the language-model head."""
    head = model.get_output_embeddings()
    if head is None or model.base_model is model:
        raise ConfigError(f"{type(model).__name__} is not a causal LM with a separate output layer")
    return model.base_model, head


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _pad(
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
        target = targets[start : start + _HEAD_ROWS]
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
    decoder, head = _parts(model)
    keys = [(r, o) for r, req in enumerate(requests) for o in range(len(req.continuations))]
    keys.sort(key=lambda k: -(len(requests[k[0]].context) + len(requests[k[0]].continuations[k[1]])))
    for chunk in _chunks(keys, batch_size):
        contexts = [requests[r].context for r, _ in chunk]
        continuations = [requests[r].continuations[o] for r, o in chunk]
        ids, mask = _pad([c + t[:-1] for c, t in zip(contexts, continuations)], model.device)
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
    decoder, head = _parts(model)
    packed = [_pack(request) for request in requests]
    order = sorted(range(len(requests)), key=lambda r: -len(packed[r].ids))
    for group in _chunks(order, batch_size):
        ids, present = _pad([packed[r].ids for r in group], model.device)
        positions, _ = _pad([packed[r].positions for r in group], model.device)
        segments, _ = _pad([packed[r].segments for r in group], model.device)
        mask = _block_mask(segments.masked_fill(present == 0, -1), model.dtype)
        hidden = decoder(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False)
        keys = [(r, o) for r in group for o in range(len(requests[r].continuations))]
        rows = [row for row, r in enumerate(group) for scored in packed[r].scored for _ in scored]
        columns = [column for r in group for scored in packed[r].scored for column in scored]
        selected = hidden.last_hidden_state[
            torch.tensor(rows, device=model.device), torch.tensor(columns, device=model.device)
        ]
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
    _check_positive("batch_size", batch_size)
    encoded = _encode_requests(tokenizer, requests, getattr(model.config, "max_position_embeddings", None))
    scorer = _score_packed if reuse_prefix and _accepts_block_mask(model) else _score_full_sequences
    raw: dict[_Key, tuple[float, bool]] = {}
    total = sum(len(req.continuations) for req in encoded)
    with _evaluating(model), tqdm(total=total, desc="scoring", disable=not progress) as bar:
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


def bits_per_byte(scores: Sequence[ContinuationScore]) -> float:
    """Negative log-likelihood in bits per UTF-8 byte, pooled over all continuations."""
    total_bytes = sum(s.bytes for s in scores)
    if total_bytes == 0:
        raise ConfigError(
            f"bits_per_byte needs at least one non-empty continuation, got {len(scores)} scores"
        )
    return -sum(s.loglik for s in scores) / (math.log(2) * total_bytes)


# ---------------------------------------------------------------- generation


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

    decoder, head = _parts(model)
    ids, mask = _pad(prompts, model.device, left=True)
    positions = (mask.cumsum(dim=-1) - 1).clamp(min=0)
    cache = DynamicCache(config=model.config)
    generated: list[list[int]] = [[] for _ in prompts]
    active = set(range(len(prompts)))
    for step in range(max_new_tokens):
        out = decoder(
            input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache, use_cache=True
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
        ids = next_ids[:, None]
        mask = torch.cat([mask, torch.ones_like(ids)], dim=1)
        positions = positions[:, -1:] + 1
    return generated


def generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 32,
    batch_size: int = 8,
    stop: Sequence[str] = ("\n",),
    min_new_tokens: int = 1,
    progress: bool = True,
) -> list[str]:
    """Greedy completion of each prompt, cut before the first stop string.

    Prompts are tokenised without special tokens (as lm-eval's ``generate_until``). For the first
    ``min_new_tokens`` steps the end-of-sequence tokens are excluded from the argmax, so a model that
    would stop at once (an instruct model right after "Answer:") gives its best non-empty answer
    instead of "". A stop string is still honoured from the first token: a completion that starts
    with a stop string is "". The end-of-sequence token itself is never part of the returned text.
    """
    _check_positive("max_new_tokens", max_new_tokens)
    _check_positive("batch_size", batch_size)
    if not isinstance(min_new_tokens, int) or isinstance(min_new_tokens, bool) or not (
        0 <= min_new_tokens <= max_new_tokens
    ):
        raise ConfigError(
            f"min_new_tokens must be an integer in [0, max_new_tokens={max_new_tokens}], "
            f"got {min_new_tokens!r}"
        )
    _check_strings("stop", stop, allow_empty_strings=False)
    _check_strings("prompts", prompts, allow_empty_strings=False)
    if not prompts:
        return []
    encoded = _encode(tokenizer, list(prompts))
    end_ids = _end_token_ids(model, tokenizer)
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    texts = [""] * len(encoded)
    with _evaluating(model), tqdm(total=len(encoded), desc="generating", disable=not progress) as bar:
        for chunk in _chunks(order, batch_size):
            new_ids = _greedy_batch(
                model, tokenizer, [encoded[i] for i in chunk],
                end_ids=end_ids, stop=stop, max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens,
            )
            for i, ids in zip(chunk, new_ids):
                texts[i] = _cut_at_stop(tokenizer.decode(ids, skip_special_tokens=True), stop)
            bar.update(len(chunk))
    return texts


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
    _check_positive("batch_size", batch_size)
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
        raise ConfigError(f"max_length must be an integer >= 2, got {max_length!r}")
    _check_strings("texts", texts, allow_empty_strings=True)
    bos = [] if tokenizer.bos_token_id is None else [tokenizer.bos_token_id]
    sequences = [seq for seq in (
        (bos + ids)[:max_length] for ids in (_encode(tokenizer, list(texts)) if texts else [])
    ) if len(seq) > 1]
    if not sequences:
        raise ConfigError(
            f"perplexity needs a text of at least 2 tokens (BOS included); "
            f"got {len(texts)} texts, none that long"
        )
    sequences.sort(key=len, reverse=True)
    decoder, head = _parts(model)
    nll, count = 0.0, 0
    with _evaluating(model), tqdm(total=len(sequences), desc="perplexity", disable=not progress) as bar:
        for chunk in _chunks(sequences, batch_size):
            ids, mask = _pad(chunk, model.device)
            hidden = decoder(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
            selected = _gather(hidden, [0] * len(chunk), [len(seq) - 1 for seq in chunk])
            targets = torch.tensor([t for seq in chunk for t in seq[1:]], device=hidden.device)
            logprobs, _ = _token_logprobs(head, selected, targets)
            nll -= float(logprobs.sum())
            count += len(targets)
            bar.update(len(chunk))
    return math.exp(nll / count)


# ---------------------------------------------------------------- answer metrics


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


def accuracy(predictions: Sequence[int], labels: Sequence[int]) -> float:
    """Classification accuracy: the fraction of predictions equal to their labels.

    Raises ConfigError for empty input or sequences of different lengths.
    """
    if len(predictions) != len(labels) or not labels:
        raise ConfigError(f"accuracy needs equally long, non-empty predictions and labels; got "
                          f"{len(predictions)} and {len(labels)}")
    return sum(int(p) == int(y) for p, y in zip(predictions, labels)) / len(labels)
