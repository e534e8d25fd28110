"""The state of one junkdna pytest run: every ``--jd-*`` option parsed once, and the records collected."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from junkdna_core.config.budgets import Budget
from junkdna_core.config.parsing import BosPolicy, training_dtype
from junkdna_core.config.thresholds import PAPER_THRESHOLDS
from junkdna_core.models.specs import model_name


@dataclass
class JunkdnaSession:
    """Every --jd-* option, parsed once, plus the records this process collected.

    ``budget`` is the run's budget with ``--jd-items`` applied: what sizes the work.
    ``metrics``: answer metrics recorded beside the likelihood (``--jd-metric``), empty for none.
    ``worker`` / ``workers``: this process is pytest-xdist worker ``gw<worker>`` of
    ``workers`` (0 of 1 without xdist); it picks the process's share of ``device``.
    """

    model: str
    encoder: str
    methods: tuple[str, ...] | None
    sparsities: tuple[float, ...] | None
    budget: Budget
    seed: int
    device: str
    dtype: str
    device_map: str
    max_memory: dict[str, int] | None
    cache_dir: Path | None
    cache_max_bytes: int | None
    results_dir: Path
    thresholds: dict[str, float]
    bos: BosPolicy = "auto"
    chat_template: bool = False
    metrics: tuple[str, ...] = ()
    worker: int = 0
    workers: int = 1
    records: list[dict[str, Any]] = field(default_factory=list)
    worker_environment: dict[str, Any] | None = None
    models: list[Any] = field(default_factory=list)  # the LoadedModels this process opened (jd_model, jd_encoder)
    worker_models: list[dict[str, Any]] = field(default_factory=list)  # the controller's: every worker's placements

    @property
    def model_label(self) -> str:
        """The model's short name in test ids (the same as in its records)."""
        return model_name(self.model)

    @property
    def encoder_label(self) -> str:
        """The fine-tuned model's short name in test ids."""
        return model_name(self.encoder)

    def placement_options(self, *, training: bool = False) -> dict[str, Any]:
        """The dtype, device-map and memory options :func:`~junkdna_core.models.loading.load_model` takes.

        ``training``: for a model that is fine-tuned (``--jd-dtype auto`` is then float32, see
        :func:`~junkdna_core.config.parsing.training_dtype`).
        """
        return {"dtype": training_dtype(self.dtype) if training else self.dtype, "device_map": self.device_map,
                "max_memory": self.max_memory}

    def model_placements(self) -> list[dict[str, Any]]:
        """Where this process put each model it opened and why (``placement`` None: its weights were never read)."""
        return [{**model.placement_record(), "worker": self.worker} for model in self.models]

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
            "seed": self.seed,
            "device": self.device,
            "dtype": self.dtype,
            "device_map": self.device_map,
            "max_memory": self.max_memory,
            "thresholds": self.thresholds,
            "bos": self.bos,
            "chat_template": self.chat_template,
            "metrics": list(self.metrics),
        }

    @classmethod
    def from_config(cls, config: pytest.Config) -> JunkdnaSession:
        """The session of ``config``'s options (already validated by their parsers)."""
        opt = config.getoption
        worker, workers = worker_slot(config)
        return cls(
            model=opt("jd_model"),
            encoder=opt("jd_encoder"),
            methods=opt("jd_methods"),
            sparsities=opt("jd_sparsities"),
            budget=opt("jd_budget").overridden(items=opt("jd_items")),
            seed=opt("jd_seed"),
            device=opt("jd_device"),
            dtype=opt("jd_dtype"),
            device_map=opt("jd_device_map"),
            max_memory=opt("jd_max_memory"),
            cache_dir=opt("jd_cache"),
            cache_max_bytes=opt("jd_cache_max_gb"),
            results_dir=opt("jd_results") or Path(config.rootpath, "jd-results"),
            thresholds={**PAPER_THRESHOLDS, **dict(opt("jd_threshold"))},
            bos=opt("jd_bos"),
            chat_template=opt("jd_chat_template"),
            metrics=opt("jd_metric"),
            worker=worker,
            workers=workers,
        )


SESSION_KEY = pytest.StashKey[JunkdnaSession]()


def is_xdist_worker(config: pytest.Config) -> bool:
    """True inside a pytest-xdist worker process."""
    return hasattr(config, "workerinput")


def worker_slot(config: pytest.Config) -> tuple[int, int]:
    """``(k, W)``: this process is pytest-xdist worker ``gw<k>`` of W workers; ``(0, 1)`` without xdist."""
    if not is_xdist_worker(config):
        return 0, 1
    workers = max(1, int(config.workerinput.get("workercount", 1)))
    digits = str(config.workerinput.get("workerid", "gw0"))[2:]
    return (int(digits) % workers if digits.isascii() and digits.isdigit() else 0), workers
