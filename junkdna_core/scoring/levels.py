"""Scoring one difficulty level of a setting on one model: per-item scores, cached at two levels.

The items of a setting are chosen once for all its levels (the same questions
at every difficulty, where the levels share a task), so level-to-level
comparisons are paired.

A level is planned as each item's scorer requests (``(context, continuations)``:
one per item whose options continue a shared prompt, one per option for a
fill-in-the-blank item) and a rule turning their log-likelihoods into per-item
values (:func:`level_requests`). Three caches, all keyed by the model's key, the
model's :class:`~junkdna_core.models.conventions.InputFormat` and the batch size:

- ``request-scores``: the log-likelihoods of one request list, keyed by its
  content. A list asked for by several levels or settings is scored once per
  model: the options-2/3/4 levels of setting 2, zero-shot ARC-Easy in settings
  4 (shots-0) and 6 (mcq) are one list (options-k levels read k of the
  options of every item: a cloze option's log-likelihood does not depend on
  which other options exist). The passage-fraction levels of a setting ask
  for one list together (:func:`scored_together`), since the windows of one
  passage often begin with the same sentences, which then run once.
- ``answers``: the greedy answers to one list of generation prompts (``--jd-metric``
  em/f1 on generative levels), keyed by its content and the generation settings,
  so every level or setting asking the same questions shares them.
- ``scores``: a level's per-item values, keyed by the level and the items'
  fingerprint, so a warm run reads them without rendering a prompt.

The batch size is in both keys: at real model sizes the last bits of a score
depend on the batch (BLAS picks kernels by row count, attention rounds with the
padded width), so an entry is only reused by a run that would compute the same
bits; a whole request list is one entry for the same reason (a request scored
among other requests may differ in its last bits).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from junkdna_core.config.errors import ConfigError
from junkdna_core.data.items import GenerativeItem, Item, ItemSet, MultipleChoiceItem, sample_items
from junkdna_core.data.prompts import (
    answer_span,
    choose_demos,
    close_book,
    cut_passage,
    keep_options,
    kept_options,
    qa_prompt,
    render_cloze,
    render_gold,
    render_letter,
    render_partial,
)
from junkdna_core.data.settings import Level, Setting
from junkdna_core.data.tasks import available_tasks, load_task, split_identity
from junkdna_core.models.conventions import InputFormat
from junkdna_core.scoring.engine import ContinuationScore, multiple_choice_predictions, score_continuations
from junkdna_core.scoring.generation import GenerationSettings, answer_metrics, generate
from junkdna_core.storage.cache import ArtifactCache

# 2: options packed with the shared prompt in one sequence (block attention mask)
# 3: continuations as a token tree (shared leading tokens run once), each predicting position projected once,
#    every context led by the model's decided prefix (the BOS token when its tokenizer adds one by default)
# 4: requests whose contexts share 16 leading tokens or more run as one token tree; a setting's k-shot levels
#    (k > 0) are one request list, so each item's shared demonstrations run once
# 5: the leading tokens every context of a request list starts with run once, as a KV cache each batch continues;
#    a setting's passage-fraction levels are one request list, as its k-shot levels (until setting 4 version 3,
#    whose items share their demonstrations: each k-shot level is its own list, led by them)
# 6: float32 linear layers on a CPU multiply through oneDNN (scoring.cpu_linear), not the BLAS: same products
#    up to float rounding
SCORER_VERSION = 6
ITEMS_VERSION = 1  # bump when the rule choosing a setting's items (sampling, eligibility) changes
DEMO_SPLIT = "train"


@dataclass(frozen=True)
class LevelScores:
    """Per-item scores of one level on one model (higher is better), and the metric they are.

    ``extra``: per-item values of metrics recorded beside the level's own (``em``, ``f1`` with
    ``--jd-metric``), by metric name; empty when none were asked for.
    """

    level: str
    metric: str
    item_ids: tuple[str, ...]
    scores: tuple[float, ...]
    extra: Mapping[str, tuple[float, ...]] = field(default_factory=dict)

    @property
    def mean(self) -> float:
        """The level's score: the mean over items."""
        return math.fsum(self.scores) / len(self.scores)


