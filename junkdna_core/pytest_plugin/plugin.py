"""The junkdna pytest plugin (entry point ``pytest11: junkdna``).

Thin by design: options and markers are registered here, parsed once into a
:class:`JunkdnaSession` kept in ``config.stash``, and handed to tests through
fixtures. Under pytest-xdist each worker caps torch's threads to its share of
the cores, and run records travel worker -> ``workeroutput`` -> controller,
which alone writes them. Nothing heavy (torch, transformers) is imported until a
fixture needs it, because pytest loads this plugin in every run.
``--jd-conformance NAMES`` adds the conformance kit's tests
(:mod:`junkdna_core.testing`) to the collected items.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from junkdna_core.config.options import (
    add_cache_option,
    add_items_option,
    add_results_option,
    add_run_options,
    add_threshold_option,
    type_error,
)
from junkdna_core.results.compare import add_compare_options

MARKERS = {
    "smoke": "part of the smoke budget (minutes on 2 CPU cores)",
    "full": "needs the full budget (a real study)",
    "claim": "asserts a claim of the Junk DNA Hypothesis",
    "finetune": "fine-tunes the encoder (setting1, irreversible, lmc)",
    **{f"setting{i}": f"difficulty setting {i} of the paper (Table 1)" for i in range(1, 7)},
}
RECORDS_KEY = "junkdna_records"
ENVIRONMENT_KEY = "junkdna_environment"
# Methods swept when --jd-methods is not given. The smoke budget keeps to methods that need no
# calibration pass so the whole benchmark directory runs in minutes on 2 CPU cores.
DEFAULT_METHODS = {
    "smoke": ("magnitude", "random", "rtn", "lowrank"),
    "full": ("magnitude", "random", "nm", "wanda", "sparsegpt", "rtn", "gptq", "lowrank"),
}
# Pruning methods the fine-tuning benchmarks transfer from (calibration-free: masks come from the weights).
DEFAULT_FINETUNE_METHODS = {"smoke": ("magnitude",), "full": ("magnitude", "nm")}


@dataclass
class JunkdnaSession:
    """Every --jd-* option, parsed once, plus the records this process collected."""

    model: str
    encoder: str
    methods: tuple[str, ...] | None
    sparsities: tuple[float, ...] | None
    budget: str
    items: int | None
    seed: int
    device: str
    dtype: str
    cache_dir: Path | None
    results_dir: Path
    thresholds: dict[str, float]
    records: list[dict[str, Any]] = field(default_factory=list)
    worker_environment: dict[str, Any] | None = None

    @property
    def model_label(self) -> str:
        """The model's short name in test ids (the same as in its records)."""
        from junkdna_core.models.specs import model_name

        return model_name(self.model)

    @property
    def encoder_label(self) -> str:
        """The fine-tuned model's short name in test ids."""
        from junkdna_core.models.specs import model_name

        return model_name(self.encoder)

    def method_names(self) -> tuple[str, ...]:
        """The methods this run sweeps: --jd-methods, or the budget's defaults."""
        return self.methods or DEFAULT_METHODS[self.budget]

    def finetune_method_names(self) -> tuple[str, ...]:
        """The pruning methods fine-tuning transfers from: the calibration-free ones of --jd-methods, or defaults."""
        if not self.methods:
            return DEFAULT_FINETUNE_METHODS[self.budget]
        from junkdna_core.compress.registry import get_method

        return tuple(m for m in self.methods
                     if get_method(m).family == "pruning" and not get_method(m).needs_calibration)

    def method_levels(self, method_cls: type) -> tuple[float, ...]:
        """The levels a method is swept over: --jd-sparsities for pruning methods, else its defaults."""
        if self.sparsities and method_cls.family == "pruning":
            return self.sparsities
        return method_cls.default_levels(self.budget)

    @classmethod
    def from_config(cls, config: pytest.Config) -> JunkdnaSession:
        opt = config.getoption
        results = opt("jd_results") or Path(config.rootpath, "jd-results")
        return cls(
            model=opt("jd_model"),
            encoder=opt("jd_encoder"),
            methods=opt("jd_methods"),
            sparsities=opt("jd_sparsities"),
            budget=opt("jd_budget"),
            items=opt("jd_items"),
            seed=opt("jd_seed"),
            device=opt("jd_device"),
            dtype=opt("jd_dtype"),
            cache_dir=opt("jd_cache"),
            results_dir=results,
            thresholds=_thresholds(opt("jd_threshold")),
        )


def _thresholds(overrides: list[tuple[str, float]]) -> dict[str, float]:
    from junkdna_core.config.thresholds import PAPER_THRESHOLDS

    return {**PAPER_THRESHOLDS, **dict(overrides)}


SESSION_KEY = pytest.StashKey[JunkdnaSession]()
BASELINE_KEY = pytest.StashKey[tuple[list[Any], tuple[str, ...]]]()
COMPARISON_KEY = pytest.StashKey[Any]()


