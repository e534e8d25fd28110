"""Scoring engine: log-likelihoods of continuations (lm-evaluation-harness conventions) and perplexity.

Scoring follows lm-evaluation-harness (``loglikelihood`` of the HF causal backend): trailing
whitespace of a context moves to the front of its continuation, the continuation tokens are the
tokens of ``context + continuation`` past the context's own tokens, and an empty context is replaced
by the BOS token (the EOS token when there is no BOS). Every context starts with the model's decided
prefix (:class:`~junkdna_core.models.conventions.InputFormat`: the BOS token exactly when the
tokenizer adds it by default, unless ``--jd-bos`` says otherwise), and with the chat template on it is
first rendered as one user turn followed by the assistant's turn, as lm-eval's
``--apply_chat_template`` does (the continuations then lose their leading space, lm-eval's target
delimiter).

Output-layer logits are computed only at the positions that are scored: the decoder runs alone and
the language-model head is applied to the few hidden states needed, each once, which saves most of
the full-vocabulary projection. Each context runs once with the prefix tree of its continuations
(:mod:`junkdna_core.scoring.packing`), requests whose contexts start with the same tokens (the k-shot
prompts of one item) run as one tree, the tokens every context starts with (a chat template's preamble,
fixed demonstrations) run once as a KV cache that each batch continues, and sequences are batched by length.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn
from tqdm.auto import tqdm

from junkdna_core.config.checks import check_count
from junkdna_core.config.errors import ConfigError
from junkdna_core.models.conventions import InputFormat, input_format, tokenizer_conventions
from junkdna_core.models.devices import input_device
from junkdna_core.scoring.cpu_linear import onednn_linears
from junkdna_core.scoring.packing import PackedRequest, batch_mask, pack

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = [
    "ContinuationScore",
    "multiple_choice_predictions",
    "perplexity",
    "prompt_ids",
    "score_continuations",
    "scores_packed",
    "sequence_lengths",
]

_HEAD_ROWS = 256  # hidden states projected to the vocabulary at once (bounds logits memory)
_SHARED_TOKENS = 16  # requests whose contexts share this many leading tokens run as one packed sequence
_ROW_TOKENS = 2048  # at most this many tokens in a sequence of several requests (its mask is width x width)
_MASKABLE_ATTENTION = frozenset({"eager", "sdpa"})  # attention implementations that take a 4-D mask


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
    """Token ids of each text, without any special token (the prefix is added separately)."""
    return [list(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def default_inputs(tokenizer: PreTrainedTokenizerBase) -> InputFormat:
    """The input format a tokenizer gets without options: its own prefix, no chat template."""
    return input_format(tokenizer_conventions(tokenizer))


def chat_prompt(tokenizer: PreTrainedTokenizerBase, text: str) -> str:
    """``text`` as one user turn followed by the start of the assistant's turn, in the model's chat template."""
    return tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                         add_generation_prompt=True)


def with_prefix(ids: list[int], inputs: InputFormat) -> list[int]:
    """``ids`` led by the decided prefix, unless they start with it already (a chat template that writes it)."""
    prefix = list(inputs.prefix)
    return ids if ids[: len(prefix)] == prefix else prefix + ids


def prompt_ids(tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str], inputs: InputFormat | None = None
               ) -> list[list[int]]:
    """Token ids of each prompt as the model is fed it: chat template (when on), then the decided prefix.

    ``inputs`` defaults to the tokenizer's own conventions (:func:`default_inputs`).
    """
    inputs = inputs or default_inputs(tokenizer)
    texts = [chat_prompt(tokenizer, p) for p in prompts] if inputs.chat_template else list(prompts)
    return [with_prefix(ids, inputs) for ids in encode(tokenizer, texts)] if texts else []


def _prefix_token(tokenizer: PreTrainedTokenizerBase) -> int:
    for token_id in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return token_id
    raise ConfigError("an empty context needs a BOS or EOS token, but the tokenizer has neither")


def _encode_request(
    tokenizer: PreTrainedTokenizerBase, context: str, continuations: Sequence[str], inputs: InputFormat
) -> _Request:
    """Tokenise one request as lm-eval's ``_encode_pair`` does, sharing the context tokens.

    The decided prefix leads the context; an empty context is the prefix alone, or the BOS (else EOS)
    token when the prefix is empty.
    """
    if inputs.chat_template:
        context = chat_prompt(tokenizer, context)
    stripped = context.rstrip()
    moved = context[len(stripped) :]
    empty = list(inputs.prefix) or [_prefix_token(tokenizer)]
    if not stripped:
        return _Request(empty, encode(tokenizer, [moved + c for c in continuations]))
    context_ids, *whole = encode(tokenizer, [stripped] + [stripped + moved + c for c in continuations])
    if not context_ids:
        return _Request(empty, whole)
    return _Request(with_prefix(context_ids, inputs), [ids[len(context_ids) :] for ids in whole])


def _scored_continuations(continuations: Sequence[str], inputs: InputFormat) -> list[str]:
    """The continuations as scored: under the chat template without their leading space (lm-eval's
    target delimiter, which it drops there)."""
    if not inputs.chat_template:
        return list(continuations)
    return [c.removeprefix(" ") for c in continuations]


def _encode_requests(
    tokenizer: PreTrainedTokenizerBase,
    requests: Sequence[tuple[str, Sequence[str]]],
    max_positions: int | None,
    inputs: InputFormat,
) -> tuple[list[_Request], list[list[str]]]:
    """Every request tokenised, and its continuations as scored; ConfigError before any forward."""
    encoded, texts = [], []
    for index, request in enumerate(requests):
        if not isinstance(request, (tuple, list)) or len(request) != 2 or not isinstance(request[0], str):
            raise ConfigError(f"requests[{index}] must be a (context, continuations) pair, got {request!r}")
        context, continuations = request
        check_strings(f"requests[{index}] continuations", continuations, allow_empty_strings=False)
        if len(continuations) == 0:
            raise ConfigError(f"requests[{index}] has no continuations; at least one is required")
        scored = _scored_continuations(continuations, inputs)
        check_strings(f"requests[{index}] continuations as scored", scored, allow_empty_strings=False)
        item = _encode_request(tokenizer, context, scored, inputs)
        _check_encoded(index, item, scored, max_positions)
        encoded.append(item)
        texts.append(scored)
    return encoded, texts


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
    """Eval mode and inference mode for the duration, float32 CPU linear layers through oneDNN
    (:mod:`~junkdna_core.scoring.cpu_linear`); the training flag is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), onednn_linears(model):
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


