"""Fine-tune a pre-trained model on a classification or multiple-choice task in one of four transfer modes.

The modes of the paper (Section 5, Figure 8) differ only in what happens to the
weights a pruning method would remove (its mask's zeros):

- ``dense``: nothing; every weight is trained (Dense Transfer);
- ``dense-frozen``: they keep their pre-trained values (gradient masked, values
  restored after every optimizer step, so AdamW's decoupled weight decay cannot
  move them either);
- ``sparse``: they are zero and held at zero through every step (Sparse Transfer);
- ``sparse-to-dense``: they start at zero and may regrow.

A classifier is the model's backbone with a fresh sequence-classification head
(initialised from the seed); a multiple-choice item is scored as one logit per
(prompt, option) pair, as ``BertForMultipleChoice`` does, so any model with a
sequence-classification head (encoders and causal LMs) can be fine-tuned for
both. Everything that differs between two runs of the same configuration comes
from the seed: head initialisation, dropout and data order.

Inputs are encoded the tokenizer's own way (an encoder's CLS and SEP, which its
classifier reads; a Llama-style tokenizer's BOS). A decided
:class:`~junkdna_core.models.conventions.InputFormat` whose prefix differs from
the tokenizer's (``--jd-bos always`` or ``never`` on a causal LM) replaces the
tokenizer's prefix in every input.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from accelerate import dispatch_model
from torch import nn
from transformers import AutoModelForSequenceClassification, get_linear_schedule_with_warmup

from junkdna_core.compress.base import CompressionMethod
from junkdna_core.compress.masks import apply_masks, hold_masks, release_masks
from junkdna_core.compress.runner import compress_model
from junkdna_core.config.budgets import FinetuneConfig
from junkdna_core.config.errors import ConfigError
from junkdna_core.data.items import ClassificationItem, Item, MultipleChoiceItem
from junkdna_core.models.conventions import InputFormat, tokenizer_conventions
from junkdna_core.models.devices import input_device
from junkdna_core.models.loading import LoadedModel
from junkdna_core.models.placement import rebased_device_map, training_device_map

TransferMode = Literal["dense", "dense-frozen", "sparse", "sparse-to-dense"]
TRANSFER_MODES: tuple[TransferMode, ...] = ("dense", "dense-frozen", "sparse", "sparse-to-dense")
MASKED_MODES = frozenset({"dense-frozen", "sparse", "sparse-to-dense"})


@dataclass(frozen=True)
class Example:
    """What the classifier reads: one (text, pair) per option (one in all for classification) and the label."""

    id: str
    inputs: tuple[tuple[str, str | None], ...]
    label: int


def to_example(item: Item) -> Example:
    """A classification or multiple-choice item as a fine-tuning example."""
    if isinstance(item, ClassificationItem):
        return Example(item.id, ((item.text, item.text_pair),), item.label)
    if isinstance(item, MultipleChoiceItem):
        prompt = f"{item.context}\n{item.question}" if item.context else item.question
        return Example(item.id, tuple((prompt, choice) for choice in item.choices), item.gold)
    raise ConfigError(f"{item.id}: fine-tuning needs classification or multiple-choice items, got a generative item")


def head_size(examples: Sequence[Example]) -> int:
    """Outputs of the classification head: the label count, or 1 (a score per option) for multiple choice."""
    if not examples:
        raise ConfigError("fine-tuning needs at least one example")
    options = {len(e.inputs) for e in examples}
    if len(options) > 1:
        raise ConfigError(f"multiple-choice examples must all have the same number of options; got {sorted(options)}")
    if options == {1}:
        return max(2, 1 + max(e.label for e in examples))
    return 1


def build_classifier(dense: LoadedModel, outputs: int, *, seed: int) -> nn.Module:
    """The dense model's backbone under a new classification head with ``outputs`` logits, seeded."""
    config = copy.deepcopy(dense.model.config)
    config.num_labels = outputs
    config.problem_type = "single_label_classification"
    if getattr(config, "pad_token_id", None) is None:
        config.pad_token_id = dense.tokenizer.pad_token_id if dense.tokenizer.pad_token_id is not None \
            else dense.tokenizer.eos_token_id
    split = training_device_map(dense.model, dense.name)  # before any work: refuses offloaded weights
    parameter = next(dense.model.parameters())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        classifier = AutoModelForSequenceClassification.from_config(config, dtype=parameter.dtype)
    missing, unexpected = classifier.base_model.load_state_dict(dense.model.base_model.state_dict(), strict=False)
    if unexpected or [k for k in missing if "pooler" not in k]:
        raise ConfigError(f"{dense.name}: its backbone does not fit a sequence-classification head "
                          f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    if split is None:
        return classifier.to(parameter.device)
    return dispatch_model(classifier, rebased_device_map(split, dense.model, classifier))


def transfer_masks(classifier: nn.Module, method: CompressionMethod) -> dict[str, torch.Tensor]:
    """The masks ``method`` computes on the classifier's pre-trained weights (the classifier is not changed)."""
    if method.family != "pruning":
        raise ConfigError(f"transfer modes need a pruning method; {method.name} is {method.family}")
    if method.needs_calibration:
        raise ConfigError(f"{method.name} needs calibration text; fine-tuning transfer uses calibration-free "
                          "pruning methods (magnitude, nm, random)")
    return compress_model(copy.deepcopy(classifier), method, progress=False).masks


class _FrozenWeights:
    """Keeps the masked-out entries of each weight at their current values through optimizer steps."""

    def __init__(self, model: nn.Module, masks: Mapping[str, torch.Tensor]) -> None:
        modules = dict(model.named_modules())
        self.kept = []
        for name, mask in masks.items():
            weight = modules[name].weight
            frozen = ~mask.to(weight.device)
            self.kept.append((weight, frozen, weight.detach()[frozen].clone()))
            weight.register_hook(lambda grad, frozen=frozen: grad.masked_fill(frozen, 0.0))

    @torch.no_grad()
    def restore(self) -> None:
        for weight, frozen, values in self.kept:
            weight[frozen] = values


def encode_inputs(tokenizer: Any, texts: list[str], pairs: list[str | None], max_length: int,
                  inputs: InputFormat | None = None) -> Any:
    """The padded batch encoding of (text, pair) inputs: the tokenizer's own special tokens, its prefix
    replaced by ``inputs.prefix`` when that differs (see the module docstring)."""
    pair_texts = pairs if any(p is not None for p in pairs) else None
    own = tokenizer_conventions(tokenizer).prefix
    if inputs is None or inputs.prefix == own:
        return tokenizer(texts, pair_texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
    prefix = list(inputs.prefix)
    encoded = tokenizer(texts, pair_texts, truncation=True, max_length=max(2, max_length - len(prefix) + len(own)))
    rows = []
    for index, ids in enumerate(encoded["input_ids"]):
        cut = len(own) if tuple(ids[: len(own)]) == own else 0
        row = {}
        for key, values in encoded.items():
            lead = prefix if key == "input_ids" else [1 if key == "attention_mask" else values[index][0]] * len(prefix)
            row[key] = (lead + list(values[index][cut:]))[:max_length]
        rows.append(row)
    return tokenizer.pad(rows, padding=True, return_tensors="pt")


def _encoded(tokenizer: Any, examples: Sequence[Example], max_length: int, inputs: InputFormat | None) -> Any:
    """:func:`encode_inputs` of every (text, pair) of ``examples``, example by example, option by option."""
    texts = [text for e in examples for text, _ in e.inputs]
    pairs = [pair for e in examples for _, pair in e.inputs]
    return encode_inputs(tokenizer, texts, pairs, max_length, inputs)


def _logits(model: nn.Module, tokenizer: Any, batch: Sequence[Example], max_length: int,
            inputs: InputFormat | None = None) -> torch.Tensor:
    """(batch, classes) logits; for multiple choice, one column per option."""
    encoded = _encoded(tokenizer, batch, max_length, inputs)
    device = input_device(model)
    logits = model(**{k: v.to(device) for k, v in encoded.items()}).logits
    options = len(batch[0].inputs)
    return logits.view(len(batch), options) if options > 1 else logits


def _labels(batch: Sequence[Example], device: torch.device) -> torch.Tensor:
    return torch.tensor([e.label for e in batch], device=device)


FUSED_DEVICES = frozenset({"cpu", "cuda"})
FUSED_DTYPES = frozenset({torch.float32, torch.float16, torch.bfloat16})


def _fusable(parameters: Sequence[torch.Tensor]) -> bool:
    """Whether AdamW's fused kernel takes every parameter (a quarter less time per step on CPU than the
    per-tensor loop, the default there); else the default implementation."""
    return all(p.device.type in FUSED_DEVICES and p.dtype in FUSED_DTYPES for p in parameters)


def finetune(
    model: nn.Module, tokenizer: Any, train: Sequence[Example], config: FinetuneConfig, *, mode: TransferMode,
    masks: Mapping[str, torch.Tensor] | None = None, seed: int = 0, on_step: Callable[[int, float], None] | None = None,
    inputs: InputFormat | None = None,
) -> list[float]:
    """Train ``model`` in place on ``train`` in transfer ``mode``; returns the training loss of every step.

    ``masks`` (module name -> bool keep-mask, from :func:`transfer_masks`) are
    required by every mode but ``dense``. After a ``sparse`` run the held masks
    are squashed into the weights, so the returned model is a plain module.
    ``inputs``: the model's decided input format (None: the tokenizer's own; see the module docstring).
    """
    if mode not in TRANSFER_MODES:
        raise ConfigError(f"transfer mode must be one of {', '.join(TRANSFER_MODES)}; got {mode!r}")
    if mode in MASKED_MODES and not masks:
        raise ConfigError(f"transfer mode {mode!r} needs the pruning masks")
    if not train:
        raise ConfigError("fine-tuning needs at least one training example")
    frozen = None
    if mode == "sparse":
        hold_masks(model, masks)
    elif mode == "sparse-to-dense":
        with torch.no_grad():
            apply_masks(model, masks)
    elif mode == "dense-frozen":
        frozen = _FrozenWeights(model, masks)

    steps = config.steps(len(train))
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=config.learning_rate, weight_decay=config.weight_decay,
                                  fused=_fusable(trained))
    schedule = get_linear_schedule_with_warmup(optimizer, round(config.warmup * steps), steps)
    device = input_device(model)
    order = torch.Generator().manual_seed(seed)
    queue: list[int] = []
    losses = []
    model.train()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for step in range(steps):
            if len(queue) < config.batch_size:
                queue += torch.randperm(len(train), generator=order).tolist()
            batch = [train[i] for i in queue[: config.batch_size]]
            del queue[: config.batch_size]
            logits = _logits(model, tokenizer, batch, config.max_length, inputs)
            loss = F.cross_entropy(logits, _labels(batch, logits.device))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            if frozen is not None:
                frozen.restore()
            losses.append(float(loss.detach()))
            if on_step is not None:
                on_step(step, losses[-1])
    if mode == "sparse":
        release_masks(model)
    model.eval()
    return losses


@dataclass(frozen=True)
class Evaluation:
    """Per-example correctness (0/1) and cross-entropy loss of a classifier on a test set."""

    item_ids: tuple[str, ...]
    correct: tuple[float, ...]
    losses: tuple[float, ...]

    @property
    def accuracy(self) -> float:
        """Fraction of examples classified correctly."""
        return math.fsum(self.correct) / len(self.correct)

    @property
    def loss(self) -> float:
        """Mean cross-entropy loss."""
        return math.fsum(self.losses) / len(self.losses)


def _lengths(tokenizer: Any, examples: Sequence[Example], max_length: int, inputs: InputFormat | None) -> list[int]:
    """Each example's longest input in tokens, as the classifier is fed it."""
    tokens = iter(_encoded(tokenizer, examples, max_length, inputs)["attention_mask"].sum(dim=-1).tolist())
    return [max(next(tokens) for _ in e.inputs) for e in examples]


@torch.no_grad()
def evaluate(model: nn.Module, tokenizer: Any, examples: Sequence[Example], *, batch_size: int = 16,
             max_length: int = 128, inputs: InputFormat | None = None) -> Evaluation:
    """Accuracy and loss of ``model`` on every example, in the order given (eval mode, no dropout; ``inputs`` as
    :func:`finetune`). Batches hold examples of similar length, so little of a batch is padding."""
    if not examples:
        raise ConfigError("evaluation needs at least one example")
    lengths = _lengths(tokenizer, examples, max_length, inputs)
    order = sorted(range(len(examples)), key=lengths.__getitem__)
    was_training = model.training
    model.eval()
    correct, losses = [0.0] * len(examples), [0.0] * len(examples)
    for start in range(0, len(examples), batch_size):
        chosen = order[start : start + batch_size]
        batch = [examples[i] for i in chosen]
        logits = _logits(model, tokenizer, batch, max_length, inputs).float()
        labels = _labels(batch, logits.device)
        for i, loss, hit in zip(chosen, F.cross_entropy(logits, labels, reduction="none").tolist(),
                                (logits.argmax(dim=-1) == labels).float().tolist()):
            losses[i], correct[i] = loss, hit
    model.train(was_training)
    return Evaluation(tuple(e.id for e in examples), tuple(correct), tuple(losses))


def interpolate(first: Mapping[str, torch.Tensor], second: Mapping[str, torch.Tensor], alpha: float
                ) -> dict[str, torch.Tensor]:
    """``alpha * second + (1 - alpha) * first`` for floating-point tensors; other tensors from ``first``."""
    if set(first) != set(second):
        raise ConfigError("the two solutions have different parameters; interpolate models of one architecture")
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"alpha must lie in [0, 1]; got {alpha}")
    return {name: torch.lerp(tensor, second[name], alpha) if tensor.is_floating_point() else tensor
            for name, tensor in first.items()}