def _eligible(setting: Setting) -> Callable[[Item], bool]:
    """Items every level of the setting can use (enough options, answer inside the passage)."""
    options = max((lv.transform.get("options", 0) for lv in setting.levels), default=0)
    needs_span = any("context_fraction" in lv.transform for lv in setting.levels)

    def ok(item: Item) -> bool:
        if options and isinstance(item, MultipleChoiceItem):
            return len(item.choices) == options
        if needs_span and isinstance(item, GenerativeItem):
            return answer_span(item) is not None
        return True

    return ok


def setting_items(
    setting: Setting, count: int, seed: int, *, cache: ArtifactCache | None = None
) -> dict[str, ItemSet]:
    """The ``count`` items each level is scored on, by task (shared by the levels of one task).

    With ``cache``, the chosen items are kept there, keyed by the setting, the
    count, the seed and the data files' identity, so a rerun does not read the
    datasets again.
    """

    def choose() -> dict[str, ItemSet]:
        chosen: dict[str, ItemSet] = {}
        for level in setting.levels:
            if level.task not in chosen:
                chosen[level.task] = sample_items(load_task(level.task, level.split), count, seed,
                                                  keep=_eligible(setting))
        return chosen

    if cache is None:
        return choose()
    parts = {"levels": [level.describe() for level in setting.levels], "count": count, "seed": seed,
             "version": ITEMS_VERSION, "data": [split_identity(level.task, level.split) for level in setting.levels]}
    stored = cache.get_or_compute_json("items", parts, lambda: {t: s.to_json() for t, s in choose().items()})
    return {task: ItemSet.from_json(data) for task, data in stored.items()}


def _demo_pool(task: str, options: int) -> list[MultipleChoiceItem]:
    pool = [it for it in load_task(task, DEMO_SPLIT) if isinstance(it, MultipleChoiceItem)]
    return [it for it in pool if len(it.choices) == options] if options else pool


def _prepare(level: Level, items: Sequence[Item], seed: int) -> list[tuple[Item, list[MultipleChoiceItem]]]:
    t = level.transform
    demos = choose_demos(_demo_pool(level.task, len(items[0].choices)), t["shots"], seed) if t.get("shots") else []
    out = []
    for item in items:
        if "options" in t:
            item = keep_options(item, t["options"])
        if t.get("closed_book"):
            item = close_book(item)
        if "context_fraction" in t:
            item = cut_passage(item, t["context_fraction"])
        out.append((item, demos))
    return out


Request = tuple[str, list[str]]


@dataclass(frozen=True)
class LevelPlan:
    """What scoring a level asks the scorer for, and how its per-item values follow from the answers.

    ``items``: the items whose requests are scored, as the level prepares them (fewer options, a cut
    passage), except that a level which only drops options scores all of them and reads the kept ones;
    ``requests``: per item, its requests (its options are their continuations, in order);
    ``values``: per-item values from per-item option scores.
    """

    items: tuple[Item, ...]
    requests: tuple[tuple[Request, ...], ...]
    values: Callable[[list[list[ContinuationScore]]], list[float]]

    @property
    def item_ids(self) -> tuple[str, ...]:
        """The ids of the items, in order."""
        return tuple(item.id for item in self.items)

    @property
    def flat_requests(self) -> list[Request]:
        """Every item's requests, one list (what the scorer and the ``request-scores`` cache take)."""
        return [request for requests in self.requests for request in requests]

    def item_values(self, scores: Sequence[Sequence[ContinuationScore]]) -> list[float]:
        """The per-item values of the scores of :attr:`flat_requests`, in order."""
        rows = iter(scores)
        return self.values([[score for _ in requests for score in next(rows)] for requests in self.requests])


def _options_only(level: Level) -> bool:
    return level.format == "cloze" and set(level.transform) == {"options"}


_RENDERERS: Mapping[str, Callable[[str, Item, Sequence[MultipleChoiceItem]], list[Request]]] = {
    "cloze": lambda task, item, demos: [render_cloze(task, item, demos)],
    "letter": lambda task, item, demos: [render_letter(task, item, demos)],
    "partial": render_partial,
    "gold": lambda _task, item, _demos: [render_gold(item)],
}


