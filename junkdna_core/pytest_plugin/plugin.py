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
from pathlib import Path
from typing import Any

import pytest

from junkdna_core.config.errors import CacheError, CompressionError, ConfigError
from junkdna_core.models.specs import DEFAULT_ENCODER
from junkdna_core.options import (
    add_cache_limit_option,
    add_cache_option,
    add_compare_options,
    add_input_options,
    add_items_option,
    add_metric_option,
    add_random_seeds_option,
    add_results_option,
    add_run_options,
    add_threshold_option,
    parse_model_specs,
    type_error,
)
from junkdna_core.pytest_plugin import fixtures
from junkdna_core.pytest_plugin.reporting import GroupOrder, RunReporter
from junkdna_core.pytest_plugin.session import SESSION_KEY, JunkdnaSession, is_xdist_worker
from junkdna_core.pytest_plugin.timing import group_of

MARKERS = {
    "smoke": "part of the smoke budget (minutes on 2 CPU cores)",
    "full": "needs the full budget (a real study)",
    "claim": "asserts a claim of the Junk DNA Hypothesis",
    "finetune": "fine-tunes the encoder (setting1, irreversible, lmc)",
    "gpu": "needs a CUDA device, skipped without one (run the CUDA checks with pytest tests -m gpu)",
    **{f"setting{i}": f"difficulty setting {i} of the paper (Table 1)" for i in range(1, 7)},
}
RECORDS_KEY = "junkdna_records"
CLAIMS_KEY = "junkdna_claims"
ENVIRONMENT_KEY = "junkdna_environment"
BASELINE_KEY = pytest.StashKey[tuple[list[Any], tuple[str, ...]]]()
COMPARISON_KEY = pytest.StashKey[Any]()
RECORD_ERROR_KEY = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("junkdna", "junkdna: Junk DNA Hypothesis benchmarks")
    add_run_options(group.addoption, "jd-")
    add_items_option(group.addoption, "jd-")
    add_input_options(group.addoption, "jd-")
    add_metric_option(group.addoption, "jd-")
    add_random_seeds_option(group.addoption, "jd-")
    group.addoption("--jd-encoder", type=type_error(parse_model_specs), default=(DEFAULT_ENCODER,), metavar="SPECS",
                    help="comma-separated models fine-tuned by the setting1, irreversible and lmc benchmarks "
                         "(default: the embedded MiniLM encoder; any spec --jd-model takes)")
    add_cache_option(group.addoption, "jd-")
    add_cache_limit_option(group.addoption, "jd-cache-")
    add_results_option(group.addoption, "jd-")
    add_threshold_option(group.addoption, "jd-")
    group.addoption("--jd-compare", type=Path, default=None, metavar="BASELINE",
                    help="compare this run's claim records with a baseline run record (or a directory of them) "
                         "and fail the session on a regression")
    add_compare_options(group.addoption, "jd-compare-")
    group.addoption("--jd-store-durations", action="store_true", default=False,
                    help="write this run's test durations into the jd_durations file of its budget (merged with "
                         "what the file holds), for the group order of first runs and for pytest-split")
    parser.addini("jd_durations", default="",
                  help="durations file for the group order of a first run (nothing stored for its budget yet): a "
                       "pytest-split durations file, {budget} replaced by the budget's name, relative to the ini "
                       "file (this repository's: benchmarks/durations/{budget}.json)")
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
    """Tag the report with the test's xdist group; shorten errors the session has already explained.

    A CacheError (disk full, read-only cache) stops the run: every later test would
    hit the same storage. A CompressionError (a MethodError among them) of a
    session's build is tagged so the end-of-run summary names each failed
    compression once, with the tests that needed it; one that failed earlier in
    the session is shown as its one-line message.
    """
    outcome = yield
    report = outcome.get_result()
    report.jd_group = group_of(item)
    if call.excinfo is None:
        return
    if call.excinfo.errisinstance(CacheError):
        report.longrepr = f"CacheError: {call.excinfo.value}"
        item.session.shouldstop = f"junkdna: the artifact cache cannot be written: {call.excinfo.value}"
    elif call.excinfo.errisinstance(CompressionError) and call.excinfo.value.key is not None:
        error = call.excinfo.value
        report.jd_compression = {"key": error.key, "message": f"{type(error).__name__}: {error}",
                                 "earlier": error.earlier}
        if error.earlier:
            report.longrepr = f"{type(error).__name__}: {error}"


