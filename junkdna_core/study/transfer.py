"""Fine-tuning studies: setting 1's data fractions and the fine-tuned task spectrum, cached run by run.

One *run* fine-tunes the model on one task with one training-data fraction, in
one transfer mode, under one pruning configuration and seed, and scores every
test example. Runs are cached (JSON of per-example correctness and loss), so an
interrupted study resumes and a warm rerun only reads. From runs this module
assembles

- a :class:`~junkdna_core.study.sweep.Study` (sparse transfer at each sparsity against
  dense transfer, per level; per-example scores averaged over seeds), which the
  ``monotonic`` and ``difficulty`` claims take unchanged;
- a :class:`ModeComparison` (accuracy of each mode, per level and seed) for the
  ``irreversible`` claim;
- :class:`InterpolationPath` s between the dense and the sparse solution for the
  ``lmc`` claim.

Data: a task with an offline train split trains on a seeded sample of it and is
tested on its validation split; a task with only a validation split (SST-2, RTE,
MRPC offline) is split into disjoint test and train parts by a seeded sample.
Smaller fractions are subsets of larger ones.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from torch import nn

from junkdna_core import stats
from junkdna_core.compress.base import CompressionMethod
from junkdna_core.compress.variants import MethodVariant, resolve_variant
from junkdna_core.config.budgets import FinetuneBudget
from junkdna_core.config.errors import ConfigError
from junkdna_core.config.parsing import BosPolicy
from junkdna_core.data.items import ItemSet, sample_items
from junkdna_core.data.settings import Level, Setting, get_setting, level_difficulty
from junkdna_core.data.tasks import available_tasks, load_task
from junkdna_core.models.conventions import InputFormat, input_format
from junkdna_core.models.loading import LoadedModel
from junkdna_core.scoring.levels import LevelScores
from junkdna_core.storage.cache import ArtifactCache
from junkdna_core.study.artifacts import verified_level
from junkdna_core.study.failures import FailedCompressions, naming_failures
from junkdna_core.study.finetune import (
    TRANSFER_MODES,
    Evaluation,
    TransferMode,
    build_classifier,
    evaluate,
    finetune,
    head_size,
    interpolate,
    to_example,
    transfer_masks,
)
from junkdna_core.study.sweep import DENSE_MEASURED, Curve, Study, describe_configuration

FINETUNE_VERSION = 3  # bump when a run's result for the same inputs would change (2: fused AdamW; 3: test
# batches of similar lengths, whose losses may differ from version 2's in the last bits)


@dataclass(frozen=True)
class TaskData:
    """A task's training pool and test set (disjoint)."""

    train: ItemSet
    test: ItemSet


def task_data(task: str, budget: FinetuneBudget, seed: int = 0) -> TaskData:
    """The training pool and test items of ``task`` (see the module docstring for the split rule)."""
    splits = available_tasks()[task].splits if task in available_tasks() else {}
    if "validation" not in splits:
        load_task(task, "validation")  # raises the registry's error naming the known tasks and splits
    test = sample_items(load_task(task, "validation"), budget.test_items, seed)
    if "train" in splits:
        train = sample_items(load_task(task, "train"), budget.train_items, seed)
    else:
        held_out = set(test.ids)
        train = sample_items(load_task(task, "validation"), budget.train_items, seed + 1,
                             keep=lambda item: item.id not in held_out)
    if len(train) < 2 or len(test) < 2:
        raise ConfigError(f"{task}: too few items to fine-tune and test ({len(train)} train, {len(test)} test)")
    return TaskData(train, test)


def fraction_of(train: ItemSet, fraction: float, seed: int = 0) -> ItemSet:
    """The first ``round(fraction * n)`` (at least 2) items of a seeded order, so smaller fractions nest."""
    if not 0 < fraction <= 1:
        raise ConfigError(f"a training-data fraction must lie in (0, 1]; got {fraction}")
    count = max(2, round(fraction * len(train)))
    order = np.random.default_rng(seed).permutation(len(train))[:count]
    chosen = {train.items[i].id for i in order.tolist()}
    return sample_items(train, count, 0, keep=lambda item: item.id in chosen)