def _target_logprobs(
    head: nn.Module, hidden: torch.Tensor, rows: Sequence[int], targets: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """log p(target | hidden[row]) and whether the target is the argmax, for each (row, target) pair.

    Each hidden state is projected to the vocabulary once, however many targets it predicts.
    """
    device = hidden.device
    row_of = torch.tensor(rows, dtype=torch.long, device=device)
    wanted = torch.tensor(targets, dtype=torch.long, device=device)
    logprobs = torch.empty(len(targets), device=device)
    greedy = torch.empty(len(targets), dtype=torch.bool, device=device)
    for start in range(0, hidden.shape[0], _HEAD_ROWS):
        logits = head(hidden[start : start + _HEAD_ROWS]).float().to(device)  # the head may sit on another device
        pick = ((row_of >= start) & (row_of < start + _HEAD_ROWS)).nonzero().squeeze(1)
        local, target = row_of[pick] - start, wanted[pick]
        logprobs[pick] = logits.log_softmax(dim=-1)[local, target]
        greedy[pick] = logits.argmax(dim=-1)[local] == target
    return logprobs, greedy


def _sums(logprobs: torch.Tensor, greedy: torch.Tensor, lengths: list[int]) -> list[tuple[float, bool]]:
    """(sum of log-probabilities, all greedy) of each consecutive run of ``lengths`` targets."""
    return [(float(lp.sum()), bool(g.all())) for lp, g in zip(logprobs.split(lengths), greedy.split(lengths))]


# ---------------------------------------------------------------- log-likelihood scoring

_Key = tuple[int, int]  # (request index, continuation index)


def _score_full_sequences(
    model: PreTrainedModel, requests: list[_Request], batch_size: int, bar: tqdm
) -> Iterator[tuple[_Key, tuple[float, bool]]]:
    """Score every (context, continuation) pair as its own sequence: the no-reuse reference path."""
    decoder, head = decoder_and_head(model)
    for chunk in _pair_batches(requests, batch_size):
        contexts = [requests[r].context for r, _ in chunk]
        continuations = [requests[r].continuations[o] for r, o in chunk]
        ids, mask = pad([c + t[:-1] for c, t in zip(contexts, continuations)], input_device(model))
        hidden = decoder(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
        selected = _gather(hidden, [len(c) - 1 for c in contexts], [len(t) for t in continuations])
        targets = [t for tokens in continuations for t in tokens]
        logprobs, greedy = _target_logprobs(head, selected, range(len(targets)), targets)
        yield from zip(chunk, _sums(logprobs, greedy, [len(t) for t in continuations]))
        bar.update(len(chunk))


def kv_cache_keyword(decoder: nn.Module) -> str:
    """The name of the decoder's KV-cache argument: transformers 5 calls it ``cache`` (``past_key_values`` is
    deprecated there), 4.x knows only ``past_key_values``."""
    return "cache" if "cache" in inspect.signature(decoder.forward).parameters else "past_key_values"


def _common_prefix(requests: list[_Request]) -> int:
    """The number of leading context tokens that every request shares, each context keeping at least its last
    token (whose hidden state predicts); 0 for fewer than two requests."""
    if len(requests) < 2:
        return 0
    first = requests[0].context
    shared = min(len(r.context) for r in requests) - 1
    for request in requests[1:]:
        if shared == 0:
            break
        shared = _shared_length(first[:shared], request.context)
    return shared


class _PrefixCache:
    """The KV cache of a prefix that every request starts with, run once and handed to each batch."""

    def __init__(self, model: PreTrainedModel, prefix: list[int]) -> None:
        from transformers import DynamicCache  # a model that scores has imported transformers already

        decoder, _ = decoder_and_head(model)
        self.keyword = kv_cache_keyword(decoder)
        self.cache = DynamicCache(config=model.config)
        ids = torch.tensor([prefix], device=input_device(model))
        decoder(input_ids=ids, use_cache=True, **{self.keyword: self.cache})

    def for_rows(self, rows: int) -> dict[str, object]:
        """The decoder arguments of a batch of ``rows`` sequences that continue the prefix (a fresh copy of the
        cache each time: the decoder appends the batch's keys and values to it)."""
        cache = copy.deepcopy(self.cache)
        cache.batch_repeat_interleave(rows)
        return {self.keyword: cache, "use_cache": True}


def _score_packed(
    model: PreTrainedModel, requests: list[_Request], batch_size: int, bar: tqdm
) -> Iterator[tuple[_Key, tuple[float, bool]]]:
    """Run each packed sequence (:mod:`~junkdna_core.scoring.packing`) once: one context with the tree of its
    continuations, or several requests whose contexts start alike (:func:`_rows`).

    The tokens every context starts with (a chat template's preamble, a task's fixed demonstrations, or just
    ``Question:``) run once, and each batch continues their KV cache. Sequences are batched by length (longest
    first), so rows of one batch need little padding.
    """
    decoder, head = decoder_and_head(model)
    device = input_device(model)
    shared = _common_prefix(requests)
    prefix = _PrefixCache(model, requests[0].context[:shared]) if shared else None
    for group, rows in _packed_batches(_after(requests, shared), batch_size):
        ids, _ = pad([list(r.ids) for r in rows], device)
        positions, _ = pad([[shared + p for p in r.positions] for r in rows], device)
        mask = batch_mask(rows, model.dtype, prefix=shared).to(device)
        kv = prefix.for_rows(len(rows)) if prefix else {"use_cache": False}
        hidden = decoder(input_ids=ids, attention_mask=mask, position_ids=positions, **kv).last_hidden_state
        keys, coordinates, row_of, targets, lengths = [], [], [], [], []
        for row, members in enumerate(group):
            seen: dict[int, int] = {}  # sequence index -> row of the selected hidden states
            pairs = [(r, o) for r in members for o in range(len(requests[r].continuations))]
            for (r, o), path in zip(pairs, rows[row].predictors):
                tokens = requests[r].continuations[o]
                for index, token in zip(path, tokens):
                    if index not in seen:
                        seen[index] = len(coordinates)
                        coordinates.append((row, index))
                    row_of.append(seen[index])
                    targets.append(token)
                keys.append((r, o))
                lengths.append(len(tokens))
        where = torch.tensor(coordinates, device=hidden.device)
        logprobs, greedy = _target_logprobs(head, hidden[where[:, 0], where[:, 1]], row_of, targets)
        yield from zip(keys, _sums(logprobs, greedy, lengths))
        bar.update(len(keys))


def _pair_batches(requests: list[_Request], batch_size: int) -> Iterator[list[_Key]]:
    """The (request, continuation) pairs of the no-reuse path in its batches: longest sequence first."""
    keys = [(r, o) for r, req in enumerate(requests) for o in range(len(req.continuations))]
    keys.sort(key=lambda k: -(len(requests[k[0]].context) + len(requests[k[0]].continuations[k[1]])))
    return chunks(keys, batch_size)


def _shared_length(a: Sequence[int], b: Sequence[int]) -> int:
    """The number of leading tokens ``a`` and ``b`` have in common."""
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def _rows(requests: list[_Request]) -> list[list[int]]:
    """Request indices grouped into packed sequences.

    Requests are taken in the order of their context tokens; one joins the previous one's sequence when
    their contexts share at least :data:`_SHARED_TOKENS` leading tokens (the k-shot prompts of one item,
    which start with the same demonstrations) and the sequence stays within twice its longest request and
    :data:`_ROW_TOKENS` tokens, so attention over the longer sequence costs less than the shared tokens
    save (a preamble that many prompts but not all start with is shared a few requests at a time; what all
    of them start with is cut off before, see :func:`_score_packed`).
    Each path in a sequence is no longer than its request's own, so a sliding window sees what it would.
    Other requests run alone, as a request without such neighbours always does.
    """
    order = sorted(range(len(requests)), key=lambda r: requests[r].context)
    rows: list[list[int]] = []
    size = longest = 0
    for previous, r in zip([None, *order], order):
        own = len(requests[r].context) + sum(len(c) - 1 for c in requests[r].continuations)
        shared = 0 if previous is None else _shared_length(requests[previous].context, requests[r].context)
        if shared >= _SHARED_TOKENS and size + own - shared <= min(_ROW_TOKENS, 2 * max(longest, own)):
            rows[-1].append(r)
            size, longest = size + own - shared, max(longest, own)
        else:
            rows.append([r])
            size = longest = own
    return rows


def _after(requests: list[_Request], shared: int) -> list[_Request]:
    """The requests without the first ``shared`` tokens of their contexts (run once, before them)."""
    return [_Request(r.context[shared:], r.continuations) for r in requests] if shared else requests


def _packed_batches(requests: list[_Request], batch_size: int) -> Iterator[tuple[list[list[int]], list[PackedRequest]]]:
    """The packed path's batches: per sequence its request indices, and the packed sequences; longest first
    (ties in the order of the requests)."""
    rows = _rows(requests)
    packed = [pack([(requests[r].context, requests[r].continuations) for r in row]) for row in rows]
    order = sorted(range(len(rows)), key=lambda i: (-len(packed[i]), min(rows[i])))
    for chunk in chunks(order, batch_size):
        yield [rows[i] for i in chunk], [packed[i] for i in chunk]


@dataclass(frozen=True)
class ForwardWork:
    """What scoring requests costs in forward passes: token positions run through the decoder (padding
    included, a prefix every context starts with once) and hidden states projected to the vocabulary."""

    decoder_positions: int
    projected_positions: int

    def flops(self, decoder_parameters: int, head_parameters: int) -> float:
        """Multiply-adds of the linear layers, times 2 (attention scores and softmax left out)."""
        return 2.0 * (decoder_parameters * self.decoder_positions + head_parameters * self.projected_positions)


def forward_work(
    tokenizer: PreTrainedTokenizerBase, requests: Sequence[tuple[str, Sequence[str]]], *, batch_size: int = 8,
    reuse_prefix: bool = True, inputs: InputFormat | None = None, project_all: bool = False,
) -> ForwardWork:
    """The :class:`ForwardWork` of :func:`score_continuations` on ``requests`` with these arguments, from the
    batches it lays out (no model is run). ``project_all``: count every position as projected, as a scorer
    that takes the model's full logits does (lm-evaluation-harness)."""
    check_count("batch_size", batch_size)
    encoded, _ = _encode_requests(tokenizer, requests, None, inputs or default_inputs(tokenizer))
    decoder = projected = 0
    if reuse_prefix:
        shared = _common_prefix(encoded)
        decoder += shared  # the prefix every context starts with runs once
        for _, rows in _packed_batches(_after(encoded, shared), batch_size):
            decoder += len(rows) * max(len(r) for r in rows)
            projected += sum(len({i for path in r.predictors for i in path}) for r in rows)
    else:
        for chunk in _pair_batches(encoded, batch_size):
            lengths = [len(encoded[r].context) + len(encoded[r].continuations[o]) - 1 for r, o in chunk]
            decoder += len(chunk) * max(lengths)
            projected += sum(len(encoded[r].continuations[o]) for r, o in chunk)
    return ForwardWork(decoder, decoder if project_all else projected)


def _accepts_block_mask(model: PreTrainedModel, requests: list[_Request]) -> bool:
    """True if the model's attention takes a custom 4-D additive mask (eager and SDPA do) that covers
    every layer: a sliding-window layer would see past its window in a packed sequence longer than it."""
    config = model.config
    if getattr(config, "_attn_implementation", None) not in _MASKABLE_ATTENTION:
        return False
    window = getattr(config, "sliding_window", None)
    if not window or not getattr(config, "use_sliding_window", True):
        return True
    return max(map(_sequence_length, requests), default=0) <= window


def _sequence_length(request: _Request) -> int:
    """Tokens of the longest sequence a request scores: its context and its longest continuation."""
    return len(request.context) + max(len(c) for c in request.continuations)


def sequence_lengths(
    tokenizer: PreTrainedTokenizerBase, requests: Sequence[tuple[str, Sequence[str]]], *,
    inputs: InputFormat | None = None,
) -> list[int]:
    """Per request, the tokens of the longest sequence :func:`score_continuations` feeds for it (the decided
    prefix, the context, the longest continuation), tokenised exactly as the scorer does."""
    encoded, _ = _encode_requests(tokenizer, requests, None, inputs or default_inputs(tokenizer))
    return [_sequence_length(r) for r in encoded]


def scores_packed(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, requests: Sequence[tuple[str, Sequence[str]]], *,
    inputs: InputFormat | None = None,
) -> bool:
    """True when :func:`score_continuations` (``reuse_prefix=True``) packs these requests' continuations after
    their context; False when it falls back to one sequence per continuation (an attention implementation
    without custom masks, or a sliding window shorter than a request)."""
    encoded, _ = _encode_requests(tokenizer, requests, None, inputs or default_inputs(tokenizer))
    return _accepts_block_mask(model, encoded)


def score_continuations(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    requests: Sequence[tuple[str, Sequence[str]]],
    *,
    batch_size: int = 8,
    progress: bool = True,
    reuse_prefix: bool = True,
    inputs: InputFormat | None = None,
) -> list[list[ContinuationScore]]:
    """Log-likelihood of each continuation given its context, one list per ``(context, continuations)``.

    Matches lm-evaluation-harness's ``loglikelihood`` (see the module docstring). ``inputs`` is the
    model's decided input format (prefix, chat template); by default the tokenizer's own conventions.
    With ``reuse_prefix`` each context is run once, followed in the same sequence by the tree of its
    continuations, which an attention mask keeps from seeing each other, requests whose contexts share
    their first 16 tokens or more share one sequence (the tree of their contexts, at most twice as long as
    its longest request), and the leading tokens that all contexts have in common run once, their KV cache
    continued by every batch; ``batch_size`` is then the number of such sequences per forward pass.
    ``reuse_prefix=False`` runs every (context, continuation) pair as its own sequence, ``batch_size`` pairs
    per forward pass (same scores, slower); it is also used for models whose attention implementation takes
    no custom mask (e.g. flash attention). Scores do not depend on ``batch_size`` beyond float rounding.
    """
    check_count("batch_size", batch_size)
    inputs = inputs or default_inputs(tokenizer)
    encoded, texts = _encode_requests(tokenizer, requests, getattr(model.config, "max_position_embeddings", None),
                                      inputs)
    packed = reuse_prefix and _accepts_block_mask(model, encoded)
    scorer = _score_packed if packed else _score_full_sequences
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
        for r, continuations in enumerate(texts)
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
    inputs: InputFormat | None = None,
) -> float:
    """Token-level perplexity, ``exp`` of the mean next-token NLL pooled over all texts.

    Each text is tokenised without special tokens and led by the decided prefix (``inputs``; by
    default the tokenizer's own conventions: its BOS token exactly when it adds one by default), and
    the sequence is truncated to ``max_length`` tokens; every token after the first is predicted. The
    chat template never applies: the texts are not prompts.
    """
    check_count("batch_size", batch_size)
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
        raise ConfigError(f"max_length must be an integer >= 2, got {max_length!r}")
    check_strings("texts", texts, allow_empty_strings=True)
    prefix = list((inputs or default_inputs(tokenizer)).prefix)
    sequences = [seq for seq in (
        (prefix + ids)[:max_length] for ids in (encode(tokenizer, list(texts)) if texts else [])
    ) if len(seq) > 1]
    if not sequences:
        raise ConfigError(
            f"perplexity needs a text of at least 2 tokens (its prefix {prefix} included); "
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
            targets = [t for seq in chunk for t in seq[1:]]
            logprobs, _ = _target_logprobs(head, selected, range(len(targets)), targets)
            nll -= float(logprobs.sum())
            count += len(targets)
            bar.update(len(chunk))
    return math.exp(nll / count)


