"""Is a model scored right by the suite? What ``junkdna check-model`` reports, like the conformance kit for methods.

It reads the model's own conventions (its tokenizer's special tokens, padding side
and length limit, the attention implementation, parameters, dtype) and runs four
checks on a few shipped items, each of which passes or fails, saying what to set:

- ``bos``: the input format (``--jd-bos``, ``--jd-chat-template``:
  :func:`~junkdna_core.models.conventions.input_format`) can be decided for this
  tokenizer; the report shows the decision, which every other check scores under;
- ``packed-scoring``: multiple-choice scoring with the options packed after their
  shared prompt (the scorer's default, ``reuse_prefix=True``) is used, and equals one
  sequence per option: the same choices, log-likelihoods within the dtype's rounding;
- ``batch-size``: scores do not depend on the batch size, in the same sense;
- ``positions``: the longest prompt of every setting fits the model's positions.

"Within the dtype's rounding": reordered float sums differ by a few units in the
last place per operation, and the probabilistic rounding-error bound of a chain of
operations grows with its square root (Higham & Mary 2019, SIAM J. Sci. Comput.
41(5)); a log-likelihood may move by ``ROUNDING_ULPS * eps(dtype) * sqrt(layers)``
of its size. A real fault (a mask that lets options see each other, positions not
taken from ``position_ids``) moves it by orders of magnitude more.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from junkdna_core.config.errors import ConfigError
from junkdna_core.config.parsing import BosPolicy
from junkdna_core.data.items import sample_items
from junkdna_core.data.settings import Setting, get_setting
from junkdna_core.data.tasks import load_task
from junkdna_core.models.conventions import InputFormat, TokenizerConventions, input_format, tokenizer_conventions
from junkdna_core.scoring.engine import score_continuations, scores_packed, sequence_lengths
from junkdna_core.scoring.levels import level_requests, setting_items
from junkdna_core.storage.cache import ArtifactCache

if TYPE_CHECKING:
    from junkdna_core.models.loading import LoadedModel

ROUNDING_ULPS = 8  # units in the last place a log-likelihood may move per square root of a layer
PROBE_ITEMS = 6  # shipped items per probe level (ARC-Easy 4-option cloze, WinoGrande partial)
PROBE_BATCH = 8  # the scorer's default batch size, compared with batch size 1
# The probe: two levels whose requests differ in shape (k continuations of one context; k contexts, one
# continuation), from settings every model is run on.
PROBE_LEVELS = (("setting2", "options-4"), ("setting5", "winogrande"))

@dataclass(frozen=True)
class Check:
    """One check's outcome: what was measured and, when it failed, what to set."""

    name: str
    passed: bool
    measured: str
    advice: str = ""