def is_xdist_worker(config: pytest.Config) -> bool:
    """True inside a pytest-xdist worker process."""
    return hasattr(config, "workerinput")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("junkdna", "junkdna: Junk DNA Hypothesis benchmarks")
    add_run_options(group.addoption, "jd-")
    add_items_option(group.addoption, "jd-")
    group.addoption("--jd-encoder", default="minilm", metavar="SPEC",
                    help="model fine-tuned by the setting1, irreversible and lmc benchmarks (default: the embedded "
                         "MiniLM encoder; any spec --jd-model takes)")
    add_cache_option(group.addoption, "jd-")
    add_results_option(group.addoption, "jd-")
    add_threshold_option(group.addoption, "jd-")
    group.addoption("--jd-compare", type=Path, default=None, metavar="BASELINE",
                    help="compare this run's claim records with a baseline run record (or a directory of them) "
                         "and fail the session on a regression")
    add_compare_options(group.addoption, "jd-compare-")
    group.addoption(
        "--jd-conformance", type=type_error(_parse_conformance), default=None, metavar="NAMES",
        help="run the conformance kit on these compression methods (comma-separated registered names "
        "or module:Class): one test per rule per method, added to the run (see junkdna_core.testing)",
    )


def _parse_conformance(text: str) -> tuple[str, ...]:
    from junkdna_core.testing import parse_conformance_names

    return parse_conformance_names(text)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """With --jd-conformance, add the kit's items (first, so -k and deselection see them)."""
    specs = config.getoption("jd_conformance")
    if specs:
        from junkdna_core.testing import conformance_items

        items.extend(conformance_items(session, specs))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    """A CacheError (disk full, read-only cache) stops the run: every later test would hit the same storage."""
    outcome = yield
    if call.excinfo is not None:
        from junkdna_core.config.errors import CacheError

        if call.excinfo.errisinstance(CacheError):
            outcome.get_result().longrepr = f"CacheError: {call.excinfo.value}"
            item.session.shouldstop = f"junkdna: the artifact cache cannot be written: {call.excinfo.value}"


def _cap_threads(config: pytest.Config) -> None:
    """Give each xdist worker its share of the cores so workers do not oversubscribe them."""
    workers = int(config.workerinput.get("workercount", 1))
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = threads
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(threads))


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    config.stash[SESSION_KEY] = JunkdnaSession.from_config(config)
    if is_xdist_worker(config):
        _cap_threads(config)
    elif config.getoption("jd_compare") is not None:
        config.stash[BASELINE_KEY] = _load_baseline(config.getoption("jd_compare"))


def _load_baseline(path: Path) -> tuple[list[Any], tuple[str, ...]]:
    """The --jd-compare baseline's claim records, read before any test runs (bad input is a usage error)."""
    from junkdna_core.config.errors import ConfigError
    from junkdna_core.results.compare import load_baseline

    try:
        return load_baseline(path)
    except ConfigError as exc:
        raise pytest.UsageError(f"--jd-compare {path}: {exc}") from None


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """Controller side of xdist: collect the records a worker sent back, and where they were measured."""
    output = getattr(node, "workeroutput", {})
    jd = node.config.stash[SESSION_KEY]
    if output.get(RECORDS_KEY):
        jd.records.extend(json.loads(output[RECORDS_KEY]))
        jd.worker_environment = jd.worker_environment or json.loads(output[ENVIRONMENT_KEY])


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    jd = config.stash.get(SESSION_KEY, None)
    if jd is None:
        return
    if is_xdist_worker(config):
        if jd.records:  # the worker imported torch to measure them: its environment is the one to record
            from junkdna_core.results.records import environment

            config.workeroutput[RECORDS_KEY] = json.dumps(jd.records)
            config.workeroutput[ENVIRONMENT_KEY] = json.dumps(environment())
        return
    written = None
    if jd.records:
        from junkdna_core.results.records import write_run_record

        written = write_run_record(jd.results_dir, jd.records, options=_options_of(jd),
                                   measured_in=jd.worker_environment)
    if BASELINE_KEY in config.stash:
        _compare_with_baseline(session, written)


