"""A study with a known effect, for testing claims and benchmarks without a model (test helper)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from junkdna_core.config.errors import ConfigError
from junkdna_core.data.settings import Level, Setting
from junkdna_core.scoring.levels import LevelScores
from junkdna_core.study.sweep import Curve, Study


def planted_study(
    setting: Setting,
    rates: Sequence[float],
    *,
    strengths: Sequence[float] = (0.0, 0.2, 0.4, 0.6, 0.8),
    items: int = 400,
    base: float = 0.8,
    seed: int = 0,
    model: str = "planted",
    method: str = "magnitude",
) -> Study:
    """A study with a known effect, for testing claims and thresholds without a model.

    Level ``j`` of ``setting`` has dense accuracy ``base`` and falls linearly to
    ``base * (1 - rates[j] * strength)`` (floored at 0); the same ``items``
    uniform draws (``seed``) decide every item at every level, so items are paired.
    """
    if len(rates) != len(setting.levels):
        raise ConfigError(f"{setting.id} has {len(setting.levels)} levels; got {len(rates)} rates")
    uniform = np.random.default_rng(seed).random(items)
    ids = tuple(f"i{k}" for k in range(items))

    def scores(level: Level, rate: float, strength: float) -> LevelScores:
        accuracy = max(0.0, base * (1 - rate * strength))
        return LevelScores(level.name, level.metric, ids, tuple(float(u < accuracy) for u in uniform))

    curves = tuple(Curve(level, scores(level, rate, 0.0), tuple(strengths),
                         tuple(scores(level, rate, s) for s in strengths))
                   for level, rate in zip(setting.levels, rates))
    return Study(model, "0" * 16, setting, method, tuple({"strength": s} for s in strengths),
                 {level.task: {"split": "planted", "source": "planted", "fingerprint": "-", "ids": list(ids)}
                  for level in setting.levels}, None, curves)