def finetune_inputs(dense: LoadedModel, bos: BosPolicy = "auto") -> InputFormat | None:
    """How a fine-tuned model's inputs start: ``bos`` decides it for a causal LM; an encoder always takes
    its tokenizer's own special tokens (None), which its classifier reads (CLS)."""
    return input_format(dense.conventions, bos=bos) if dense.kind == "causal" else None


def _inputs_record(dense: LoadedModel, inputs: InputFormat | None) -> dict[str, Any]:
    """The input format a study's records carry: the decided one, or the tokenizer's own."""
    return (inputs or input_format(dense.conventions)).describe()


def _run_parts(dense: LoadedModel, task: str, data: TaskData, fraction: float, mode: TransferMode,
               method: CompressionMethod | None, budget: FinetuneBudget, seed: int,
               inputs: InputFormat | None) -> dict[str, Any]:
    return {
        "model": dense.fingerprint, "task": task, "train": data.train.fingerprint, "test": data.test.fingerprint,
        "fraction": fraction, "mode": mode, "method": method.describe() if method else None,
        "config": budget.config.describe(), "seed": seed, "version": FINETUNE_VERSION,
        **({"inputs": inputs.describe()} if inputs else {}),  # an encoder's inputs never vary with options
    }


def _trained(dense: LoadedModel, data: TaskData, fraction: float, mode: TransferMode,
             method: CompressionMethod | None, budget: FinetuneBudget, seed: int, inputs: InputFormat | None):
    """A classifier fine-tuned in ``mode`` (not cached: the caller caches what it measures)."""
    train = [to_example(item) for item in fraction_of(data.train, fraction, seed).items]
    test_examples = [to_example(item) for item in data.test.items]
    classifier = build_classifier(dense, head_size(train + test_examples), seed=seed)
    masks = None
    if method is not None and mode != "dense":
        with naming_failures(dense.name, dense.fingerprint, method):
            masks = transfer_masks(classifier, method)
    losses = finetune(classifier, dense.tokenizer, train, budget.config, mode=mode, masks=masks, seed=seed,
                      inputs=inputs)
    return classifier, test_examples, losses, len(train)


class Solution(NamedTuple):
    """A fine-tuned classifier and, when it was scored on the test set, that evaluation."""

    classifier: nn.Module
    scored: Evaluation | None = None


def run(cache: ArtifactCache, dense: LoadedModel, task: str, fraction: float, mode: TransferMode,
        method: CompressionMethod | None, budget: FinetuneBudget, seed: int, *, data_seed: int = 0,
        inputs: InputFormat | None = None, keep: Callable[[Solution | None], None] | None = None) -> Evaluation:
    """One fine-tuning run, scored on the test set; computed once, then read from the cache.

    ``inputs``: :func:`finetune_inputs` of the model (None: its tokenizer's own). ``keep`` is called with
    the fine-tuned classifier and its evaluation when the run is computed, with None when it is read from
    the cache.
    """
    if mode != "dense" and method is None:
        raise ConfigError(f"transfer mode {mode!r} needs a pruning method")
    data = task_data(task, budget, data_seed)
    parts = _run_parts(dense, task, data, fraction, mode, method if mode != "dense" else None, budget, seed, inputs)

    def compute() -> dict[str, Any]:
        start = time.perf_counter()
        classifier, test, losses, n_train = _trained(dense, data, fraction, mode, method, budget, seed, inputs)
        scored = evaluate(classifier, dense.tokenizer, test, max_length=budget.config.max_length, inputs=inputs)
        trained.append(Solution(classifier, scored))
        return {"item_ids": list(scored.item_ids), "correct": list(scored.correct), "losses": list(scored.losses),
                "train_items": n_train, "steps": len(losses), "final_train_loss": losses[-1],
                "seconds": time.perf_counter() - start}

    trained: list[Solution] = []
    body = cache.get_or_compute_json("finetune", parts, compute)
    if keep is not None:
        keep(trained[0] if trained else None)
    return Evaluation(tuple(body["item_ids"]), tuple(body["correct"]), tuple(body["losses"]))


