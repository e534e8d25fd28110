"""Scoring one difficulty level of a setting on one model: per-item scores, cached.

The items of a setting are chosen once for all its levels (the same questions
at every difficulty, where the levels share a task), so level-to-level
comparisons are paired. Per-item scores are stored in the artifact cache under
the model's key, the level's description, the items' fingerprint, the scorer
version and the batch size: at real model sizes the last bits of a score depend
on the batch (BLAS picks kernels by row count, attention rounds with the padded
width), so a cache entry is only reused by a run that would compute the same bits.
"""

from __future__ import annotations

import dataclasses
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
from junkdna_core.scoring.engine import ContinuationScore, multiple_choice_predictions, score_continuations
from junkdna_core.scoring.generation import GenerationSettings, answer_metrics, generate
from junkdna_core.storage.cache import ArtifactCache

SCORER_VERSION = 2  # 2: options packed with the shared prompt in one sequence (block attention mask)
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
    pool = _demo_pool(level.task, len(items[0].choices)) if t.get("shots") else []
    out = []
    for item in items:
        if "options" in t:
            item = keep_options(item, t["options"])
        if t.get("closed_book"):
            item = close_book(item)
        if "context_fraction" in t:
            item = cut_passage(item, t["context_fraction"])
        demos = choose_demos(item.id, pool, t["shots"], seed) if t.get("shots") else []
        out.append((item, demos))
    return out


def level_requests(
    level: Level, items: Sequence[Item], *, seed: int = 0
) -> list[tuple[Item, list[tuple[str, list[str]]]]]:
    """Each item as the level prepares it (fewer options, a cut passage, demonstrations) with its scorer requests.

    An item makes one ``(context, continuations)`` request (``cloze``, ``letter``, ``gold``), or one
    request per option (``partial``); its options are the continuations of its requests, in order.
    """
    renderers: dict[str, Callable[[Item, Sequence[MultipleChoiceItem]], list[tuple[str, list[str]]]]] = {
        "cloze": lambda item, demos: [render_cloze(level.task, item, demos)],
        "letter": lambda item, demos: [render_letter(level.task, item, demos)],
        "partial": lambda item, demos: render_partial(level.task, item, demos),
        "gold": lambda item, _demos: [render_gold(item)],
    }
    if level.format not in renderers:
        raise ConfigError(f"level {level.name}: format {level.format!r} is not scored by this engine")
    render = renderers[level.format]
    return [(item, render(item, demos)) for item, demos in _prepare(level, items, seed)]


def score_level(
    model: Any, tokenizer: Any, level: Level, items: Sequence[Item], *, seed: int = 0, batch_size: int = 8,
    progress: bool = True,
) -> LevelScores:
    """Score every item of one level on one model."""
    prepared = level_requests(level, items, seed=seed)
    flat = iter(score_continuations(model, tokenizer, [r for _, requests in prepared for r in requests],
                                    batch_size=batch_size, progress=progress))
    options = [[score for _ in requests for score in next(flat)] for _, requests in prepared]
    if level.format == "gold":  # per-byte likelihood of the gold answer, 2^-bits-per-byte, in (0, 1]
        values = [math.exp(scores[0].loglik / scores[0].bytes) for scores in options]
    else:  # the letter format scores one token per option: its raw log-likelihood decides
        predicted = multiple_choice_predictions(options)["acc" if level.format == "letter" else level.metric]
        values = [float(p == item.gold) for p, (item, _) in zip(predicted, prepared)]
    return LevelScores(level.name, level.metric, tuple(item.id for item, _ in prepared), tuple(values))