def level_requests(level: Level, items: Sequence[Item], *, seed: int = 0) -> LevelPlan:
    """The requests one level of ``items`` is scored by, and the rule that turns their scores into values.

    An item makes one request (``cloze``, ``letter``, ``gold``) or one per option (``partial``). A cloze
    level that only drops options asks for all the options of every item and reads the kept ones, so every
    option count shares one request list.
    """
    if level.format not in _RENDERERS:
        raise ConfigError(f"level {level.name}: format {level.format!r} is not scored by this engine")
    if _options_only(level):
        def subset_values(scores: list[list[ContinuationScore]]) -> list[float]:
            values = []
            for item, row in zip(items, scores):
                kept = kept_options(item, level.transform["options"])
                predicted = multiple_choice_predictions([[row[i] for i in kept]])[level.metric][0]
                values.append(float(kept[predicted] == item.gold))
            return values

        return LevelPlan(tuple(items), tuple((render_cloze(level.task, item, []),) for item in items), subset_values)
    prepared = _prepare(level, items, seed)
    render = _RENDERERS[level.format]
    requests = tuple(tuple(render(level.task, item, demos)) for item, demos in prepared)
    chosen = tuple(item for item, _ in prepared)
    if level.format == "gold":
        def gold_values(scores: list[list[ContinuationScore]]) -> list[float]:
            # per-byte likelihood of the gold answer, 2^-bits-per-byte, in (0, 1]
            return [math.exp(s[0].loglik / s[0].bytes) for s in scores]

        return LevelPlan(chosen, requests, gold_values)
    metric = "acc" if level.format == "letter" else level.metric  # a letter is one token: its raw log-likelihood

    def choice_values(scores: list[list[ContinuationScore]]) -> list[float]:
        predicted = multiple_choice_predictions(scores)[metric]
        return [float(p == item.gold) for p, item in zip(predicted, chosen)]

    return LevelPlan(chosen, requests, choice_values)


_LEADING = "context_fraction"  # the transform that sets how much of an item's passage comes before the question


def scored_together(setting: Setting, level: Level) -> tuple[Level, ...]:
    """The levels of ``setting`` whose requests are scored as one list with ``level``'s, in the setting's order.

    Those are the levels that differ from ``level`` only in the fraction of the passage their prompts hold:
    an item's passage windows often begin with the same sentences (each window is whole sentences around
    the answer, so a window that reaches the passage's start shares it with every longer one), which the
    scorer then runs once. Every other level is scored alone, so its list stays the one other levels and
    settings share; a k-shot level's demonstrations are the same for all its items
    (:func:`~junkdna_core.data.prompts.choose_demos`), so they are its list's common prefix and run once.
    """
    def leading(lv: Level) -> bool:
        return bool(lv.transform.get(_LEADING))

    def rest(lv: Level) -> tuple[Any, ...]:
        return lv.task, lv.split, lv.format, sorted((k, v) for k, v in lv.transform.items() if k != _LEADING)

    if not leading(level):
        return (level,)
    return tuple(lv for lv in setting.levels if leading(lv) and rest(lv) == rest(level))


def score_level(
    model: Any, tokenizer: Any, level: Level, items: Sequence[Item], *, seed: int = 0, batch_size: int = 8,
    progress: bool = True, inputs: InputFormat | None = None,
) -> LevelScores:
    """Score every item of one level on one model (``inputs``: the model's input format, by default its
    tokenizer's own conventions)."""
    plan = level_requests(level, items, seed=seed)
    scores = score_continuations(model, tokenizer, plan.flat_requests, batch_size=batch_size, progress=progress,
                                 inputs=inputs)
    return LevelScores(level.name, level.metric, plan.item_ids, tuple(plan.item_values(scores)))


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, ensure_ascii=False).encode("utf-8")).hexdigest()


def requests_digest(requests: Sequence[Request]) -> str:
    """A content digest of a request list (the ``request-scores`` cache key)."""
    return _digest(list(requests))


def cached_request_scores(
    cache: ArtifactCache, model_key: str, load: Callable[[], tuple[Any, Any]], requests: Sequence[Request], *,
    inputs: InputFormat, batch_size: int = 8, progress: bool = True,
) -> list[list[ContinuationScore]]:
    """:func:`~junkdna_core.scoring.engine.score_continuations` of ``requests``, computed once per (model,
    request list, input format, scorer version, batch size) and then read from the cache."""
    parts = {"model": model_key, "requests": requests_digest(requests), "count": len(requests),
             "inputs": inputs.describe(), "scorer": SCORER_VERSION, "batch_size": batch_size}

    def compute() -> list[list[list[Any]]]:
        model, tokenizer = load()
        scores = score_continuations(model, tokenizer, requests, batch_size=batch_size, progress=progress,
                                     inputs=inputs)
        return [[[c.loglik, c.tokens, c.bytes, c.greedy, c.norm_chars] for c in row] for row in scores]

    return [[ContinuationScore(*c) for c in row] for row in cache.get_or_compute_json("request-scores", parts, compute)]