@pytest.hookimpl(trylast=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize every test that uses ``jd_model`` (``jd_encoder``) over the models of --jd-model (--jd-encoder).

    Indirect and session-scoped: the test id ends with the model's label
    (``setting2-magnitude-smollm2``), each model is an ``xdist_group`` of its own
    (joined with the test's other groups, so a worker loads only the models its
    groups need), and pytest runs one model's tests together, one model alive at a time.
    """
    jd = metafunc.config.stash[SESSION_KEY]
    chosen = {name.strip() for m in metafunc.definition.iter_markers("parametrize") if m.args
              for name in (m.args[0].split(",") if isinstance(m.args[0], str) else m.args[0])}
    for name, specs, labels in (("jd_model", jd.models, jd.model_labels),
                                ("jd_encoder", jd.encoders, jd.encoder_labels)):
        if name in metafunc.fixturenames and name not in chosen:
            metafunc.parametrize(name, [pytest.param(spec, id=label, marks=pytest.mark.xdist_group(label))
                                        for spec, label in zip(specs, labels)], indirect=True, scope="session")


def _cap_threads(config: pytest.Config) -> None:
    """Give each xdist worker its share of the cores so workers do not oversubscribe them."""
    workers = int(config.workerinput.get("workercount", 1))
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = threads
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(threads))


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from junkdna_core.pytest_plugin import hookspec

    pluginmanager.add_hookspecs(hookspec)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(fixtures, "junkdna-fixtures")
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    jd = JunkdnaSession.from_config(config)
    config.stash[SESSION_KEY] = jd
    if is_xdist_worker(config):
        _cap_threads(config)
        if config.getvalue("loadgroup"):
            config.pluginmanager.register(GroupOrder.from_workerinput(config.workerinput), "junkdna-group-order")
        return
    if _resolves_methods_here(config, jd):
        try:
            jd.method_variants()
        except ConfigError as exc:
            raise pytest.UsageError(f"--jd-methods: {exc}") from None
    if config.getoption("jd_compare") is not None:
        config.stash[BASELINE_KEY] = _load_baseline(config.getoption("jd_compare"))
    config.pluginmanager.register(RunReporter(config, jd.budget.name), "junkdna-reporter")
    if _is_xdist_controller(config) and config.getoption("dist") == "loadgroup" and not _reorder_chosen(config):
        config.option.loadscopereorder = False  # xdist would reorder groups by size; GroupOrder orders by time


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadgroup``: xdist's scheduler, giving a worker its next group only on its last pending test
    (:mod:`junkdna_core.pytest_plugin.scheduling`); other modes keep xdist's."""
    if config.getoption("dist") != "loadgroup":
        return None
    # imported here: this hook runs only in an xdist controller, so the plugin imports without xdist
    from junkdna_core.pytest_plugin.scheduling import LastTestGroupScheduling

    return LastTestGroupScheduling(config, log)


def _is_xdist_controller(config: pytest.Config) -> bool:
    """True in the process that hands tests to xdist workers (it never collects or runs them)."""
    return not is_xdist_worker(config) and getattr(config.option, "dist", "no") != "no" \
        and not config.getoption("collectonly")


def _resolves_methods_here(config: pytest.Config, jd: JunkdnaSession) -> bool:
    """Whether this process checks --jd-methods against the methods' parameters before any test runs.

    Every process that runs tests does. The xdist controller does only when a spec
    has options or names a module:Class (the check imports the methods, hence torch);
    plain names it has already checked against the package metadata.
    """
    if not jd.methods:
        return False
    return not _is_xdist_controller(config) or any(spec.options or ":" in spec.name for spec in jd.methods)


def _reorder_chosen(config: pytest.Config) -> bool:
    """Whether the user chose xdist's --loadscope-reorder or --no-loadscope-reorder (on the command line or addopts)."""
    given = [*config.invocation_params.args, *os.environ.get("PYTEST_ADDOPTS", "").split(),
             *config.getini("addopts")]
    return any(str(arg) in ("--loadscope-reorder", "--no-loadscope-reorder") for arg in given)


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
    if output.get(RECORDS_KEY) or output.get(CLAIMS_KEY):
        jd.claims.extend(json.loads(output.get(CLAIMS_KEY, "[]")))
        jd.records.extend(json.loads(output.get(RECORDS_KEY, "[]")))
        measured_in = json.loads(output[ENVIRONMENT_KEY])
        jd.worker_models.extend(measured_in.pop("models"))
        jd.worker_environment = jd.worker_environment or measured_in


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    jd = config.stash.get(SESSION_KEY, None)
    if jd is None:
        return
    if is_xdist_worker(config):
        if jd.records or jd.claims:  # the worker imported torch to measure them: its environment is the one to record
            from junkdna_core.results.records import environment

            config.workeroutput[CLAIMS_KEY] = json.dumps(jd.claims)
            config.workeroutput[RECORDS_KEY] = json.dumps(jd.records)
            config.workeroutput[ENVIRONMENT_KEY] = json.dumps({**environment(), "models": jd.model_placements()})
        return
    written = None
    reporter = config.pluginmanager.get_plugin("junkdna-reporter")
    failed = reporter.failed_compressions() if reporter is not None else []
    if jd.records or jd.claims or failed:
        written = _write_record(session, jd, failed)
    if BASELINE_KEY in config.stash:
        _compare_with_baseline(session, written)


def _write_record(session: pytest.Session, jd: JunkdnaSession, failed: list[dict[str, Any]]) -> Path | None:
    """Write the run record (controller only), with the compressions that failed (``failed``), letting plugins
    extend it through pytest_junkdna_update_record.

    A plugin that changes anything but ``record["extra"]`` fails the session with
    a usage error naming the key; the record is written without its changes.
    """
    from junkdna_core.results.records import RejectedUpdate, environment, write_run_record

    config = session.config
    # Where every model was placed and why, per worker (the measuring processes' environment).
    measured_in = {**(jd.worker_environment or environment()), "models": sorted(
        jd.worker_models + jd.model_placements(), key=lambda m: (m["worker"], m["name"]))}

    def update(body: dict[str, Any]) -> None:
        config.hook.pytest_junkdna_update_record(config=config, record=body)

    try:
        return write_run_record(jd.results_dir, jd.claims, jd.records, options=jd.options(),
                                measured_in=measured_in, update=update, failed_compressions=failed)
    except RejectedUpdate as exc:
        config.stash[RECORD_ERROR_KEY] = str(exc)
        session.exitstatus = pytest.ExitCode.USAGE_ERROR
        return exc.path


def _compare_with_baseline(session: pytest.Session, written: Path | None) -> None:
    """--jd-compare: compare the run record just written with the baseline; a regression fails the session."""
    from junkdna_core.results.compare import compare_entries
    from junkdna_core.results.records import newest_entries, read_run_record

    config = session.config
    baseline, baseline_runs = config.stash[BASELINE_KEY]
    run = read_run_record(written) if written is not None else None
    comparison = compare_entries(
        baseline, newest_entries([run]) if run else (), tolerance=config.getoption("jd_compare_tolerance"),
        strict=config.getoption("jd_compare_strict"), baseline_runs=baseline_runs,
        current_runs=(run.run_id,) if run else (),
    )
    config.stash[COMPARISON_KEY] = comparison
    if comparison.failed and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Show a rejected run-record change and the --jd-compare table after the test summary."""
    problem = config.stash.get(RECORD_ERROR_KEY, None)
    if problem is not None:
        terminalreporter.write_sep("=", "junkdna run record", red=True)
        terminalreporter.write_line(f"junkdna: error: {problem}")
    comparison = config.stash.get(COMPARISON_KEY, None)
    if comparison is None:
        return
    from junkdna_core.results.compare import render_comparison

    terminalreporter.write_sep("=", "junkdna compare", red=comparison.failed, green=not comparison.failed)
    terminalreporter.write(render_comparison(comparison))