def _all_options_scores(
    cache: ArtifactCache, model_key: str, load: Callable[[], tuple[Any, Any]], setting: Setting, level: Level,
    items: ItemSet, *, seed: int, batch_size: int, progress: bool,
) -> LevelScores:
    """Scores of a cloze level that only drops options, derived from one scoring of all the options.

    In the cloze format an option's log-likelihood does not depend on which
    other options exist, so the 2-, 3- and 4-option levels share one pass.
    """
    base = dataclasses.replace(level, name="all-options", difficulty=0.0, chance=None,
                               transform={k: v for k, v in level.transform.items() if k != "options"})
    parts = {
        "model": model_key, "setting": setting.id, "setting_version": setting.version, "level": base.describe(),
        "items": items.fingerprint, "seed": seed, "scorer": SCORER_VERSION, "batch_size": batch_size,
    }

    def compute() -> list[list[list[Any]]]:
        model, tokenizer = load()
        requests = [render_cloze(level.task, item, demos) for item, demos in _prepare(base, items.items, seed)]
        scores = score_continuations(model, tokenizer, requests, batch_size=batch_size, progress=progress)
        return [[[c.loglik, c.tokens, c.bytes, c.greedy, c.norm_chars] for c in row] for row in scores]

    rows = cache.get_or_compute_json("choice-scores", parts, compute)
    values = []
    for item, row in zip(items.items, rows):
        kept = kept_options(item, level.transform["options"])
        subset = [ContinuationScore(*row[i]) for i in kept]
        predicted = multiple_choice_predictions([subset])[level.metric][0]
        values.append(float(kept[predicted] == item.gold))
    return LevelScores(level.name, level.metric, items.ids, tuple(values))


def dense_key(fingerprint: str) -> str:
    """The key under which a dense model's scores are cached."""
    return f"dense:{fingerprint}"


def _answer_metrics(
    cache: ArtifactCache, parts: Mapping[str, Any], load: Callable[[], tuple[Any, Any]], level: Level, items: ItemSet,
    metrics: Sequence[str], *, prefix: Sequence[int], seed: int, batch_size: int, progress: bool,
) -> dict[str, tuple[float, ...]]:
    """Per-item values of the answer metrics (``em``, ``f1``) the level records beside its own; {} when none apply.

    The greedy answers are generated once per (model, level, items, seed, batch size, generation
    settings, BOS prefix) and cached, so every metric of them is computed from the same answers.
    """
    wanted = level.answer_metrics(metrics)
    if not wanted:
        return {}
    prepared = [item for item, _ in _prepare(level, items.items, seed)]
    settings = GenerationSettings(stop=available_tasks()[level.task].stop)
    key = {**{k: v for k, v in parts.items() if k != "scorer"}, "generation": settings.describe(),
           "prefix": list(prefix)}

    def compute() -> dict[str, Any]:
        model, tokenizer = load()
        answers = generate(model, tokenizer, [qa_prompt(item) for item in prepared], prefix=prefix,
                           batch_size=batch_size, progress=progress, stop=settings.stop,
                           max_new_tokens=settings.max_new_tokens, min_new_tokens=settings.min_new_tokens)
        return {"item_ids": [item.id for item in prepared], "answers": answers}

    body = cache.get_or_compute_json("answers", key, compute)
    return answer_metrics(body["answers"], [item.answers for item in prepared], wanted)


def cached_level_scores(
    cache: ArtifactCache, model_key: str, load: Callable[[], tuple[Any, Any]], setting: Setting, level: Level,
    items: ItemSet, *, seed: int = 0, batch_size: int = 8, progress: bool = True, metrics: Sequence[str] = (),
    prefix: Sequence[int] = (),
) -> LevelScores:
    """:func:`score_level`, computed once per (model, level, items, scorer) and then read from the cache.

    ``load`` returns ``(model, tokenizer)``; it is called only when the scores are not cached yet.
    ``metrics``: answer metrics (``em``, ``f1``) to record in ``extra`` where the level takes them
    (generative items); ``prefix``: the token ids generation prompts start with (the model's BOS
    decision, :func:`~junkdna_core.models.conventions.context_prefix`).
    """
    if level.format == "cloze" and set(level.transform) == {"options"}:
        return _all_options_scores(cache, model_key, load, setting, level, items, seed=seed, batch_size=batch_size,
                                   progress=progress)
    parts = {
        "model": model_key, "setting": setting.id, "setting_version": setting.version,
        "level": level.describe(), "items": items.fingerprint, "seed": seed, "scorer": SCORER_VERSION,
        "batch_size": batch_size,
    }

    def compute() -> dict[str, Any]:
        model, tokenizer = load()
        s = score_level(model, tokenizer, level, items.items, seed=seed, batch_size=batch_size, progress=progress)
        return {"level": s.level, "metric": s.metric, "item_ids": list(s.item_ids), "scores": list(s.scores)}

    body = cache.get_or_compute_json("scores", parts, compute)
    extra = _answer_metrics(cache, parts, load, level, items, metrics, prefix=prefix, seed=seed, batch_size=batch_size,
                            progress=progress)
    return LevelScores(body["level"], body["metric"], tuple(body["item_ids"]), tuple(body["scores"]), extra)