def _compare_with_baseline(session: pytest.Session, written: Path | None) -> None:
    """--jd-compare: compare the run record just written with the baseline; a regression fails the session."""
    from junkdna_core.results.compare import compare_entries
    from junkdna_core.results.leaderboard import load_run_record

    config = session.config
    baseline, baseline_runs = config.stash[BASELINE_KEY]
    run = load_run_record(written) if written is not None else None
    comparison = compare_entries(
        baseline, run.entries if run else (), tolerance=config.getoption("jd_compare_tolerance"),
        strict=config.getoption("jd_compare_strict"), baseline_runs=baseline_runs,
        current_runs=(run.run_id,) if run else (),
    )
    config.stash[COMPARISON_KEY] = comparison
    if comparison.failed and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Show the --jd-compare table after the test summary."""
    comparison = config.stash.get(COMPARISON_KEY, None)
    if comparison is None:
        return
    from junkdna_core.results.compare import render_comparison

    terminalreporter.write_sep("=", "junkdna compare", red=comparison.failed, green=not comparison.failed)
    terminalreporter.write(render_comparison(comparison))


def _options_of(jd: JunkdnaSession) -> dict[str, Any]:
    return {
        "model": jd.model,
        "encoder": jd.encoder,
        "methods": list(jd.methods) if jd.methods else None,
        "sparsities": list(jd.sparsities) if jd.sparsities else None,
        "budget": jd.budget,
        "items": jd.items,
        "seed": jd.seed,
        "device": jd.device,
        "dtype": jd.dtype,
        "thresholds": jd.thresholds,
    }


@pytest.fixture(scope="session")
def jd_session(pytestconfig: pytest.Config) -> JunkdnaSession:
    """The parsed --jd-* options of this run."""
    return pytestconfig.stash[SESSION_KEY]


@pytest.fixture(scope="session")
def jd_cache(jd_session: JunkdnaSession):
    """The artifact cache shared by every worker (content-addressed, locked)."""
    from junkdna_core.storage.cache import ArtifactCache

    return ArtifactCache(jd_session.cache_dir)


@pytest.fixture(scope="session")
def jd_model(jd_session: JunkdnaSession, jd_cache):
    """The dense model chosen by --jd-model, loaded once per worker."""
    from junkdna_core.models.loading import load_model

    return load_model(jd_session.model, device=jd_session.device, dtype=jd_session.dtype, cache=jd_cache)


@pytest.fixture
def jd_record(jd_session: JunkdnaSession, request: pytest.FixtureRequest):
    """Add one record (a JSON-able dict) to this run; the test's node id is attached."""

    def record(data: dict[str, Any]) -> None:
        entry = {"test": request.node.nodeid, **data}
        json.dumps(entry)  # fail here, in the test, if the record is not JSON-able
        jd_session.records.append(entry)

    return record


@pytest.fixture
def jd_claim(jd_record):
    """``jd_claim(result)``: record a ClaimResult, then fail the test with its message if it does not hold."""

    def check(result) -> None:
        jd_record(result.as_record())
        if not result.holds:
            pytest.fail(result.message(), pytrace=False)

    return check


@pytest.fixture(scope="session")
def jd_study(jd_session: JunkdnaSession, jd_model, jd_cache):
    """``jd_study(setting, method) -> Study``: a setting measured under one method's sweep, memoised.

    Compressed models and per-item scores come from the artifact cache: built
    once across workers and runs, so a warm rerun only reads JSON.
    """
    from junkdna_core.compress.registry import get_method
    from junkdna_core.data.settings import get_setting
    from junkdna_core.study.sweep import run_study

    studies: dict[tuple[str, str], Any] = {}

    def study(setting: str, method: str):
        if (setting, method) not in studies:
            cls = get_method(method)
            configs = [cls.at_level(level) for level in jd_session.method_levels(cls)]
            studies[setting, method] = run_study(
                jd_model, get_setting(setting), configs, cache=jd_cache, budget=jd_session.budget,
                items=jd_session.items, seed=jd_session.seed,
            )
        return studies[setting, method]

    return study


@pytest.fixture(scope="session")
def jd_encoder(jd_session: JunkdnaSession, jd_cache):
    """The model fine-tuned by the transfer benchmarks (--jd-encoder), loaded once per worker."""
    from junkdna_core.models.loading import load_model

    return load_model(jd_session.encoder, device=jd_session.device, dtype=jd_session.dtype, cache=jd_cache)


@pytest.fixture(scope="session")
def jd_transfer(jd_session: JunkdnaSession, jd_encoder, jd_cache):
    """Fine-tuning measurements of --jd-encoder, cached run by run (see :mod:`junkdna_core.study.transfer`).

    ``jd_transfer.study(setting, method)`` sweeps the method's sparsities (sparse vs
    dense transfer), ``jd_transfer.modes(setting, method)`` compares the four
    transfer modes at the budget's sparsity, ``jd_transfer.paths(setting, method)``
    interpolates dense and sparse solutions at the easiest and hardest level.
    """
    from junkdna_core.study.transfer import TransferBench

    return TransferBench(jd_encoder, jd_cache, jd_session.budget, jd_session.sparsities)


@pytest.fixture(scope="session")
def jd_compressed(jd_session: JunkdnaSession, jd_model, jd_cache):
    """``jd_compressed(method, level, **options) -> CompressedModel``, built once and cached."""
    from junkdna_core.compress.registry import get_method
    from junkdna_core.study.artifacts import calibration_batch, compressed_model

    def build(method: str, level: float, **options: Any):
        configured = get_method(method).at_level(level, **options)
        calibration = None
        if configured.needs_calibration:
            calibration = calibration_batch(jd_model.tokenizer, seed=jd_session.seed)
        return compressed_model(jd_model, configured, cache=jd_cache, calibration=calibration)

    return build


@pytest.fixture(scope="session")
def jd_thresholds(jd_session: JunkdnaSession) -> dict[str, float]:
    """Claim thresholds: the paper's, overridden by --jd-threshold CLAIM=VALUE."""
    return dict(jd_session.thresholds)
