"""Parametrization of the claim benchmarks: settings x method variants (x the models, added by the plugin).

Test ids read ``<setting>-<method>-<model>`` (``setting3-magnitude-smollm2``,
``setting2-nm[m:4]-smollm2`` for the variant ``nm[m=4]``), so ``pytest benchmarks
-k setting3`` selects one setting. The plugin parametrizes every test over the
models of ``--jd-model`` (``--jd-encoder`` for fine-tuning) and adds each model's
``xdist_group``. Every case carries its setting's marker and ``claim``, plus
``smoke`` or ``full`` by the budget whose default methods include it, and an
``xdist_group`` per method (per setting and method for fine-tuning, so its two
settings train on two workers; a run both need is built once, under the cache's
lock), so that ``--dist loadgroup`` keeps one (model, method) on one worker.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from junkdna_core.config.budgets import get_budget
from junkdna_core.data.settings import SETTINGS
from junkdna_core.pytest_plugin.ids import group_name, method_id
from junkdna_core.pytest_plugin.session import SESSION_KEY

SMOKE = get_budget("smoke")

# Settings measured on a frozen model (setting1 fine-tunes; it has its own benchmarks).
EVALUATED = tuple(s for s, setting in SETTINGS.items() if setting.learning == "none")
# The settings of the paper's Table 2 and Appendix E comparisons.
TABLE2 = ("setting2", "setting3")
# Fine-tuning settings: data fractions (setting 1) and the fine-tuned task spectrum (setting-5 style).
FINETUNED = tuple(s for s, setting in SETTINGS.items() if setting.learning == "fine-tuning")
# The random control compares these two variants, named as the benchmark asks for them.
CONTROL = ("magnitude", "random")


PERF = Path(__file__).resolve().parent / "perf"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Keep the pytest-benchmark kernels in benchmarks/perf out of claim runs: they are collected only when
    that directory (or a file in it) is named, as in ``pytest benchmarks/perf --benchmark-only``."""
    if collection_path.resolve() != PERF:
        return None
    named = [Path(config.invocation_params.dir, arg.split("::")[0]).resolve() for arg in config.args]
    return not any(path == PERF or PERF in path.parents for path in named)


def _case(setting: str, spec: str, label: str, base: str) -> pytest.param:
    budget = pytest.mark.smoke if base in SMOKE.methods else pytest.mark.full
    marks = [getattr(pytest.mark, setting), pytest.mark.claim, budget, pytest.mark.xdist_group(group_name(label))]
    return pytest.param((setting, spec), id=f"{setting}-{method_id(label)}", marks=marks)


def _finetune_case(claim: str, setting: str, spec: str, label: str, base: str) -> pytest.param:
    budget = pytest.mark.smoke if base in SMOKE.finetune_methods else pytest.mark.full
    marks = [getattr(pytest.mark, setting.split("-")[0]), pytest.mark.claim, pytest.mark.finetune, budget,
             pytest.mark.xdist_group(group_name("finetune", setting, label))]
    prefix = f"{claim}-" if claim else ""
    return pytest.param((setting, spec), id=f"{prefix}{setting}-{method_id(label)}", marks=marks)


def _chance_varies(setting: str) -> bool:
    chances = [level.chance for level in SETTINGS[setting].levels]
    return None not in chances and len(set(chances)) > 1


CASES = ("pruning_case", "chance_case", "quantization_case", "lowrank_case", "control_case")
FINETUNE_CASES = {
    "transfer_case": ("", ("setting1",)),
    "irreversible_case": ("irreversible", FINETUNED),
    "lmc_case": ("lmc", FINETUNED),
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    jd = metafunc.config.stash[SESSION_KEY]
    if any(name in metafunc.fixturenames for name in CASES):
        _parametrize_evaluated(metafunc, jd)
    for name, (claim, settings) in FINETUNE_CASES.items():
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, [_finetune_case(claim, s, v.spec, v.label, v.cls.name)
                                        for s in settings for v in jd.finetune_variants()])


def _parametrize_evaluated(metafunc: pytest.Metafunc, jd) -> None:
    variants = jd.method_variants()  # resolved once per process (imports torch: never in the xdist controller)
    by_family = {f: [v for v in variants if v.cls.family == f] for f in ("pruning", "quantization", "lowrank")}

    def cases(settings, family: str) -> list[pytest.param]:
        return [_case(s, v.spec, v.label, v.cls.name) for s in settings for v in by_family[family]]

    control = set(CONTROL) <= {v.label for v in variants}
    parametrized = {
        "pruning_case": cases(EVALUATED, "pruning"),
        "chance_case": cases([s for s in EVALUATED if _chance_varies(s)], "pruning"),
        "quantization_case": cases(TABLE2, "quantization"),
        "lowrank_case": cases(TABLE2, "lowrank"),
        "control_case": [_case(s, "-vs-".join(CONTROL), "-vs-".join(CONTROL), CONTROL[-1]) for s in EVALUATED]
        if control else [],
    }
    for name, params in parametrized.items():
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, params)
