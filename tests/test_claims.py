"""Claims on synthetic studies: a planted effect passes, its absence fails with a message naming the numbers."""

from __future__ import annotations

import numpy as np
import pytest
from planted import planted_study

from junkdna_core.config.errors import ConfigError
from junkdna_core.data.settings import SETTINGS, Level, Setting
from junkdna_core.results import claims
from junkdna_core.study.sweep import Curve, Study
from junkdna_core.study.transfer import InterpolationPath, ModeComparison

STRENGTHS = (0.0, 0.2, 0.4, 0.6, 0.8)
N_ITEMS = 400


def _setting(n_levels: int = 3, source: str = "rank") -> Setting:
    levels = tuple(Level(f"level-{i}", "arc_easy", float(i), "cloze", "acc", {}, chance=0.25) for i in range(n_levels))
    return Setting("settingX", "synthetic", "-", levels, source, "-", "-", 1)


def _study(rates: list[float], *, method: str = "magnitude", seed: int = 0, base: float = 0.8,
           setting: Setting | None = None) -> Study:
    """Item accuracies fall linearly with strength at each level's own rate (items shared across levels)."""
    return planted_study(setting or _setting(len(rates)), rates, strengths=STRENGTHS, items=N_ITEMS, base=base,
                         seed=seed, model="tiny", method=method)


def test_planted_monotonic_and_difficulty_effect_holds():
    study = _study([0.3, 0.6, 1.0])  # harder levels fall faster
    mono = claims.monotonic(study)
    assert mono.holds, mono.message()
    assert mono.statistic == pytest.approx(-1.0)
    diff = claims.difficulty(study)
    assert diff.holds, diff.message()
    assert diff.statistic == pytest.approx(1.0)
    assert diff.details["hard_minus_easy"]["high"] < 0
    # the record's interval and p-value are the named statistic's own: Spearman has no interval here
    assert (diff.low, diff.high) == (None, None) and diff.pvalue == diff.details["ordering_pvalue"]
    record = diff.as_record()
    assert record["provenance"]["items"]["arc_easy"]["ids"][0] == "i0"
    assert set(record["details"]["slopes"]) == {"level-0", "level-1", "level-2"}


def test_no_difficulty_effect_fails_with_a_message_naming_statistic_and_threshold():
    diff = claims.difficulty(_study([0.6, 0.6, 0.6]))
    assert not diff.holds
    text = diff.message()
    assert "does NOT hold" in text and "Spearman(difficulty, -slope)" in text and ">= 0.8" in text
    assert "does not exclude 0" in text


def test_reversed_difficulty_effect_says_the_hardest_level_drops_slower():
    diff = claims.difficulty(_study([1.0, 0.6, 0.3]))  # harder levels fall slower
    assert not diff.holds
    assert diff.statistic == pytest.approx(-1.0)
    assert diff.details["hard_minus_easy"]["low"] > 0
    assert "the hardest level drops slower" in diff.message()


def test_reversed_effect_fails_monotonic_when_one_level_does_not_fall():
    mono = claims.monotonic(_study([0.0, 0.5, 1.0]))
    assert not mono.holds
    assert mono.details["weakest_level"] == "level-0"
    assert "undefined" in (mono.reason or "")  # a constant drop has no rank correlation


def test_two_level_setting_uses_the_slope_difference():
    diff = claims.difficulty(_study([0.2, 1.0]))
    assert diff.statistic_name.startswith("slope(level-1) - slope(level-0)")
    assert diff.holds and diff.statistic < 0


def test_human_gap_difficulty_comes_from_the_dense_model():
    levels = tuple(Level(t, t, 0.0, "cloze", "acc", {}, chance=0.5) for t in ("piqa", "hellaswag", "openbookqa"))
    setting = Setting("setting5x", "s", "-", levels, "human_gap", "-", "-", 1)
    study = _study([0.2, 0.5, 0.9], setting=setting, base=0.8)
    difficulty = claims.difficulty_of(study)
    dense = {c.level.name: c.dense.mean for c in study.curves}
    assert difficulty["piqa"] == pytest.approx((0.95 - dense["piqa"]) / 0.95)


def test_quantization_gap_and_random_control():
    pruning = _study([0.3, 0.6, 1.0])
    flat = _study([0.0, 0.0, 0.0], method="rtn")
    q = claims.quantization(pruning, _study([0.3, 0.6, 1.0], method="rtn", seed=1))
    assert not q.holds  # quantization that behaves exactly like pruning shows no gap
    undefined = claims.random_control(pruning, flat)  # a "random" that does not drop at all: ratio undefined
    assert not undefined.holds and "undefined" in undefined.reason
    random = _study([0.9, 0.9, 0.9], method="random")
    control = claims.random_control(pruning, random)
    assert control.holds and control.statistic > 0


def test_dense_model_at_chance_makes_the_chance_corrected_claim_undefined_not_an_error():
    study = _study([0.3, 0.6, 1.0], base=0.25)
    result = claims.difficulty(study, drop="chance_corrected", claim="difficulty-chance-corrected")
    assert not result.holds
    assert "at or below chance" in result.reason
    assert "undefined" in result.message()


def test_too_few_compressed_points_is_a_clear_error():
    study = _study([0.3, 0.6, 1.0])
    short = Study(study.model, study.model_fingerprint, study.setting, study.method, study.configurations,
                  study.items, None,
                  tuple(Curve(c.level, c.dense, c.strengths[:3], c.compressed[:3]) for c in study.curves))
    with pytest.raises(ConfigError, match="at least 3 compressed levels"):
        claims.monotonic(short)