@dataclass(frozen=True)
class ModelReport:
    """What ``junkdna check-model`` found: the model's conventions and every check's outcome."""

    model: str
    facts: dict[str, Any]
    checks: tuple[Check, ...]
    seconds: float = field(default=0.0, compare=False)

    @property
    def passed(self) -> bool:
        """True when no check failed."""
        return all(check.passed for check in self.checks)

    def describe(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {"model": self.model, "facts": self.facts, "passed": self.passed, "seconds": self.seconds,
                "checks": [vars(check) for check in self.checks]}

    def render(self) -> str:
        """The report as the lines the command prints."""
        f, t = self.facts, self.facts["tokenizer"]
        model = (f"model      {self.model}: {f['class']}, {f['parameters']:,} parameters, {f['dtype']} on "
                 f"{f['device']}, fingerprint {f['fingerprint']}")
        tokens = (f"tokenizer  BOS {_token(t['bos_token'], t['bos_token_id'])}, EOS "
                  f"{_token(t['eos_token'], t['eos_token_id'])}, pad {_token(t['pad_token'], t['pad_token_id'])}; "
                  f"adds by default: before a text {t['prefix_tokens'] or 'nothing'}, after it "
                  f"{t['suffix_tokens'] or 'nothing'}; padding side {t['padding_side']}; "
                  f"max length {t['max_length'] or 'none'}")
        attention = f"attention  {f['attention']}; {f['layers']} layers; positions {f['positions'] or 'no limit'}"
        inputs = f.get("inputs")
        fed = ("inputs     undecided (see the bos check)" if inputs is None else
               f"inputs     --jd-bos {inputs['bos']}: every text starts with {inputs['prefix_tokens'] or 'nothing'}; "
               f"chat template {'on' if inputs['chat_template'] else 'off'}")
        lines = [model, tokens, attention, fed, ""]
        width = max(len(check.name) for check in self.checks)
        for check in self.checks:
            lines.append(f"{'PASS' if check.passed else 'FAIL'}  {check.name:{width}}  {check.measured}")
            if check.advice:
                lines.append(f"      {'':{width}}  -> {check.advice}")
        failed = [check.name for check in self.checks if not check.passed]
        verdict = f"FAILED: {', '.join(failed)}" if failed else "every check passes"
        lines.append(f"{verdict} ({self.seconds:.0f} s)")
        return "\n".join(lines) + "\n"


def _token(text: str | None, token_id: int | None) -> str:
    return "none" if token_id is None else f"{text!r} (id {token_id})"


def _facts(loaded: LoadedModel, conventions: TokenizerConventions) -> dict[str, Any]:
    model, tokenizer = loaded.model, loaded.tokenizer
    tokens = tokenizer.convert_ids_to_tokens
    return {
        "name": loaded.name, "fingerprint": loaded.fingerprint, "source": loaded.source,
        "class": type(model).__name__, "parameters": int(model.num_parameters()),
        "dtype": loaded.dtype, "device": loaded.device,
        "placement": loaded.placement.describe() if loaded.placement else None,
        "attention": getattr(model.config, "_attn_implementation", None) or "unknown",
        "layers": _layers(model), "positions": _positions(model, conventions),
        "tokenizer": {**conventions.describe(), "bos_token": tokenizer.bos_token, "eos_token": tokenizer.eos_token,
                      "pad_token": tokenizer.pad_token, "prefix_tokens": tokens(list(conventions.prefix)),
                      "suffix_tokens": tokens(list(conventions.suffix))},
    }


def _layers(model: Any) -> int:
    config = model.config
    return int(next((getattr(config, n) for n in ("num_hidden_layers", "n_layer", "num_layers")
                     if isinstance(getattr(config, n, None), int)), 1))


def _positions(model: Any, conventions: TokenizerConventions) -> int | None:
    """The longest sequence the model takes: its position embeddings and the tokenizer's limit, the shorter."""
    limits = [n for n in (getattr(model.config, "max_position_embeddings", None), conventions.max_length)
              if isinstance(n, int) and n > 0]
    return min(limits) if limits else None


def rounding_tolerance(model: Any) -> float:
    """The relative change of a log-likelihood that float rounding explains for this model (module docstring)."""
    dtype = model.dtype if model.dtype.is_floating_point else torch.float32
    return ROUNDING_ULPS * torch.finfo(dtype).eps * math.sqrt(_layers(model))


def _bos_check(conventions: TokenizerConventions, policy: BosPolicy, chat_template: bool
               ) -> tuple[Check, InputFormat | None]:
    try:
        inputs = input_format(conventions, bos=policy, chat_template=chat_template)
    except ConfigError as exc:
        return Check("bos", False, str(exc), "use --jd-bos auto (what the tokenizer does by default) or never, "
                                             "and --jd-chat-template only with a tokenizer that has one"), None
    why = {"auto": "what the tokenizer adds by default", "always": "--jd-bos always", "never": "--jd-bos never"}
    starts = (f"{list(inputs.prefix_tokens)} (ids {list(inputs.prefix)})" if inputs.prefix else "no special token")
    chat = ", prompts through the chat template" if inputs.chat_template else ""
    return Check("bos", True, f"every text starts with {starts} ({inputs.bos}: {why[inputs.bos]}){chat}"), inputs


@dataclass(frozen=True)
class _Probe:
    """Scorer requests of a few shipped items, and which continuations are the options of each question."""

    requests: list[tuple[str, list[str]]]
    questions: list[int]  # options per question, in request order

    def logliks(self, model: Any, tokenizer: Any, inputs: InputFormat, **options: Any) -> list[list[float]]:
        """Per question, the log-likelihood of each option."""
        flat = [s.loglik for row in score_continuations(model, tokenizer, self.requests, progress=False,
                                                        inputs=inputs, **options) for s in row]
        starts = [sum(self.questions[:i]) for i in range(len(self.questions))]
        return [flat[start:start + count] for start, count in zip(starts, self.questions)]


def _probe(seed: int) -> _Probe:
    requests, questions = [], []
    for setting, name in PROBE_LEVELS:
        level = get_setting(setting).level(name)
        options = level.transform.get("options")
        items = sample_items(load_task(level.task, level.split), PROBE_ITEMS, seed,
                             keep=lambda item, k=options: k is None or len(item.choices) == k)
        plan = level_requests(level, items.items, seed=seed)
        requests.extend(plan.flat_requests)
        questions.extend(sum(len(continuations) for _, continuations in item) for item in plan.requests)
    return _Probe(requests, questions)


def _agreement(name: str, reference: list[list[float]], other: list[list[float]], tolerance: float,
               what: str, advice: str) -> Check:
    """Same choices (raw log-likelihood) and every log-likelihood within ``tolerance`` of its size."""
    def choices(rows: list[list[float]]) -> list[int]:
        return [max(range(len(row)), key=row.__getitem__) for row in rows]

    differing = sum(a != b for a, b in zip(choices(reference), choices(other)))
    pairs = [(a, b) for ra, rb in zip(reference, other) for a, b in zip(ra, rb)]
    worst = max(abs(a - b) / max(abs(b), 1e-30) for a, b in pairs)
    measured = (f"{what}: {len(reference)} questions, {differing} differing choices, largest relative "
                f"log-likelihood change {worst:.2e} (rounding allows {tolerance:.2e})")
    ok = differing == 0 and worst <= tolerance
    return Check(name, ok, measured, "" if ok else advice)


def _options_checks(loaded: LoadedModel, seed: int, inputs: InputFormat) -> list[Check]:
    model, tokenizer = loaded.model, loaded.tokenizer
    probe = _probe(seed)
    tolerance = rounding_tolerance(model)
    default = probe.logliks(model, tokenizer, inputs, batch_size=PROBE_BATCH)
    attention = getattr(model.config, "_attn_implementation", None)
    if scores_packed(model, tokenizer, probe.requests, inputs=inputs):
        separate = probe.logliks(model, tokenizer, inputs, batch_size=PROBE_BATCH, reuse_prefix=False)
        packed = _agreement(
            "packed-scoring", separate, default, tolerance, "options packed after their prompt vs one sequence each",
            f"packed scoring is wrong on {attention} attention for this model: report it; until fixed, score with "
            "score_continuations(..., reuse_prefix=False)")
    else:
        packed = Check(
            "packed-scoring", False,
            f"attention {attention!r} takes no custom 4-D mask, or its sliding window "
            f"({getattr(model.config, 'sliding_window', None)}) is shorter than a prompt: options are not packed "
            "after their prompt, every option is its own sequence (same scores, several times slower)",
            "load the model with attn_implementation='sdpa' (or 'eager') to score options packed; a sliding "
            "window shorter than a prompt always scores one sequence per option")
    single = probe.logliks(model, tokenizer, inputs, batch_size=1)
    batch = _agreement("batch-size", single, default, tolerance, f"batch size {PROBE_BATCH} vs 1",
                       "scores depend on the batch size beyond rounding: report it; results reproduce only at "
                       "the batch size they were measured with")
    return [packed, batch]


def _longest_prompts(tokenizer: Any, setting: Setting, items: int, seed: int, cache: ArtifactCache | None,
                     inputs: InputFormat) -> tuple[int, str]:
    """(tokens, level) of the longest sequence the setting scores (prefix, context, continuation), encoded as
    the scorer encodes it."""
    chosen = setting_items(setting, items, seed, cache=cache)
    longest = (0, "")
    for level in setting.levels:
        plan = level_requests(level, chosen[level.task].items, seed=seed)
        longest = max(longest, (max(sequence_lengths(tokenizer, plan.flat_requests, inputs=inputs)), level.name))
    return longest


def _positions_check(loaded: LoadedModel, limit: int | None, settings: Sequence[str], items: int, seed: int,
                     cache: ArtifactCache | None, inputs: InputFormat) -> Check:
    lengths = {name: _longest_prompts(loaded.tokenizer, get_setting(name), items, seed, cache, inputs)
               for name in settings}
    shown = ", ".join(f"{name} {n} ({level})" for name, (n, level) in lengths.items())
    if limit is None:
        return Check("positions", True, f"no length limit known; longest prompts: {shown}")
    too_long = [name for name, (n, _) in lengths.items() if n > limit]
    measured = f"longest prompts ({items} items per level): {shown}; the model takes {limit}"
    if not too_long:
        return Check("positions", True, measured)
    return Check("positions", False, measured,
                 f"{', '.join(too_long)} cannot be scored on this model: deselect it (-k 'not {too_long[0]}') or use a "
                 "model with more positions")


def check_model(
    loaded: LoadedModel, *, bos: BosPolicy = "auto", chat_template: bool = False, settings: Sequence[str],
    items: int, seed: int = 0, cache: ArtifactCache | None = None,
) -> ModelReport:
    """Read ``loaded``'s conventions and run every check (module docstring) on it, scoring under the input
    format ``bos`` and ``chat_template`` decide (as ``--jd-bos`` and ``--jd-chat-template`` would).

    ``settings``, ``items`` and ``seed`` choose the prompts whose length is checked
    (the items a run with the same options scores). ConfigError for an encoder.
    """
    start = time.perf_counter()
    if loaded.kind != "causal":
        raise ConfigError(f"check-model checks causal language models; {loaded.name!r} is an {loaded.kind}")
    conventions = tokenizer_conventions(loaded.tokenizer)
    facts = _facts(loaded, conventions)
    bos_check, inputs = _bos_check(conventions, bos, chat_template)
    facts["inputs"] = inputs.describe() if inputs else None
    checks = [bos_check]
    if inputs is not None:  # nothing can be scored without a decided input format
        checks += [*_options_checks(loaded, seed, inputs),
                   _positions_check(loaded, facts["positions"], settings, items, seed, cache, inputs)]
    return ModelReport(loaded.name, facts, tuple(checks), time.perf_counter() - start)
