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

    ``options`` configure the method at every level (``jd_study("setting2", "random", seed=1)``).
    Compressed models and per-item scores come from the artifact cache: built
    once across workers and runs, so a warm rerun only reads JSON.
    """
    from junkdna_core.compress.registry import get_method
    from junkdna_core.data.settings import get_setting
    from junkdna_core.study.sweep import run_study

    studies: dict[tuple[Any, ...], Any] = {}

    def study(setting: str, method: str, **options: Any):
        key = (setting, method, *sorted(options.items()))
        if key not in studies:
            cls = get_method(method)
            configs = [cls.at_level(level, **options) for level in jd_session.method_levels(cls)]
            studies[key] = run_study(
                jd_model, get_setting(setting), configs, cache=jd_cache, items=jd_session.budget.items,
                seed=jd_session.seed,
            )
        return studies[key]

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

    return TransferBench(jd_encoder, jd_cache, jd_session.budget.finetune, jd_session.method_levels)


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
