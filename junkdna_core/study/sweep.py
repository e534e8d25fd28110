"""A study: one model, one setting, one compression method swept over its levels.

It gathers, through the cache, the per-item scores of the dense model and of
each compressed model at each difficulty level. Nothing is loaded or built that
the cache already holds, so a warm rerun only reads JSON.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from junkdna_core.compress.base import CompressionMethod
from junkdna_core.compress.strength import strength
from junkdna_core.config.parsing import BosPolicy
from junkdna_core.data.settings import Level, Setting
from junkdna_core.models.conventions import input_format
from junkdna_core.models.loading import LoadedModel
from junkdna_core.scoring.levels import LevelScores, cached_level_scores, dense_key, setting_items
from junkdna_core.storage.cache import ArtifactCache
from junkdna_core.study.artifacts import (
    Calibration,
    calibration_batch,
    compressed_key,
    compressed_model,
    verified_level,
)

DENSE_MEASURED: dict[str, Any] = {"dense": True}
"""The measured level of a configuration of strength 0: the dense model itself, not compressed."""


def compression_strength(method: CompressionMethod) -> float:
    """How strongly a configuration compresses, on one axis for every family (see compress.strength)."""
    return strength(method.family, method.level)


@dataclass(frozen=True)
class Curve:
    """One difficulty level under one method: dense scores and the scores at each strength."""

    level: Level
    dense: LevelScores
    strengths: tuple[float, ...]
    compressed: tuple[LevelScores, ...]


@dataclass(frozen=True)
class Study:
    """Everything measured for one (model, setting, method), with its provenance.

    ``family``: the method's family (``pruning``, ``quantization``, ``lowrank``);
    ``configurations``: each configuration's ``describe()`` with its ``strength``;
    ``model_parameters``: the model's parameter count; ``seed``: the run's seed
    (items, calibration, and the claims' bootstrap).
    ``inputs``: how texts were fed to the model (:meth:`InputFormat.describe`: the BOS policy, the
    prefix ids and tokens, the chat template on or off).
    """

    model: str
    model_fingerprint: str
    model_parameters: int
    setting: Setting
    method: str
    family: str
    configurations: tuple[dict[str, Any], ...]
    items: dict[str, dict[str, Any]]
    calibration: str | None
    curves: tuple[Curve, ...]
    seed: int
    inputs: dict[str, Any] | None = None
    # Where the model was measured (LoadedModel.describe(): source, revision, device, dtype); not part
    # of what was measured, so two studies with the same numbers are equal wherever they ran.
    model_info: dict[str, Any] = field(default_factory=dict, compare=False)


def describe_configuration(method: CompressionMethod, measured: dict[str, Any]) -> dict[str, Any]:
    """What identifies a configuration (``describe()``), its strength on the common axis, and ``measured``: the level
    its compression verifiably reached (:data:`DENSE_MEASURED` at strength 0)."""
    return {**method.describe(), "strength": compression_strength(method), "measured": measured}


def run_study(
    dense: LoadedModel,
    setting: Setting,
    methods: list[CompressionMethod],
    *,
    cache: ArtifactCache,
    items: int,
    seed: int = 0,
    batch_size: int = 8,
    progress: bool = True,
    label: str | None = None,
    bos: BosPolicy = "auto",
    chat_template: bool = False,
    metrics: Sequence[str] = (),
) -> Study:
    """Score the dense model and every configuration in ``methods`` on every level of ``setting``.

    ``items`` is the number of items per level. ``label`` names the method in the
    study (default: its registered name), e.g. a variant's ``magnitude[scope=global]``.
    ``metrics``: answer metrics (``em``, ``f1``) recorded beside the likelihood on the
    levels with generative items (``LevelScores.extra``).
    ``methods`` are configurations of one method at increasing strength; a
    configuration of strength 0 is the dense model itself and is not rebuilt.
    Each configuration records, under ``measured``, the level its compression
    verifiably reached (``{"dense": True}`` at strength 0); a method that misses
    its declared level raises MethodError before anything is scored.
    ``bos`` and ``chat_template`` decide how texts are fed to the model (``--jd-bos``,
    ``--jd-chat-template``; see :func:`~junkdna_core.models.conventions.input_format`): every
    scoring context and calibration sample starts with the decided prefix.
    """
    inputs = input_format(dense.conventions, bos=bos, chat_template=chat_template)
    chosen = setting_items(setting, items, seed, cache=cache)
    calibration: Calibration | None = None
    if any(m.needs_calibration for m in methods):
        calibration = calibration_batch(dense.tokenizer, seed=seed, inputs=inputs)

    def dense_model() -> tuple[Any, Any]:
        return dense.model, dense.tokenizer

    @functools.lru_cache(maxsize=1)
    def built(index: int) -> tuple[Any, Any]:
        compressed = compressed_model(dense, methods[index], cache=cache, calibration=calibration, progress=progress)
        return compressed.model, dense.tokenizer

    def scores(key: str, load, level: Level) -> LevelScores:
        return cached_level_scores(cache, key, load, setting, level, chosen[level.task], inputs=inputs, seed=seed,
                                   batch_size=batch_size, progress=progress, metrics=metrics)

    # every configuration's level is verified (built if need be) before anything is scored
    measured = [DENSE_MEASURED if compression_strength(m) == 0
                else verified_level(dense, m, cache=cache, calibration=calibration, progress=progress)
                for m in methods]
    keys = [compressed_key(cache, dense, m, calibration) for m in methods]
    dense_scores = [scores(dense_key(dense.fingerprint), dense_model, level) for level in setting.levels]
    by_method = [  # one configuration at a time, so each compressed model is loaded at most once
        dense_scores if compression_strength(m) == 0
        else [scores(key, functools.partial(built, i), level) for level in setting.levels]
        for i, (m, key) in enumerate(zip(methods, keys))
    ]
    strengths = tuple(compression_strength(m) for m in methods)
    curves = [
        Curve(level, dense_scores[j], strengths, tuple(row[j] for row in by_method))
        for j, level in enumerate(setting.levels)
    ]
    built.cache_clear()
    return Study(
        model=dense.name,
        model_fingerprint=dense.fingerprint,
        model_parameters=dense.parameters,
        setting=setting,
        method=label or methods[0].name,
        family=methods[0].family,
        configurations=tuple(describe_configuration(m, level) for m, level in zip(methods, measured)),
        items={task: {"split": s.split, "source": s.source, "fingerprint": s.fingerprint, "ids": list(s.ids)}
               for task, s in chosen.items()},
        calibration=calibration.fingerprint if calibration else None,
        curves=tuple(curves),
        inputs=inputs.describe(),
        model_info=dense.describe(),
        seed=seed,
    )
