"""Budgets: how much a run measures, as one frozen :class:`Budget` per name (``smoke``, ``full``).

The session holds the budget of a run (with ``--jd-items`` applied); everything
that sizes work reads it from there, and option help texts are generated from it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Any

from junkdna_core.config.checks import offset_seeds
from junkdna_core.config.errors import ConfigError


@dataclass(frozen=True)
class FinetuneConfig:
    """Optimizer, schedule and step budget, shared by every transfer mode of a comparison.

    A run takes ``max(min_steps, ceil(epochs * train_items / batch_size))`` AdamW
    steps with linear warm-up over the first ``warmup`` fraction, then linear decay.
    """

    epochs: float = 3.0
    batch_size: int = 16
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    warmup: float = 0.1
    max_length: int = 128
    min_steps: int = 8
    max_grad_norm: float = 1.0

    def __post_init__(self) -> None:
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "learning_rate": self.learning_rate,
                    "max_length": self.max_length, "min_steps": self.min_steps, "max_grad_norm": self.max_grad_norm}
        bad = {k: v for k, v in positive.items() if not (isinstance(v, int | float) and math.isfinite(v) and v > 0)}
        if bad:
            raise ConfigError(f"fine-tuning settings must be positive numbers; got {bad}")
        if not 0 <= self.warmup < 1 or not 0 <= self.weight_decay < 1:
            raise ConfigError(f"warmup and weight_decay must lie in [0, 1); got {self.warmup}, {self.weight_decay}")

    def steps(self, train_items: int) -> int:
        """Optimizer steps for a training set of ``train_items`` examples."""
        return max(self.min_steps, math.ceil(self.epochs * train_items / self.batch_size))

    def describe(self) -> dict[str, Any]:
        """The configuration as JSON-ready data (part of cache keys and records)."""
        return asdict(self)


@dataclass(frozen=True)
class FinetuneBudget:
    """How much a fine-tuning study trains and tests: items, seeds, the compared sparsity, the LMC path."""

    train_items: int
    test_items: int
    seeds: tuple[int, ...]
    comparison_sparsity: float
    alphas: tuple[float, ...]
    config: FinetuneConfig

    def seeded(self, run_seed: int) -> FinetuneBudget:
        """This budget with its training seeds offset by a run's seed (``--jd-seed``; 0 keeps them), modulo the limit."""
        return dataclasses.replace(self, seeds=offset_seeds(run_seed, self.seeds))


@dataclass(frozen=True)
class Budget:
    """How much one run measures.

    ``items``: items scored per difficulty level. ``sparsities``, ``nm_sparsities``
    (reachable by N of M = 8), ``bits`` and ``rank_fractions``: the levels swept by
    default by pruning, N:M, quantization and low-rank methods, weakest first.
    ``methods``: the methods swept when ``--jd-methods`` is not given;
    ``random_seeds``: how many random masks (one seed each) the random control
    averages; ``finetune_methods``: the pruning methods the fine-tuning benchmarks
    transfer from; ``finetune``: the fine-tuning data, seeds and schedule.
    """

    name: str
    description: str
    items: int
    sparsities: tuple[float, ...]
    nm_sparsities: tuple[float, ...]
    bits: tuple[int, ...]
    rank_fractions: tuple[float, ...]
    methods: tuple[str, ...]
    random_seeds: int
    finetune_methods: tuple[str, ...]
    finetune: FinetuneBudget

    def overridden(self, *, items: int | None = None, random_seeds: int | None = None) -> Budget:
        """This budget with ``--jd-items`` and ``--jd-random-seeds`` applied (None keeps the budget's): ``items`` sizes
        the items scored per level and the test items per level of fine-tuning, ``random_seeds`` the masks the random
        control averages."""
        changes: dict[str, Any] = {}
        if items is not None:
            changes.update(items=items, finetune=dataclasses.replace(self.finetune, test_items=items))
        if random_seeds is not None:
            changes["random_seeds"] = random_seeds
        return dataclasses.replace(self, **changes) if changes else self

    def describe(self) -> dict[str, Any]:
        """The budget as JSON-ready data (in every run record)."""
        return asdict(self)


def _levels(values: Any) -> tuple[float, ...]:
    return tuple(round(float(v), 10) for v in values)


BUDGETS: Mapping[str, Budget] = MappingProxyType({b.name: b for b in (
    Budget(
        name="smoke",
        description="minutes on 2 CPU cores: checks the machinery, not the hypothesis",
        # fewer items make most smoke claims undefined: at 16, some bootstrap resample of a near-chance level
        # has a dense score of 0 (measured 2026-12-07: 27 of 41 claims undefined), so the statistics go unexercised
        items=24,
        sparsities=_levels((0.0, 0.2, 0.4, 0.6)),
        nm_sparsities=_levels(1 - n / 8 for n in (6, 4, 2)),
        bits=(8, 4, 3, 2),
        rank_fractions=_levels((0.75, 0.5, 0.25)),
        # calibration-free methods, so the whole benchmark directory runs in minutes on 2 CPU cores
        methods=("magnitude", "random", "rtn", "lowrank"),
        random_seeds=1,  # one mask: the control's interval then covers the items only
        finetune_methods=("magnitude",),
        # 24 steps on all 64 training items take MiniLM from the majority class (0.56) to 0.78 on SST-2
        # the modes compare at 0.6, one of the sparsities: setting 1's sparse runs there serve both claims
        finetune=FinetuneBudget(train_items=64, test_items=64, seeds=(0, 1), comparison_sparsity=0.6,
                                alphas=(0.0, 0.5, 1.0),
                                config=FinetuneConfig(epochs=3, batch_size=8, learning_rate=3e-4, max_length=64,
                                                      min_steps=4)),
    ),
    Budget(
        name="full",
        description="a real study",
        items=500,
        sparsities=_levels(i / 10 for i in range(10)),
        nm_sparsities=_levels(1 - n / 8 for n in range(7, 0, -1)),
        bits=(8, 7, 6, 5, 4, 3, 2),
        rank_fractions=_levels(i / 10 for i in range(9, 0, -1)),
        methods=("magnitude", "random", "nm", "wanda", "sparsegpt", "rtn", "gptq", "lowrank"),
        random_seeds=3,
        finetune_methods=("magnitude", "nm"),
        # 75 steps on 400 items: 0.805 on SST-2 in 123 s on one CPU core (at lr 1e-4 it stays at the majority class)
        finetune=FinetuneBudget(train_items=400, test_items=200, seeds=(0, 1, 2), comparison_sparsity=0.5,
                                alphas=tuple(i / 10 for i in range(11)),
                                config=FinetuneConfig(learning_rate=3e-4, max_length=128)),
    ),
)})


def get_budget(name: str) -> Budget:
    """The budget called ``name`` (``smoke`` or ``full``); ConfigError naming the known ones otherwise."""
    budget = BUDGETS.get(str(name).strip().lower())
    if budget is None:
        raise ConfigError(f"budget must be one of {', '.join(BUDGETS)}; got {name!r}")
    return budget


def budgets_help(field: str, show: Any = None) -> str:
    """``smoke: <value>; full: <value>`` for option help texts, from the budgets themselves."""
    show = show or (lambda v: ", ".join(f"{x:g}" if isinstance(x, float) else str(x) for x in v)
                    if isinstance(v, tuple) else str(v))
    return "; ".join(f"{b.name}: {show(getattr(b, field))}" for b in BUDGETS.values())