def _fraction(level: Level) -> float:
    return float(level.transform.get("train_fraction", 1.0))


def _seed_mean(evaluations: Sequence[Evaluation], level: str) -> LevelScores:
    """Per-example correctness averaged over seeds (the same test items in every run)."""
    scores = np.mean([e.correct for e in evaluations], axis=0)
    return LevelScores(level, "acc", evaluations[0].item_ids, tuple(float(s) for s in scores))


def _verified(cache: ArtifactCache, dense: LoadedModel, method: CompressionMethod) -> dict[str, Any]:
    """The level ``method``'s masks verifiably reach on the pre-trained weights, checked before anything is fine-tuned
    (MethodError when they miss it)."""
    return DENSE_MEASURED if method.level == 0 else verified_level(dense, method, cache=cache, progress=False)


def transfer_study(cache: ArtifactCache, dense: LoadedModel, setting: Setting, methods: Sequence[CompressionMethod],
                   budget: FinetuneBudget, *, data_seed: int = 0, label: str | None = None,
                   inputs: InputFormat | None = None, compared: CompressionMethod | None = None) -> Study:
    """Sparse transfer at each configuration in ``methods`` against dense transfer, at every level of ``setting``.

    ``methods`` are configurations of one pruning method at increasing sparsity;
    one of sparsity 0 is dense transfer itself. ``label`` names the method in the
    study (default: its registered name). ``compared``: the configuration
    :func:`compare_modes` and the ``lmc`` paths use; where it is one of ``methods``,
    the paths of the runs trained here are cached on the way (see :class:`_PathKeeper`).
    """
    if setting.learning != "fine-tuning":
        raise ConfigError(f"{setting.id} is not a fine-tuning setting")
    measured = [_verified(cache, dense, m) for m in methods]
    sparse = [m for m in methods if m.level != 0]
    # each seed trains dense transfer, then the lmc path's sparse end (if among them), then the others
    first = sorted(range(len(sparse)), key=lambda i: not _PathKeeper.ends(compared, sparse[i]))
    curves = []
    for level in setting.levels:
        dense_runs: list[Evaluation] = []
        sparse_runs: dict[int, list[Evaluation]] = {i: [] for i in range(len(sparse))}
        for seed in budget.seeds:
            paths = _PathKeeper(cache, dense, level, compared, budget, seed, data_seed, inputs)
            dense_runs.append(run(cache, dense, level.task, _fraction(level), "dense", None, budget, seed,
                                  data_seed=data_seed, inputs=inputs, keep=paths.keeper("dense", None)))
            for i in first:
                sparse_runs[i].append(run(cache, dense, level.task, _fraction(level), "sparse", sparse[i], budget,
                                          seed, data_seed=data_seed, inputs=inputs,
                                          keep=paths.keeper("sparse", sparse[i])))
        dense_scores = _seed_mean(dense_runs, level.name)
        by_method = iter(_seed_mean(sparse_runs[i], level.name) for i in range(len(sparse)))
        compressed = tuple(dense_scores if m.level == 0 else next(by_method) for m in methods)
        curves.append(Curve(level, dense_scores, tuple(m.level for m in methods), compressed))
    items = {}
    for level in setting.levels:
        data = task_data(level.task, budget, data_seed)
        items[level.task] = {"split": data.test.split, "source": data.test.source,
                             "fingerprint": data.test.fingerprint, "ids": list(data.test.ids),
                             "train_fingerprint": data.train.fingerprint, "train_items": len(data.train)}
    return Study(
        model=dense.name, model_fingerprint=dense.fingerprint, model_parameters=dense.parameters, setting=setting,
        method=label or methods[0].name, family=methods[0].family,
        configurations=tuple({**describe_configuration(m, level), "finetune": budget.config.describe(),
                              "seeds": list(budget.seeds)} for m, level in zip(methods, measured)),
        items=items, calibration=None, curves=tuple(curves), seed=data_seed,
        inputs=_inputs_record(dense, inputs), model_info=dense.describe(),
    )