def dense_key(fingerprint: str) -> str:
    """The key under which a dense model's scores are cached."""
    return f"dense:{fingerprint}"


def cached_answers(
    cache: ArtifactCache, model_key: str, load: Callable[[], tuple[Any, Any]], prompts: Sequence[str],
    settings: GenerationSettings, *, inputs: InputFormat, batch_size: int = 8, progress: bool = True,
) -> list[str]:
    """:func:`~junkdna_core.scoring.generation.generate` of ``prompts`` (fed under ``inputs``, the model's
    input format), computed once per (model, prompt list, input format, generation settings, batch size)
    and then read from the cache."""
    parts = {"model": model_key, "prompts": _digest(list(prompts)), "count": len(prompts),
             "inputs": inputs.describe(), "generation": settings.describe(), "batch_size": batch_size}

    def compute() -> list[str]:
        model, tokenizer = load()
        return generate(model, tokenizer, prompts, inputs=inputs, batch_size=batch_size, progress=progress,
                        stop=settings.stop, max_new_tokens=settings.max_new_tokens,
                        min_new_tokens=settings.min_new_tokens)

    return cache.get_or_compute_json("answers", parts, compute)


def _answer_metrics(
    cache: ArtifactCache, model_key: str, load: Callable[[], tuple[Any, Any]], level: Level, items: ItemSet,
    metrics: Sequence[str], *, inputs: InputFormat, seed: int, batch_size: int, progress: bool,
) -> dict[str, tuple[float, ...]]:
    """Per-item values of the answer metrics (``em``, ``f1``) the level records beside its own; {} when none
    apply. Every metric is computed from the same cached greedy answers (:func:`cached_answers`)."""
    wanted = level.answer_metrics(metrics)
    if not wanted:
        return {}
    prepared = [item for item, _ in _prepare(level, items.items, seed)]
    settings = GenerationSettings(stop=available_tasks()[level.task].stop)
    answers = cached_answers(cache, model_key, load, [qa_prompt(item) for item in prepared], settings,
                             inputs=inputs, batch_size=batch_size, progress=progress)
    return answer_metrics(answers, [item.answers for item in prepared], wanted)


def cached_level_scores(
    cache: ArtifactCache, model_key: str, load: Callable[[], tuple[Any, Any]], setting: Setting, level: Level,
    items: ItemSet, *, inputs: InputFormat, seed: int = 0, batch_size: int = 8, progress: bool = True,
    metrics: Sequence[str] = (),
) -> LevelScores:
    """:func:`score_level`, computed once per (model, level, items, input format, scorer) and then read from
    the cache; its requests are scored through :func:`cached_request_scores`, so a request list another
    level or setting asked for is not scored again (the levels :func:`scored_together` with it ask for one
    list together).

    ``load`` returns ``(model, tokenizer)``; it is called only when the scores are not cached yet.
    ``metrics``: answer metrics (``em``, ``f1``) to record in ``extra`` where the level takes them
    (generative items), from greedy answers generated under the same ``inputs``.
    """
    parts = {
        "model": model_key, "setting": setting.id, "setting_version": setting.version,
        "level": level.describe(), "items": items.fingerprint, "seed": seed, "inputs": inputs.describe(),
        "scorer": SCORER_VERSION, "batch_size": batch_size,
    }

    def compute() -> dict[str, Any]:
        together = scored_together(setting, level)
        plans = [level_requests(lv, items.items, seed=seed) for lv in together]
        scores = cached_request_scores(cache, model_key, load, [r for p in plans for r in p.flat_requests],
                                       inputs=inputs, batch_size=batch_size, progress=progress)
        mine = together.index(level)
        start = sum(len(p.flat_requests) for p in plans[:mine])
        plan = plans[mine]
        own = scores[start : start + len(plan.flat_requests)]
        return {"level": level.name, "metric": level.metric, "item_ids": list(plan.item_ids),
                "scores": plan.item_values(own)}

    body = cache.get_or_compute_json("scores", parts, compute)
    extra = _answer_metrics(cache, model_key, load, level, items, metrics, inputs=inputs, seed=seed,
                            batch_size=batch_size, progress=progress)
    return LevelScores(body["level"], body["metric"], tuple(body["item_ids"]), tuple(body["scores"]), extra)
