"""The conformance kit: every built-in method passes it, and broken methods are reported by rule."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import pytest
import torch

from junkdna_core.compress.base import CompressionMethod, Family, LayerResult, LayerStats, MethodParams
from junkdna_core.compress.magnitude import Magnitude, MagnitudeParams
from junkdna_core.compress.registry import available_methods
from junkdna_core.config.errors import ConfigError
from junkdna_core.testing import (
    RULES,
    ConformanceError,
    assert_conforms,
    check_method,
    conformance_cases,
    sparsity_problem,
)

torch.set_num_threads(1)

BUILTINS = {name: cls for name, cls in available_methods().items() if cls.__module__.startswith("junkdna_core.")}


class WrongSparsity(Magnitude):
    """Prunes every weight at or below the k-th smallest |W|: ties at the threshold overshoot."""

    name: ClassVar[str] = "wrong-sparsity"

    def compress(
        self, weights: Mapping[str, torch.Tensor], stats: Mapping[str, LayerStats] | None
    ) -> dict[str, LayerResult]:
        results = {}
        for name, w in weights.items():
            scores = w.detach().abs().float()
            k = round(self.params.sparsity * w.numel())
            mask = torch.ones_like(scores, dtype=torch.bool)
            if k:
                mask = scores > scores.reshape(-1).kthvalue(k).values
            results[name] = LayerResult(mask=mask)
        return results


class RaisesInCompress(Magnitude):
    """Configures fine, then fails on every compress call."""

    name: ClassVar[str] = "raises-in-compress"

    def compress(
        self, weights: Mapping[str, torch.Tensor], stats: Mapping[str, LayerStats] | None
    ) -> dict[str, LayerResult]:
        raise RuntimeError("kernel exploded")


class EmptyVersion(Magnitude):
    """Correct masks, but an empty version string (no cache key can tell its results apart)."""

    name: ClassVar[str] = "empty-version"
    version: ClassVar[str] = ""


class NoVersion(CompressionMethod):
    """Correct masks, but no version attribute at all."""

    name: ClassVar[str] = "no-version"
    params_type: ClassVar[type[MethodParams]] = MagnitudeParams
    family: ClassVar[Family] = "pruning"
    level_name: ClassVar[str] = "sparsity"

    def compress(
        self, weights: Mapping[str, torch.Tensor], stats: Mapping[str, LayerStats] | None
    ) -> dict[str, LayerResult]:
        return Magnitude(self.params).compress(weights, stats)


def failing_rules(method_cls: type) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for problem in check_method(method_cls, levels=(0.0, 0.3, 0.5, 0.9)):
        found.setdefault(problem.rule, []).append(str(problem))
    return found


def test_builtins_are_all_checked():
    assert {"magnitude", "random", "nm", "wanda", "sparsegpt", "rtn", "gptq", "lowrank"} <= set(BUILTINS)


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_every_builtin_method_passes_the_kit(name):
    problems = check_method(BUILTINS[name])
    assert problems == [], "\n".join(map(str, problems))


def test_magnitude_with_global_scope_counts_per_group():
    """Global magnitude is exact over all layers together, not per layer: the group unit accepts it."""
    weights = {"a": torch.full((2, 8), 3.0), "b": torch.full((2, 8), 0.5)}
    masks = {n: r.mask for n, r in Magnitude.at_level(0.5, scope="global").compress(weights, None).items()}
    assert sparsity_problem(masks, 0.5) is None
    problem = sparsity_problem(masks, 0.5, units=("layer",))
    assert problem is not None and "a 0/16, b 16/16" in problem and "per layer a 8, b 8" in problem


def test_sparsity_rule_counts_exactly_per_unit():
    rows_of_three = torch.tensor([[False, False, False, True, True, True, True, True, True, True]] * 2)
    # 0.3 of 10 per row is 3 -> exact per row, per layer (6 of 20) and per group
    assert sparsity_problem({"l": rows_of_three}, 0.3, units=("row",)) is None
    uneven = rows_of_three.clone()
    uneven[0, 3] = False  # rows prune 4 and 3: 7 of 20 is neither round(0.3*20)=6 nor 3 per row
    assert "l 7/20" in sparsity_problem({"l": uneven}, 0.3)
    balanced = rows_of_three.clone()
    balanced[0, 3], balanced[1, 2] = False, True  # 4 and 2 per row, 6 of 20 in the layer
    assert sparsity_problem({"l": balanced}, 0.3) is None
    assert sparsity_problem({"l": balanced}, 0.3, units=("row",)) is not None


def test_wrong_sparsity_with_ties_is_reported():
    rules = failing_rules(WrongSparsity)
    assert set(rules) == {"exact-sparsity"}, rules
    message = rules["exact-sparsity"][0]
    assert message.startswith("wrong-sparsity (test_conformance:WrongSparsity) breaks rule 'exact-sparsity'")
    assert "at sparsity 0.3" in message and "ties included" in message


def test_raising_compress_is_reported_under_every_rule_that_compresses():
    rules = failing_rules(RaisesInCompress)
    assert set(rules) == {"results", "inputs-unchanged", "exact-sparsity", "deterministic", "whole-model"}
    for messages in rules.values():
        assert all("raises-in-compress" in m and "RuntimeError: kernel exploded" in m for m in messages)


@pytest.mark.parametrize(
    ("method_cls", "rules_broken"),
    [
        (EmptyVersion, {"attributes"}),
        (NoVersion, {"attributes", "levels", "whole-model"}),  # describe() needs the version too
    ],
    ids=["empty", "missing"],
)
def test_missing_version_is_reported(method_cls, rules_broken):
    rules = failing_rules(method_cls)
    assert set(rules) == rules_broken, rules
    (message,) = rules["attributes"]
    assert message.startswith(f"{method_cls.name} (test_conformance:{method_cls.__name__}) breaks rule 'attributes'")
    assert "version must be a non-empty string" in message


def test_assert_conforms_lists_every_problem():
    assert_conforms(Magnitude, levels=(0.0, 0.5))
    with pytest.raises(ConformanceError) as info:
        assert_conforms(RaisesInCompress, levels=(0.5,))
    assert len(info.value.problems) == 5
    lines = str(info.value).splitlines()
    assert len(lines) == 5 and all(line.startswith("raises-in-compress (") for line in lines)


def test_not_a_method_class_is_one_clear_problem():
    (problem,) = check_method(int, levels=(0.5,))
    assert problem.rule == "attributes" and "is not a subclass of" in problem.message


def test_bad_levels_argument_is_config_error():
    for levels in ((), "0.5", (0.5, float("nan"))):
        with pytest.raises(ConfigError, match="levels must be a non-empty sequence"):
            check_method(Magnitude, levels=levels)


def test_cases_skip_rules_of_another_family_and_raise_on_broken_ones():
    cases = dict(conformance_cases(WrongSparsity, levels=(0.5,)))
    assert list(cases) == list(RULES)
    cases["attributes"]()
    with pytest.raises(pytest.skip.Exception, match="exact-sparsity"):
        cases["lossier-when-stronger"]()
    with pytest.raises(ConformanceError, match="breaks rule 'exact-sparsity'"):
        cases["exact-sparsity"]()


def test_option_runs_the_kit_on_a_builtin(pytester: pytest.Pytester):
    result = pytester.runpytest("--jd-conformance", "magnitude", "-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=len(RULES) - 1, skipped=1)
    result.stdout.fnmatch_lines(["*jd-conformance::magnitude::exact-sparsity PASSED*"])


def test_option_fails_clearly_on_a_broken_method(pytester: pytest.Pytester):
    spec = "test_conformance:WrongSparsity"
    result = pytester.runpytest("--jd-conformance", spec, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=len(RULES) - 2, failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "collected 9 items",
            (
                "wrong-sparsity (test_conformance:WrongSparsity) breaks rule 'exact-sparsity': at sparsity 0.1 *"
                "(also wrong at sparsity 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)"
            ),
            f"FAILED jd-conformance::{spec}::exact-sparsity - *",
        ]
    )


def test_option_rejects_an_unknown_method_before_running(pytester: pytest.Pytester):
    result = pytester.runpytest("--jd-conformance", "magnitdue")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown method 'magnitdue'. Did you mean magnitude*Known methods: *magnitude*"])