@dataclass(frozen=True)
class ModeComparison:
    """Test accuracy of every transfer mode at every level of a setting, per seed, at one sparsity."""

    setting: Setting
    model: str
    model_fingerprint: str
    model_parameters: int
    method: dict[str, Any]  # the configuration's describe() with its strength and measured level
    family: str
    sparsity: float  # of the sparse modes and of the frozen fraction, whatever the method's parameters
    seeds: tuple[int, ...]
    accuracy: dict[str, dict[str, tuple[float, ...]]]  # level -> mode -> accuracy per seed
    items: dict[str, dict[str, Any]]
    label: str | None = None  # the method's name in records (default: the registered name in ``method``)
    data_seed: int | None = None  # the run's seed: the fine-tuning data's samples and splits
    inputs: dict[str, Any] | None = None  # how inputs started (InputFormat.describe)
    model_info: dict[str, Any] = field(default_factory=dict, compare=False)  # as Study.model_info

    @property
    def method_label(self) -> str:
        """The method as records name it: ``label``, or the registered name."""
        return self.label or self.method["method"]

    def difficulty(self) -> dict[str, float]:
        """Each level's difficulty (human-gap settings use the mean dense-transfer accuracy)."""
        dense = {lv: math.fsum(modes["dense"]) / len(modes["dense"]) for lv, modes in self.accuracy.items()}
        return level_difficulty(self.setting, dense)


def compare_modes(cache: ArtifactCache, dense: LoadedModel, setting: Setting, method: CompressionMethod,
                  budget: FinetuneBudget, *, data_seed: int = 0, label: str | None = None,
                  inputs: InputFormat | None = None) -> ModeComparison:
    """Every transfer mode of ``method`` (at its configured sparsity) at every level, for every seed.

    The masks' level is verified first, and recorded with the configuration under ``measured``. The ``lmc``
    paths of the dense and sparse runs trained here are cached on the way (see :class:`_PathKeeper`)."""
    measured = _verified(cache, dense, method)
    accuracy: dict[str, dict[str, tuple[float, ...]]] = {}
    items = {}
    for level in setting.levels:
        per_mode: dict[str, list[float]] = {mode: [] for mode in TRANSFER_MODES}
        for seed in budget.seeds:
            paths = _PathKeeper(cache, dense, level, method, budget, seed, data_seed, inputs)
            for mode in ("dense", "sparse", "dense-frozen", "sparse-to-dense"):  # the lmc path's two ends first
                per_mode[mode].append(run(cache, dense, level.task, _fraction(level), mode, method, budget, seed,
                                          data_seed=data_seed, inputs=inputs,
                                          keep=paths.keeper(mode, method)).accuracy)
        accuracy[level.name] = {mode: tuple(values) for mode, values in per_mode.items()}
        data = task_data(level.task, budget, data_seed)
        items[level.task] = {"test_fingerprint": data.test.fingerprint, "test_items": len(data.test),
                             "train_fingerprint": data.train.fingerprint, "train_items": len(data.train)}
    return ModeComparison(setting, dense.name, dense.fingerprint, dense.parameters,
                          describe_configuration(method, measured), method.family, method.level, budget.seeds,
                          accuracy, items, label, data_seed, _inputs_record(dense, inputs),
                          model_info=dense.describe())


@dataclass(frozen=True)
class InterpolationPath:
    """Loss and accuracy along ``(1 - alpha) * dense + alpha * sparse`` fine-tuned solutions, and the barrier."""

    level: str
    seed: int
    alphas: tuple[float, ...]
    losses: tuple[float, ...]
    accuracies: tuple[float, ...]

    @property
    def barrier(self) -> float:
        """Loss barrier of the path (:func:`junkdna_core.stats.interpolation_barrier`)."""
        return stats.interpolation_barrier(self.alphas, self.losses)


