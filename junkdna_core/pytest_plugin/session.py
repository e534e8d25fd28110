"""The state of one junkdna pytest run: every ``--jd-*`` option parsed once, and the records collected."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from junkdna_core.config.budgets import Budget
from junkdna_core.config.thresholds import PAPER_THRESHOLDS
from junkdna_core.models.specs import model_name


@dataclass
class JunkdnaSession:
    """Every --jd-* option, parsed once, plus the records this process collected.

    ``budget`` is the run's budget with ``--jd-items`` and ``--jd-random-seeds``
    applied: what sizes the work. ``claims`` are the claim records this process
    collected (JSON of :class:`~junkdna_core.results.schema.ClaimRecord`),
    ``records`` the free-form ones.
    """

    model: str
    encoder: str
    methods: tuple[str, ...] | None
    sparsities: tuple[float, ...] | None
    budget: Budget
    seed: int
    device: str
    dtype: str
    cache_dir: Path | None
    results_dir: Path
    thresholds: dict[str, float]
    claims: list[dict[str, Any]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    worker_environment: dict[str, Any] | None = None

    @property
    def model_label(self) -> str:
        """The model's short name in test ids (the same as in its records)."""
        return model_name(self.model)

    @property
    def encoder_label(self) -> str:
        """The fine-tuned model's short name in test ids."""
        return model_name(self.encoder)

    def method_names(self) -> tuple[str, ...]:
        """The methods this run sweeps: --jd-methods, or the budget's."""
        return self.methods or self.budget.methods

    def finetune_method_names(self) -> tuple[str, ...]:
        """The pruning methods fine-tuning transfers from: --jd-methods' calibration-free ones, or the budget's."""
        if not self.methods:
            return self.budget.finetune_methods
        from junkdna_core.compress.registry import get_method  # imports torch: not in the xdist controller

        return tuple(m for m in self.methods
                     if get_method(m).family == "pruning" and not get_method(m).needs_calibration)

    def random_mask_seeds(self) -> tuple[int, ...]:
        """The seeds of the random control's masks: --jd-seed and the next ones, one per mask."""
        return tuple(self.seed + k for k in range(self.budget.random_seeds))

    def method_levels(self, method_cls: type) -> tuple[float, ...]:
        """The levels a method is swept over: --jd-sparsities for pruning methods, else its defaults."""
        if self.sparsities and method_cls.family == "pruning":
            return self.sparsities
        return method_cls.default_levels(self.budget)

    def options(self) -> dict[str, Any]:
        """The options of this run as JSON-ready data (in its run record)."""
        return {
            "model": self.model,
            "encoder": self.encoder,
            "methods": list(self.methods) if self.methods else None,
            "sparsities": list(self.sparsities) if self.sparsities else None,
            "budget": self.budget.name,
            "items": self.budget.items,
            "random_seeds": self.budget.random_seeds,
            "seed": self.seed,
            "device": self.device,
            "dtype": self.dtype,
            "thresholds": self.thresholds,
        }

    @classmethod
    def from_config(cls, config: pytest.Config) -> JunkdnaSession:
        """The session of ``config``'s options (already validated by their parsers)."""
        opt = config.getoption
        return cls(
            model=opt("jd_model"),
            encoder=opt("jd_encoder"),
            methods=opt("jd_methods"),
            sparsities=opt("jd_sparsities"),
            budget=opt("jd_budget").overridden(items=opt("jd_items"), random_seeds=opt("jd_random_seeds")),
            seed=opt("jd_seed"),
            device=opt("jd_device"),
            dtype=opt("jd_dtype"),
            cache_dir=opt("jd_cache"),
            results_dir=opt("jd_results") or Path(config.rootpath, "jd-results"),
            thresholds={**PAPER_THRESHOLDS, **dict(opt("jd_threshold"))},
        )


SESSION_KEY = pytest.StashKey[JunkdnaSession]()


def is_xdist_worker(config: pytest.Config) -> bool:
    """True inside a pytest-xdist worker process."""
    return hasattr(config, "workerinput")
