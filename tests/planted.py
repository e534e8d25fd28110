"""A study with a known effect, for testing claims and benchmarks without a model (test helper)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from junkdna_core.compress.strength import LEVEL_NAMES, level_of
from junkdna_core.config.errors import ConfigError
from junkdna_core.data.settings import Level, Setting
from junkdna_core.scoring.levels import LevelScores
from junkdna_core.study.sweep import Curve, Study

PLANTED_PARAMETERS = 1_000_000


def planted_configuration(method: str, family: str, strength: float, *, measured: bool = True,
                          **params: Any) -> dict[str, Any]:
    """A configuration as a study records it: describe() with strength, and what was measured (if ``measured``)."""
    level = level_of(family, strength)
    name = LEVEL_NAMES[family].replace("kept ", "").replace(" ", "_")
    verified = {"dense": True} if strength == 0 else {name: level}
    return {"method": method, "version": "1", "params": {**params, name: level}, "strength": strength,
            **({"measured": verified} if measured else {})}


def planted_study(
    setting: Setting,
    rates: Sequence[float],
    *,
    strengths: Sequence[float] = (0.0, 0.2, 0.4, 0.6, 0.8),
    items: int = 400,
    base: float | Sequence[float] = 0.8,
    seed: int = 0,
    model: str = "planted",
    method: str = "magnitude",
    family: str = "pruning",
    parameters: int = PLANTED_PARAMETERS,
    measured: bool = True,
    params: dict[str, Any] | None = None,
    floor: float = 0.0,
    draw_seed: int | None = None,
    fingerprint: str = "0" * 16,
) -> Study:
    """A study with a known effect, for testing claims and thresholds without a model.

    Level ``j`` of ``setting`` has dense accuracy ``base`` (or ``base[j]``) and falls
    linearly to ``base * (1 - rates[j] * strength)``, floored at ``floor``; the same
    ``items`` uniform draws (``draw_seed``, default ``seed``) decide every item at
    every level, so items are paired. ``seed`` is also the study's (bootstrap) seed.
    """
    if len(rates) != len(setting.levels):
        raise ConfigError(f"{setting.id} has {len(setting.levels)} levels; got {len(rates)} rates")
    bases = [base] * len(rates) if isinstance(base, (int, float)) else list(base)
    uniform = np.random.default_rng(seed if draw_seed is None else draw_seed).random(items)
    ids = tuple(f"i{k}" for k in range(items))

    def scores(level: Level, dense: float, rate: float, strength: float) -> LevelScores:
        accuracy = max(floor, dense * (1 - rate * strength))
        return LevelScores(level.name, level.metric, ids, tuple(float(u < accuracy) for u in uniform))

    curves = tuple(Curve(level, scores(level, dense, rate, 0.0), tuple(strengths),
                         tuple(scores(level, dense, rate, s) for s in strengths))
                   for level, dense, rate in zip(setting.levels, bases, rates))
    configurations = tuple(planted_configuration(method, family, s, measured=measured, **(params or {}))
                           for s in strengths)
    return Study(model=model, model_fingerprint=fingerprint, model_parameters=parameters, setting=setting,
                 method=method, family=family, configurations=configurations,
                 items={level.task: {"split": "planted", "source": "planted", "fingerprint": "-", "ids": list(ids)}
                        for level in setting.levels},
                 calibration=None, curves=curves, seed=seed)