def _path_parts(dense: LoadedModel, level: Level, data: TaskData, method: CompressionMethod, budget: FinetuneBudget,
                seed: int, inputs: InputFormat | None) -> dict[str, Any]:
    return {**_run_parts(dense, level.task, data, _fraction(level), "sparse", method, budget, seed, inputs),
            "alphas": list(budget.alphas)}


def _path_body(dense: LoadedModel, data: TaskData, budget: FinetuneBudget, inputs: InputFormat | None,
               solutions: dict[str, Solution]) -> dict[str, Any]:
    """Loss and accuracy on the test items along the path between the ``dense`` and ``sparse`` solutions
    (the sparse classifier takes the interpolated weights; an end already scored is not scored again:
    interpolation at alpha 0 and 1 returns that end's weights exactly)."""
    classifier = solutions["sparse"].classifier
    ends = {"dense": solutions["dense"].classifier.state_dict(),
            "sparse": {k: v.detach().clone() for k, v in classifier.state_dict().items()}}
    scored_ends = {0.0: solutions["dense"].scored, 1.0: solutions["sparse"].scored}
    test = [to_example(item) for item in data.test.items]
    losses, accuracies = [], []
    for alpha in budget.alphas:
        scored = scored_ends.get(alpha)
        if scored is None:
            classifier.load_state_dict(interpolate(ends["dense"], ends["sparse"], alpha))
            scored = evaluate(classifier, dense.tokenizer, test, max_length=budget.config.max_length, inputs=inputs)
        losses.append(scored.loss)
        accuracies.append(scored.accuracy)
    return {"losses": losses, "accuracies": accuracies}


class _PathKeeper:
    """Caches the :func:`interpolation_path` of one level and seed from the dense and the sparse solution of
    ``method`` when both are trained in one pass (each handed over by :func:`run`'s ``keep``), so the ``lmc``
    claim reads it instead of training both again. Holds the dense solution only until the sparse run is
    done or read."""

    def __init__(self, cache: ArtifactCache, dense: LoadedModel, level: Level, method: CompressionMethod | None,
                 budget: FinetuneBudget, seed: int, data_seed: int, inputs: InputFormat | None) -> None:
        self.cache, self.dense, self.level, self.method = cache, dense, level, method
        self.budget, self.seed, self.data_seed, self.inputs = budget, seed, data_seed, inputs
        self.solutions: dict[str, Solution] = {}

    @staticmethod
    def ends(method: CompressionMethod | None, candidate: CompressionMethod) -> bool:
        """Whether a sparse run of ``candidate`` is the sparse end of ``method``'s path."""
        return method is not None and candidate.describe() == method.describe()

    def keeper(self, mode: TransferMode, method: CompressionMethod | None) -> Callable[[Solution | None], None] | None:
        """``run``'s ``keep`` for a run of ``mode`` under ``method`` (None: the run is no end of the path)."""
        if self.method is None or mode not in ("dense", "sparse"):
            return None
        if mode == "sparse" and (method is None or not self.ends(self.method, method)):
            return None
        return functools.partial(self._keep, mode)

    def _keep(self, mode: str, solution: Solution | None) -> None:
        if solution is None or (mode == "sparse" and "dense" not in self.solutions):  # a run was read, not trained
            self.solutions.clear()
            return
        self.solutions[mode] = solution
        if len(self.solutions) < 2:
            return
        data = task_data(self.level.task, self.budget, self.data_seed)
        parts = _path_parts(self.dense, self.level, data, self.method, self.budget, self.seed, self.inputs)
        solutions, self.solutions = self.solutions, {}
        self.cache.get_or_compute_json("interpolation", parts,
                                       lambda: _path_body(self.dense, data, self.budget, self.inputs, solutions))


