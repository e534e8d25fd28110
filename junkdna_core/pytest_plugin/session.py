"""The state of one junkdna pytest run: every ``--jd-*`` option parsed once, and the records collected."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from junkdna_core.config.budgets import Budget
from junkdna_core.config.checks import offset_seeds
from junkdna_core.config.method_specs import MethodSpec
from junkdna_core.config.parsing import BosPolicy, training_dtype
from junkdna_core.config.thresholds import PAPER_THRESHOLDS
from junkdna_core.models.specs import model_labels
from junkdna_core.study.failures import FailedCompressions

if TYPE_CHECKING:
    from junkdna_core.compress.variants import MethodVariant


@dataclass
class JunkdnaSession:
    """Every --jd-* option, parsed once, plus the records and compression failures this process collected.

    ``models`` and ``encoders`` are the specs of --jd-model and --jd-encoder, in
    order; ``methods`` the specs of --jd-methods (None: the budget's).
    ``budget`` is the run's budget with ``--jd-items`` and ``--jd-random-seeds``
    applied: what sizes the work. ``claims`` are the claim records this process
    collected (JSON of :class:`~junkdna_core.results.schema.ClaimRecord`),
    ``records`` the free-form ones.
    ``metrics``: answer metrics recorded beside the likelihood (``--jd-metric``), empty for none.
    ``worker`` / ``workers``: this process is pytest-xdist worker ``gw<worker>`` of
    ``workers`` (0 of 1 without xdist); it picks the process's share of ``device``.
    ``opened``: the models this process loaded (their placements go into the run's environment).
    """

    models: tuple[str, ...]
    encoders: tuple[str, ...]
    methods: tuple[MethodSpec, ...] | None
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
    claims: list[dict[str, Any]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    worker_environment: dict[str, Any] | None = None
    opened: list[Any] = field(default_factory=list)  # LoadedModels (jd_model, jd_encoder)
    worker_models: list[dict[str, Any]] = field(default_factory=list)  # the controller's: every worker's placements
    failures: FailedCompressions = field(default_factory=FailedCompressions)
    _variants: tuple[Any, ...] | None = field(default=None, init=False, repr=False)

    @property
    def model_labels(self) -> tuple[str, ...]:
        """Each model's short name in test ids and records, distinct, in the order of ``models``."""
        return model_labels(self.models)

    @property
    def encoder_labels(self) -> tuple[str, ...]:
        """Each fine-tuned model's short name in test ids and records."""
        return model_labels(self.encoders)

    def placement_options(self, *, training: bool = False) -> dict[str, Any]:
        """The dtype, device-map and memory options :func:`~junkdna_core.models.loading.load_model` takes.

        ``training``: for a model that is fine-tuned (``--jd-dtype auto`` is then float32, see
        :func:`~junkdna_core.config.parsing.training_dtype`).
        """
        return {"dtype": training_dtype(self.dtype) if training else self.dtype, "device_map": self.device_map,
                "max_memory": self.max_memory}

    def model_placements(self) -> list[dict[str, Any]]:
        """Where this process put each model it opened and why (``placement`` None: its weights were never read)."""
        return [{**model.placement_record(), "worker": self.worker} for model in self.opened]

    def method_variants(self) -> tuple[MethodVariant, ...]:
        """The method variants this run sweeps (--jd-methods, or the budget's), each checked at its levels.

        Resolved once (this imports the methods, hence torch); ConfigError names a
        bad spec, an option its parameters do not have or take, or a level it cannot reach.
        """
        if self._variants is None:
            from junkdna_core.compress.variants import check_distinct, resolve_variant  # imports torch: lazily

            specs = self.methods or tuple(MethodSpec(name) for name in self.budget.methods)
            variants = tuple(resolve_variant(spec) for spec in specs)
            check_distinct(variants)
            for variant in variants:
                variant.check_levels(self.method_levels(variant.cls), run_seed=self.seed)
            self._variants = variants
        return self._variants

    def finetune_variants(self) -> tuple[MethodVariant, ...]:
        """The pruning methods fine-tuning transfers from: --jd-methods' calibration-free ones, or the budget's."""
        if not self.methods:
            from junkdna_core.compress.variants import resolve_variant  # imports torch: lazily

            return tuple(resolve_variant(name) for name in self.budget.finetune_methods)
        return tuple(v for v in self.method_variants() if v.cls.family == "pruning" and not v.cls.needs_calibration)

    def random_mask_seeds(self) -> tuple[int, ...]:
        """The seeds of the random control's masks: --jd-seed and the next ones (modulo 2**32), one per mask."""
        return offset_seeds(self.seed, range(self.budget.random_seeds))

    def method_levels(self, method_cls: type) -> tuple[float, ...]:
        """The levels a method is swept over: --jd-sparsities for pruning methods, else its defaults."""
        if self.sparsities and method_cls.family == "pruning":
            return self.sparsities
        return method_cls.default_levels(self.budget)

    def options(self) -> dict[str, Any]:
        """The options of this run as JSON-ready data (in its run record)."""
        return {
            "models": list(self.models),
            "model_labels": list(self.model_labels),
            "encoders": list(self.encoders),
            "methods": [spec.text for spec in self.methods] if self.methods else None,
            "sparsities": list(self.sparsities) if self.sparsities else None,
            "budget": self.budget.name,
            "items": self.budget.items,
            "random_seeds": self.budget.random_seeds,
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
        """The session of ``config``'s options (already validated by their parsers).

        A relative ``--jd-results`` and the default ``jd-results`` are taken in the
        directory the run was started in, not in pytest's rootdir.
        """
        opt = config.getoption
        worker, workers = worker_slot(config)
        return cls(
            models=tuple(opt("jd_model")),
            encoders=tuple(opt("jd_encoder")),
            methods=opt("jd_methods"),
            sparsities=opt("jd_sparsities"),
            budget=opt("jd_budget").overridden(items=opt("jd_items"), random_seeds=opt("jd_random_seeds")),
            seed=opt("jd_seed"),
            device=opt("jd_device"),
            dtype=opt("jd_dtype"),
            device_map=opt("jd_device_map"),
            max_memory=opt("jd_max_memory"),
            cache_dir=opt("jd_cache"),
            cache_max_bytes=opt("jd_cache_max_gb"),
            results_dir=Path(config.invocation_params.dir, opt("jd_results") or "jd-results"),
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