def test_every_evaluated_setting_has_levels_of_one_metric_kind():
    for setting in SETTINGS.values():
        assert len(setting.levels) >= 2
        assert len({lv.name for lv in setting.levels}) == len(setting.levels)


# --- fine-tuning claims: irreversible and lmc, on synthetic mode comparisons ---------------------

MODES = ("dense", "dense-frozen", "sparse", "sparse-to-dense")


def _fraction_setting() -> Setting:
    levels = tuple(Level(f"data-{f}", "sst2", 1 - f / 100, "classifier", "acc", {"train_fraction": f / 100},
                         chance=0.5) for f in (100, 50, 10))
    return Setting("settingF", "synthetic fine-tuning", "-", levels, "rank", "-", "-", 1, learning="fine-tuning")


def _comparison(gaps: list[float], *, seeds: int = 3, noise: float = 0.005) -> ModeComparison:
    """Dense modes at 0.85; both sparse modes ``gap`` below, per level (easiest first), with seed noise."""
    setting = _fraction_setting()
    rng = np.random.default_rng(0)
    accuracy = {}
    for level, gap in zip(setting.levels, gaps):
        accuracy[level.name] = {
            mode: tuple(float(0.85 - (gap if mode.startswith("sparse") else 0.0) + rng.normal(0, noise))
                        for _ in range(seeds))
            for mode in MODES
        }
    return ModeComparison(setting, "tiny", "f" * 16, {"method": "nm", "params": {"n": 4, "m": 8}}, 0.5,
                          tuple(range(seeds)), accuracy, {})


def test_irreversible_holds_when_sparse_modes_fall_behind_more_on_harder_levels():
    result = claims.irreversible(_comparison([0.02, 0.06, 0.12]))
    assert result.holds, result.message()
    assert result.statistic == pytest.approx(0.10, abs=0.02)
    assert result.low > 0 and set(result.details["gap"]) == {"data-100", "data-50", "data-10"}
    assert result.details["sparsity"] == 0.5  # from the configured level, also for N:M's (n, m) parameters


def test_irreversible_fails_naming_the_level_where_sparse_transfer_catches_up():
    result = claims.irreversible(_comparison([0.0, 0.06, 0.12]))
    assert not result.holds
    assert "data-100" in result.reason and "does not exclude 0" in result.reason


def test_irreversible_says_when_sparse_transfer_is_better_and_the_gap_shrinks():
    result = claims.irreversible(_comparison([0.06, 0.0, -0.06]))
    assert not result.holds
    assert "the gap's interval lies below 0 (reversed) at data-10" in result.reason
    assert "the gap's interval does not exclude 0 at data-50" in result.reason
    assert "gap(data-10) - gap(data-100) = -0.12" in result.reason and result.reason.endswith("(reversed)")


def test_irreversible_fails_when_the_gap_does_not_grow():
    result = claims.irreversible(_comparison([0.08, 0.08, 0.08]))
    assert not result.holds and "gap(data-10) - gap(data-100)" in result.reason


def test_irreversible_with_one_seed_is_undefined_not_a_pass():
    result = claims.irreversible(_comparison([0.02, 0.06, 0.12], seeds=1))
    assert not result.holds and result.reason.startswith("undefined")


def _paths(barriers: dict[str, list[float]]) -> list[InterpolationPath]:
    alphas = (0.0, 0.5, 1.0)
    return [InterpolationPath(level, seed, alphas, (0.4, 0.45 + b, 0.5), (0.8, 0.7, 0.75))
            for level, values in barriers.items() for seed, b in enumerate(values)]


def test_lmc_holds_when_the_barrier_is_higher_on_the_harder_level():
    paths = _paths({"data-100": [0.01, 0.02, 0.015], "data-10": [0.2, 0.25, 0.22]})
    result = claims.lmc(_comparison([0.02, 0.06, 0.12]), paths)
    assert result.holds, result.message()
    assert result.statistic == pytest.approx(0.2083, abs=1e-3)
    assert result.details["barrier"]["data-10"] == pytest.approx([0.2, 0.25, 0.22])


def test_lmc_fails_when_barriers_are_equal():
    paths = _paths({"data-100": [0.1, 0.2, 0.15], "data-10": [0.12, 0.18, 0.15]})
    result = claims.lmc(_comparison([0.02, 0.06, 0.12]), paths)
    assert not result.holds and "does not exclude 0" in result.reason


def test_lmc_without_any_barrier_says_the_difference_does_not_rise_above_0():
    paths = _paths({"data-100": [-0.05, -0.05, -0.05], "data-10": [-0.05, -0.05, -0.05]})  # loss dips: no barrier
    result = claims.lmc(_comparison([0.02, 0.06, 0.12]), paths)
    assert not result.holds and (result.low, result.high) == (0.0, 0.0)
    assert result.reason == "interval [0.000, 0.000] does not rise above 0"


def test_lmc_needs_two_levels():
    with pytest.raises(ConfigError, match="2 or more levels"):
        claims.lmc(_comparison([0.02, 0.06, 0.12]), _paths({"data-10": [0.2, 0.2]}))


def test_planted_study_needs_one_rate_per_level():
    with pytest.raises(ConfigError, match="has 3 levels; got 2 rates"):
        planted_study(_setting(3), [0.1, 0.2])
