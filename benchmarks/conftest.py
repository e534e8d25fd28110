"""Parametrization of the claim benchmarks: settings x methods x the model under test.

Test ids read ``<setting>-<method>-<model>`` (``setting3-magnitude-smollm2``), so
``pytest benchmarks -k setting3`` selects one setting. Every case carries its
setting's marker and ``claim``, plus ``smoke`` or ``full`` by the budget whose
default methods include it, and an ``xdist_group`` per method (per setting and
method for fine-tuning, so its two settings train on two workers; a run both
need is built once, under the cache's lock) so that ``--dist loadgroup`` keeps
one method's studies on one worker.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from junkdna_core.config.budgets import get_budget
from junkdna_core.data.settings import SETTINGS
from junkdna_core.pytest_plugin.session import SESSION_KEY

SMOKE = get_budget("smoke")

# Settings measured on a frozen model (setting1 fine-tunes; it has its own benchmarks).
EVALUATED = tuple(s for s, setting in SETTINGS.items() if setting.learning == "none")
# The settings of the paper's Table 2 and Appendix E comparisons.
TABLE2 = ("setting2", "setting3")
# Fine-tuning settings: data fractions (setting 1) and the fine-tuned task spectrum (setting-5 style).
FINETUNED = tuple(s for s, setting in SETTINGS.items() if setting.learning == "fine-tuning")


PERF = Path(__file__).resolve().parent / "perf"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Keep the pytest-benchmark kernels in benchmarks/perf out of claim runs: they are collected only when
    that directory (or a file in it) is named, as in ``pytest benchmarks/perf --benchmark-only``."""
    if collection_path.resolve() != PERF:
        return None
    named = [Path(config.invocation_params.dir, arg.split("::")[0]).resolve() for arg in config.args]
    return not any(path == PERF or PERF in path.parents for path in named)


def _case(setting: str, method: str, model: str) -> pytest.param:
    budget = pytest.mark.smoke if method.split("-vs-")[-1] in SMOKE.methods else pytest.mark.full
    marks = [getattr(pytest.mark, setting), pytest.mark.claim, budget, pytest.mark.xdist_group(method)]
    return pytest.param((setting, method), id=f"{setting}-{method}-{model}", marks=marks)


def _finetune_case(claim: str, setting: str, method: str, model: str) -> pytest.param:
    budget = pytest.mark.smoke if method in SMOKE.finetune_methods else pytest.mark.full
    marks = [getattr(pytest.mark, setting.split("-")[0]), pytest.mark.claim, pytest.mark.finetune, budget,
             pytest.mark.xdist_group(f"finetune-{setting}-{method}")]
    prefix = f"{claim}-" if claim else ""
    return pytest.param((setting, method), id=f"{prefix}{setting}-{method}-{model}", marks=marks)


def _chance_varies(setting: str) -> bool:
    chances = [level.chance for level in SETTINGS[setting].levels]
    return None not in chances and len(set(chances)) > 1


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    from junkdna_core.compress.registry import get_method  # imports torch: not in the xdist controller

    jd = metafunc.config.stash[SESSION_KEY]
    family = {name: get_method(name).family for name in jd.method_names()}
    methods = {f: [m for m, fam in family.items() if fam == f] for f in ("pruning", "quantization", "lowrank")}
    cases = {
        "pruning_case": [(s, m) for s in EVALUATED for m in methods["pruning"]],
        "chance_case": [(s, m) for s in EVALUATED if _chance_varies(s) for m in methods["pruning"]],
        "quantization_case": [(s, m) for s in TABLE2 for m in methods["quantization"]],
        "lowrank_case": [(s, m) for s in TABLE2 for m in methods["lowrank"]],
        "control_case": [(s, "magnitude-vs-random") for s in EVALUATED] if {"magnitude", "random"} <= set(family)
        else [],
    }
    for name, pairs in cases.items():
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, [_case(s, m, jd.model_label) for s, m in pairs])
    finetune_methods = jd.finetune_method_names()
    finetune_cases = {
        "transfer_case": ("", ("setting1",)),
        "irreversible_case": ("irreversible", FINETUNED),
        "lmc_case": ("lmc", FINETUNED),
    }
    for name, (claim, settings) in finetune_cases.items():
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, [_finetune_case(claim, s, m, jd.encoder_label)
                                        for s in settings for m in finetune_methods])
