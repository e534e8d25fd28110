"""The fixtures of the junkdna pytest plugin: the session, the cache, the model, studies, records.

Session-scoped fixtures run once per process (once per xdist worker); what they
build (compressed models, per-item scores, fine-tuning runs) comes from the
content-addressed cache, so it is built once across workers and runs.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from junkdna_core.pytest_plugin.session import SESSION_KEY, JunkdnaSession
from junkdna_core.results.schema import ClaimRecord, dump


@pytest.fixture(scope="session")
def jd_session(pytestconfig: pytest.Config) -> JunkdnaSession:
    """The parsed --jd-* options of this run."""
    return pytestconfig.stash[SESSION_KEY]


@pytest.fixture(scope="session")
def jd_cache(jd_session: JunkdnaSession):
    """The artifact cache shared by every worker (content-addressed, locked, capped by --jd-cache-max-gb)."""
    from junkdna_core.storage.cache import ArtifactCache

    return ArtifactCache(jd_session.cache_dir, max_bytes=jd_session.cache_max_bytes)


@pytest.fixture(scope="session")
def jd_device(jd_session: JunkdnaSession) -> str:
    """This process's devices, as a --jd-device string: under xdist, worker k's share (k mod the devices' count).

    The first is where the models' inputs go; any others hold the parts of a
    model too large for one (see :mod:`junkdna_core.models.devices`).
    """
    from junkdna_core.models.devices import devices_spec, worker_devices

    return devices_spec(worker_devices(jd_session.device, jd_session.worker, jd_session.workers))


def _load_param(request: pytest.FixtureRequest, jd_session: JunkdnaSession, device: str, jd_cache,
                specs: tuple[str, ...], labels: tuple[str, ...], option: str, *, training: bool = False):
    """The model of this test's parameter (one of ``specs``), named by its label, loaded on this process's devices
    (``training``: in the dtype of a model that is fine-tuned).

    pytest has torn down the previous parameter's instance by now (a session fixture
    keeps one instance per process); collecting first frees its memory before the next loads.
    """
    import gc

    from junkdna_core.models.loading import load_model

    spec = getattr(request, "param", None)
    if spec is None:  # requested dynamically (getfixturevalue), so the plugin could not parametrize it
        if len(specs) > 1:
            raise pytest.UsageError(f"{request.fixturename} stands for one of the {len(specs)} models of {option}; "
                                    "request it as a test argument so the test is parametrized over them")
        spec = specs[0]
    gc.collect()
    model = load_model(spec, device=device, cache=jd_cache, **jd_session.placement_options(training=training))
    model.name = dict(zip(specs, labels))[spec]  # distinct even where two specs have the same short name
    jd_session.opened.append(model)  # its placement goes into the run record's environment
    return model


@pytest.fixture(scope="session")
def jd_model(request: pytest.FixtureRequest, jd_session: JunkdnaSession, jd_device: str, jd_cache):
    """The dense model under test: a test is parametrized over the models of --jd-model (ids end with the
    model's label), and each is loaded once per worker, while its tests run."""
    return _load_param(request, jd_session, jd_device, jd_cache, jd_session.models, jd_session.model_labels,
                       "--jd-model")


@pytest.fixture
def jd_record(jd_session: JunkdnaSession, request: pytest.FixtureRequest):
    """Add one record (a JSON-able dict) to this run; the test's node id is attached."""

    def record(data: dict[str, Any]) -> None:
        entry = {"test": request.node.nodeid, **data}
        json.dumps(entry)  # fail here, in the test, if the record is not JSON-able
        jd_session.records.append(entry)

    return record


@pytest.fixture
def jd_claim(jd_session: JunkdnaSession, request: pytest.FixtureRequest):
    """``jd_claim(record, asserted=True)``: record a ClaimRecord; asserted, fail the test unless it holds.

    ``asserted=False`` records the claim for information only: the test does not
    fail on it, and the leaderboard and compare never judge its verdict.
    """

    def check(result: ClaimRecord, *, asserted: bool = True) -> None:
        result = replace(result, test=request.node.nodeid, asserted=asserted)
        result.check_intervals()
        jd_session.claims.append(dump(result))
        if asserted and not result.holds:
            pytest.fail(result.message(), pytrace=False)

    return check


@pytest.fixture(scope="session")
def jd_study(jd_session: JunkdnaSession, jd_model, jd_cache):
    """``jd_study(setting, method, **options) -> Study``: a setting measured under one method's sweep, memoised.

    ``method`` is a method spec as --jd-methods takes it (``magnitude``,
    ``nm[m=4]``); ``options`` set further parameters at every level
    (``jd_study("setting2", "random", seed=1)``); a ``seed`` parameter left unset
    gets --jd-seed. Compressed models and per-item scores come from the artifact
    cache: built once across workers and runs, so a warm rerun only reads JSON.
    A compression that failed once in the session fails again at once, with a short message.
    """
    from junkdna_core.compress.variants import resolve_variant
    from junkdna_core.data.settings import get_setting
    from junkdna_core.study.sweep import run_study

    studies: dict[tuple[Any, ...], Any] = {}

    def study(setting: str, method: str, **options: Any):
        variant = resolve_variant(method)
        key = (setting, variant.spec, *sorted(options.items()))
        if key not in studies:
            configs = [variant.at_level(level, run_seed=jd_session.seed, **options)
                       for level in jd_session.method_levels(variant.cls)]
            with jd_session.failures.remembering(jd_model.fingerprint, configs):
                studies[key] = run_study(
                    jd_model, get_setting(setting), configs, cache=jd_cache, items=jd_session.budget.items,
                    seed=jd_session.seed, label=variant.label, bos=jd_session.bos,
                    chat_template=jd_session.chat_template, metrics=jd_session.metrics,
                )
        return studies[key]

    return study


@pytest.fixture(scope="session")
def jd_encoder(request: pytest.FixtureRequest, jd_session: JunkdnaSession, jd_device: str, jd_cache):
    """The model fine-tuned by the transfer benchmarks: tests are parametrized over the models of --jd-encoder."""
    return _load_param(request, jd_session, jd_device, jd_cache, jd_session.encoders, jd_session.encoder_labels,
                       "--jd-encoder", training=True)


@pytest.fixture(scope="session")
def jd_transfer(jd_session: JunkdnaSession, jd_encoder, jd_cache):
    """Fine-tuning measurements of --jd-encoder, cached run by run (see :mod:`junkdna_core.study.transfer`).

    ``jd_transfer.study(setting, method)`` sweeps the method's sparsities (sparse vs
    dense transfer), ``jd_transfer.modes(setting, method)`` compares the four
    transfer modes at the budget's sparsity, ``jd_transfer.paths(setting, method)``
    interpolates dense and sparse solutions at the easiest and hardest level.
    ``method`` is a method spec; --jd-seed chooses the data splits and offsets the training seeds.
    """
    from junkdna_core.study.transfer import TransferBench

    return TransferBench(jd_encoder, jd_cache, jd_session.budget.finetune, jd_session.method_levels,
                         seed=jd_session.seed, failures=jd_session.failures, bos=jd_session.bos)


@pytest.fixture(scope="session")
def jd_compressed(jd_session: JunkdnaSession, jd_model, jd_cache):
    """``jd_compressed(method, level, **options) -> CompressedModel``, built once and cached (``method``: a spec)."""
    from junkdna_core.compress.variants import resolve_variant
    from junkdna_core.models.conventions import input_format
    from junkdna_core.study.artifacts import calibration_batch, compressed_model

    def build(method: str, level: float, **options: Any):
        configured = resolve_variant(method).at_level(level, run_seed=jd_session.seed, **options)
        calibration = None
        if configured.needs_calibration:
            inputs = input_format(jd_model.conventions, bos=jd_session.bos, chat_template=jd_session.chat_template)
            calibration = calibration_batch(jd_model.tokenizer, seed=jd_session.seed, inputs=inputs)
        with jd_session.failures.remembering(jd_model.fingerprint, [configured]):
            return compressed_model(jd_model, configured, cache=jd_cache, calibration=calibration)

    return build


@pytest.fixture(scope="session")
def jd_thresholds(jd_session: JunkdnaSession) -> dict[str, float]:
    """Claim thresholds: the paper's, overridden by --jd-threshold CLAIM=VALUE."""
    return dict(jd_session.thresholds)