def interpolation_path(cache: ArtifactCache, dense: LoadedModel, level: Level, method: CompressionMethod,
                       budget: FinetuneBudget, seed: int, *, data_seed: int = 0, inputs: InputFormat | None = None
                       ) -> InterpolationPath:
    """Fine-tune dense and sparse transfer from one initialisation and score the straight path between them
    (read from the cache when :func:`compare_modes` or :func:`transfer_study` trained both already)."""
    data = task_data(level.task, budget, data_seed)

    def compute() -> dict[str, Any]:
        solutions = {mode: Solution(_trained(dense, data, _fraction(level), mode, method, budget, seed, inputs)[0])
                     for mode in ("dense", "sparse")}
        return _path_body(dense, data, budget, inputs, solutions)

    body = cache.get_or_compute_json("interpolation", _path_parts(dense, level, data, method, budget, seed, inputs),
                                     compute)
    return InterpolationPath(level.name, seed, budget.alphas, tuple(body["losses"]), tuple(body["accuracies"]))


class TransferBench:
    """The fine-tuning measurements of one model under one budget and run seed, memoised (the benchmarks' fixture).

    ``method`` arguments are method specs (``magnitude``, ``nm[m=4]``). The run's
    ``seed`` chooses the data splits, offsets the budget's training seeds (see
    :meth:`FinetuneBudget.seeded`) and goes to a method's ``seed`` parameter.
    """

    def __init__(self, dense: LoadedModel, cache: ArtifactCache, budget: FinetuneBudget,
                 method_levels: Callable[[type[CompressionMethod]], tuple[float, ...]], *, seed: int = 0,
                 failures: FailedCompressions | None = None, bos: BosPolicy = "auto") -> None:
        self.dense, self.cache, self.method_levels, self.seed = dense, cache, method_levels, seed
        self.budget = budget.seeded(seed)
        self.failures = failures or FailedCompressions()
        self.inputs = finetune_inputs(dense, bos)
        self._memo: dict[tuple[str, str, str], Any] = {}

    def _memoised(self, kind: str, setting: str, method: str, compute, configured: list[CompressionMethod]) -> Any:
        if (kind, setting, method) not in self._memo:
            with self.failures.remembering(self.dense.fingerprint, configured):
                self._memo[kind, setting, method] = compute()
        return self._memo[kind, setting, method]

    def _configured(self, variant: MethodVariant, level: float) -> CompressionMethod:
        return variant.at_level(level, run_seed=self.seed)

    def study(self, setting: str, method: str) -> Study:
        """Sparse against dense transfer over the method's sparsities (``method_levels`` of its class)."""
        variant = resolve_variant(method)
        configured = [self._configured(variant, lv) for lv in self.method_levels(variant.cls)]
        compared = self._configured(variant, self.budget.comparison_sparsity)
        return self._memoised("study", setting, method, lambda: transfer_study(
            self.cache, self.dense, get_setting(setting), configured, self.budget, data_seed=self.seed,
            label=variant.label, inputs=self.inputs, compared=compared), configured)

    def modes(self, setting: str, method: str) -> ModeComparison:
        """The four transfer modes at the budget's comparison sparsity."""
        variant = resolve_variant(method)
        configured = self._configured(variant, self.budget.comparison_sparsity)
        return self._memoised("modes", setting, method, lambda: compare_modes(
            self.cache, self.dense, get_setting(setting), configured, self.budget, data_seed=self.seed,
            label=variant.label, inputs=self.inputs), [configured])

    def paths(self, setting: str, method: str) -> list[InterpolationPath]:
        """Interpolation paths at the easiest and the hardest level (by difficulty), for every seed."""
        configured = self._configured(resolve_variant(method), self.budget.comparison_sparsity)

        def compute() -> list[InterpolationPath]:
            difficulty = self.modes(setting, method).difficulty()
            ordered = sorted(get_setting(setting).levels, key=lambda lv: difficulty[lv.name])
            return [interpolation_path(self.cache, self.dense, level, configured, self.budget, seed,
                                       data_seed=self.seed, inputs=self.inputs)
                    for level in (ordered[0], ordered[-1]) for seed in self.budget.seeds]

        return self._memoised("paths", setting, method, compute, [configured])
