"""Claims on synthetic studies: a planted effect passes, its absence fails with a message naming the numbers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from planted import PLANTED_PARAMETERS, planted_study

from junkdna_core.config.errors import ConfigError
from junkdna_core.data.settings import SETTINGS, Level, Setting
from junkdna_core.results import claims
from junkdna_core.results.schema import ClaimRecord, dump, load
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
    assert mono.verdict == "holds", mono.message()
    assert mono.headline.statistic == pytest.approx(-1.0)
    assert mono.headline.interval.method == "bootstrap over items"
    diff = claims.difficulty(study)
    assert diff.holds, diff.message()
    ordering, gap = diff.conditions
    assert (ordering.name, gap.name) == (claims.ORDERING, claims.SLOPE_GAP)
    assert ordering.statistic == pytest.approx(1.0) and ordering.pvalue == diff.details.ordering_pvalue
    assert gap.decided_by == "interval" and gap.interval.high < 0 == gap.threshold
    assert diff.details.hard_minus_easy.high == gap.interval.high
    body = dump(diff)
    assert body["provenance"]["items"]["arc_easy"]["ids"][0] == "i0"
    assert set(body["details"]["slopes"]) == {"level-0", "level-1", "level-2"} and body["details"]["kind"] == "slopes"
    assert load(ClaimRecord, body) == diff  # the record reads back as it was written


def test_every_interval_records_its_resamples_and_the_study_seed():
    study = _study([0.3, 0.6, 1.0], seed=7)
    randoms = [_study([0.9, 0.9, 0.9], method="random", seed=7) for _ in range(2)]
    records = [claims.monotonic(study), claims.difficulty(study), claims.random_control(study, randoms),
               claims.quantization(study, _study([0.3, 0.3, 0.3], method="rtn", seed=7))]
    for record in records:
        record.check_intervals()
        for condition in record.conditions:
            assert (condition.interval.resamples, condition.interval.seed) == (claims.BOOTSTRAP_RESAMPLES, 7)
        assert record.provenance.seed == 7 and record.provenance.model_parameters == PLANTED_PARAMETERS
    assert claims.monotonic(study).headline.interval == claims.monotonic(study).headline.interval  # same seed
    other = _study([0.3, 0.6, 1.0], seed=8)
    assert claims.difficulty(other).conditions[1].interval.seed == 8


def test_no_difficulty_effect_fails_with_a_message_naming_statistic_and_threshold():
    diff = claims.difficulty(_study([0.6, 0.6, 0.6]))
    assert diff.verdict == "fails"
    text = diff.message()
    assert text.startswith("difficulty does NOT hold") and "Spearman(difficulty, -slope)" in text and ">= 0.8" in text
    assert "does not exclude 0" in text


def test_reversed_difficulty_effect_says_the_hardest_level_drops_slower():
    diff = claims.difficulty(_study([1.0, 0.6, 0.3]))  # harder levels fall slower
    assert diff.verdict == "fails"
    assert diff.headline.statistic == pytest.approx(-1.0)
    assert diff.details.hard_minus_easy.low > 0
    assert "the hardest level drops slower" in diff.message()


def test_a_constant_curve_leaves_monotonic_undefined_with_its_reason_and_no_number():
    mono = claims.monotonic(_study([0.0, 1.0, 1.0]))  # level-0 does not fall: its Spearman is undefined
    assert mono.verdict == "undefined" and not mono.holds
    assert mono.headline.statistic is None and mono.headline.interval is None
    assert "level-0" in mono.reason and "constant" in mono.reason
    assert mono.message().startswith("undefined: monotonic for settingX-magnitude-tiny")
    assert mono.details.spearman["level-0"] is None  # the measured curves are kept


def test_a_resample_at_a_dense_score_of_0_leaves_monotonic_undefined_and_keeps_the_measured_curve():
    study = planted_study(_setting(3), [0.3, 0.6, 1.0], strengths=STRENGTHS, items=12, base=(0.8, 0.8, 0.1), seed=0)
    hardest = study.curves[-1]
    assert 0 < sum(hardest.dense.scores) <= 3  # measured on the whole sample, so drops exist; some resample has 0
    mono = claims.monotonic(study)
    assert mono.verdict == "undefined" and mono.headline.statistic is None
    assert "in a bootstrap resample" in mono.reason and hardest.level.name in mono.reason
    assert mono.details.strengths == pytest.approx(STRENGTHS[1:])
    assert set(mono.details.drops) == {c.level.name for c in study.curves}  # the curve the leaderboard plots and ranks


def test_a_level_that_fails_decides_even_when_another_is_undefined():
    mono = claims.monotonic(_study([0.0, -0.2, 1.0]))  # level-1 rises: fails whatever level-0 says
    assert mono.verdict == "fails"
    assert mono.headline.statistic == pytest.approx(1.0) and "undefined at level-0" in mono.reason


def test_two_level_setting_uses_the_slope_difference():
    diff = claims.difficulty(_study([0.2, 1.0]))
    assert [c.name for c in diff.conditions] == [claims.SLOPE_GAP]
    assert diff.holds and diff.headline.statistic < 0


def test_human_gap_difficulty_comes_from_the_dense_model():
    levels = tuple(Level(t, t, 0.0, "cloze", "acc", {}, chance=0.5) for t in ("piqa", "hellaswag", "openbookqa"))
    setting = Setting("setting5x", "s", "-", levels, "human_gap", "-", "-", 1)
    study = _study([0.2, 0.5, 0.9], setting=setting, base=0.8)
    difficulty = claims.difficulty_of(study)
    dense = {c.level.name: c.dense.mean for c in study.curves}
    assert difficulty["piqa"] == pytest.approx((0.95 - dense["piqa"]) / 0.95)


def test_quantization_gap():
    pruning = _study([0.3, 0.6, 1.0])
    q = claims.quantization(pruning, _study([0.3, 0.6, 1.0], method="rtn"))
    assert q.verdict == "fails"  # quantization that behaves exactly like pruning shows no gap
    assert q.headline.statistic == pytest.approx(0.0) and q.details.notes == ()  # no note not measured on the model
    flat = _study([0.0, 0.0, 0.0], method="rtn")
    undefined = claims.quantization(pruning, flat)
    assert undefined.verdict == "undefined" and "rtn" in undefined.reason


def test_dense_model_at_chance_makes_the_chance_corrected_claim_undefined_not_an_error():
    study = _study([0.3, 0.6, 1.0], base=0.25)
    result = claims.difficulty(study, drop="chance_corrected", claim="difficulty-chance-corrected")
    assert result.verdict == "undefined"
    assert "at or below chance" in result.reason
    assert all(c.statistic is None for c in result.conditions)
    assert result.message().startswith("undefined: difficulty-chance-corrected")


# --- the random control at matched damage ----------------------------------------------------------


def _magnitude(rates=(0.3, 0.6, 1.0), **kw) -> Study:
    return planted_study(_setting(3), rates, strengths=STRENGTHS, items=4000, model="tiny", seed=3, **kw)


def _random(rate: float, seed: int = 0, strengths=STRENGTHS, rates=None, **kw) -> Study:
    return planted_study(_setting(3), rates or [rate] * 3, strengths=strengths, items=4000, model="tiny",
                         method="random", params={"seed": seed}, seed=3, **kw)


def _matched_damage_answer(magnitude: Study, rates=(0.3, 0.6, 1.0)) -> float:
    """The statistic of linear curves: at easy drop d magnitude's hard drop is (r_hard / r_easy) d, random's is d."""
    reach = -rates[0] * 0.6  # the hardest level at 0.8 has lost > 90% of its above-chance score: 0.6 is the last
    targets = reach * np.arange(1, claims.MATCHED_TARGETS + 1) / claims.MATCHED_TARGETS
    return float(np.mean(targets * (1 - rates[2] / rates[0])))


def test_matched_damage_has_the_known_answer_and_ignores_how_fast_random_damages():
    magnitude = _magnitude()
    slow = claims.random_control(magnitude, [_random(0.9)])
    # a random pruning 5x as damaging, swept over lower sparsities, is matched at the same damage
    fast = claims.random_control(magnitude, [_random(4.5, strengths=tuple(s / 5 for s in STRENGTHS))])
    expected = _matched_damage_answer(magnitude)
    for result in (slow, fast):
        assert result.holds, result.message()
        assert result.headline.statistic == pytest.approx(expected, abs=0.02)
        assert result.headline.interval.low < result.headline.statistic < result.headline.interval.high
    assert fast.headline.statistic == pytest.approx(slow.headline.statistic, abs=0.02)
    assert fast.details.strengths["random"][-1] == pytest.approx(slow.details.strengths["random"][-1] / 5, abs=0.01)


def test_random_control_never_reads_a_curve_at_its_floor():
    magnitude = _magnitude()
    result = claims.random_control(magnitude, [_random(0.9)])
    assert result.details.usable_strengths["magnitude"] == (0.0, 0.2, 0.4, 0.6)  # level-2 is at its floor at 0.8
    assert max(result.details.strengths["magnitude"]) <= 0.6
    floored = claims.random_control(magnitude, [_random(4.5)])  # at the floor from the first sparsity on
    assert floored.verdict == "undefined"
    assert "random does not lower level-0 before level-2 reaches its floor (at strength 0.2)" in floored.reason
    assert "sweep it over lower strengths" in floored.reason


def test_random_control_without_a_difficulty_effect_fails():
    magnitude = _magnitude(rates=(0.6, 0.6, 0.6))
    result = claims.random_control(magnitude, [_random(0.9)], margin=0.0)
    assert result.verdict == "fails" and result.headline.statistic == pytest.approx(0.0, abs=0.02)
    assert result.headline.direction == ">"  # the direction recorded is the one that decides
    at_margin = claims.random_control(magnitude, [_random(0.9)], margin=result.headline.statistic)
    assert at_margin.verdict == "fails"


def test_random_masks_are_averaged_and_their_spread_is_inside_the_interval():
    magnitude = _magnitude()
    # masks that damage the hard level differently: their statistics spread around the mean
    masks = [_random(0.0, seed=k, rates=[0.9, 0.9, 0.9 * f], draw_seed=20 + k) for k, f in enumerate((0.4, 1.0, 1.6))]
    one = claims.random_control(magnitude, masks[1:2])
    three = claims.random_control(magnitude, masks)
    assert three.details.masks == (0, 1, 2) and len(three.details.per_mask) == 3
    assert three.headline.interval.method == "bootstrap over items and random masks"
    assert one.headline.interval.method == "bootstrap over items"
    spread = max(three.details.per_mask) - min(three.details.per_mask)
    assert spread > 0.1
    width = three.headline.interval.high - three.headline.interval.low
    assert width > one.headline.interval.high - one.headline.interval.low + spread / 4
    assert three.headline.statistic == pytest.approx(np.mean(three.details.per_mask), abs=0.02)


def test_random_control_needs_masks_on_the_same_strengths():
    magnitude = _magnitude()
    with pytest.raises(ConfigError, match="same strengths"):
        claims.random_control(magnitude, [_random(0.9), _random(0.9, strengths=(0.0, 0.1, 0.2, 0.3))])
    with pytest.raises(ConfigError, match="at least one random study"):
        claims.random_control(magnitude, [])
    flat = claims.random_control(magnitude, [_random(0.0)])
    assert flat.verdict == "undefined" and "no damage to match" in flat.reason


def test_too_few_compressed_points_is_a_clear_error():
    study = _study([0.3, 0.6, 1.0])
    short = dataclasses.replace(study, curves=tuple(Curve(c.level, c.dense, c.strengths[:3], c.compressed[:3])
                                                    for c in study.curves))
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
    method = {"method": "nm", "version": "1", "params": {"n": 4, "m": 8}, "strength": 0.5}
    return ModeComparison(setting, "tiny", "f" * 16, 22_000_000, method, "pruning", 0.5, tuple(range(seeds)),
                          accuracy, {})


def test_irreversible_holds_when_sparse_modes_fall_behind_more_on_harder_levels():
    result = claims.irreversible(_comparison([0.02, 0.06, 0.12]))
    assert result.holds, result.message()
    assert result.headline.statistic == pytest.approx(0.10, abs=0.02)
    assert result.headline.interval.low > 0 and set(result.details.gap) == {"data-100", "data-50", "data-10"}
    assert [c.name for c in result.conditions] == [claims.TRANSFER_GROWTH, "gap(data-100)", "gap(data-50)",
                                                   "gap(data-10)"]
    assert all(c.interval.method == "Student t over seeds" for c in result.conditions)
    assert result.details.sparsity == 0.5  # from the configured level, also for N:M's (n, m) parameters
    assert result.provenance.training_seeds == (0, 1, 2) and result.provenance.model_parameters == 22_000_000
    assert result.family == "pruning" and result.provenance.studies[0].configurations[0].strength == 0.5


def test_irreversible_fails_naming_the_level_where_sparse_transfer_catches_up():
    result = claims.irreversible(_comparison([0.0, 0.06, 0.12]))
    assert result.verdict == "fails"
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
    assert result.verdict == "undefined" and "at least 2 replicates" in result.reason
    assert result.message().startswith("undefined: irreversible")


def _paths(barriers: dict[str, list[float]]) -> list[InterpolationPath]:
    alphas = (0.0, 0.5, 1.0)
    return [InterpolationPath(level, seed, alphas, (0.4, 0.45 + b, 0.5), (0.8, 0.7, 0.75))
            for level, values in barriers.items() for seed, b in enumerate(values)]


def test_lmc_holds_when_the_barrier_is_higher_on_the_harder_level():
    paths = _paths({"data-100": [0.01, 0.02, 0.015], "data-10": [0.2, 0.25, 0.22]})
    result = claims.lmc(_comparison([0.02, 0.06, 0.12]), paths)
    assert result.holds, result.message()
    assert result.headline.statistic == pytest.approx(0.2083, abs=1e-3)
    assert result.details.barrier["data-10"] == pytest.approx([0.2, 0.25, 0.22])


def test_lmc_fails_when_barriers_are_equal():
    paths = _paths({"data-100": [0.1, 0.2, 0.15], "data-10": [0.12, 0.18, 0.15]})
    result = claims.lmc(_comparison([0.02, 0.06, 0.12]), paths)
    assert not result.holds and "does not exclude 0" in result.reason


def test_lmc_without_any_barrier_says_the_difference_does_not_rise_above_0():
    paths = _paths({"data-100": [-0.05, -0.05, -0.05], "data-10": [-0.05, -0.05, -0.05]})  # loss dips: no barrier
    result = claims.lmc(_comparison([0.02, 0.06, 0.12]), paths)
    assert result.verdict == "fails"
    assert (result.headline.interval.low, result.headline.interval.high) == (0.0, 0.0)
    assert result.reason == "interval [0.000, 0.000] does not rise above 0"


def test_lmc_needs_two_levels():
    with pytest.raises(ConfigError, match="2 or more levels"):
        claims.lmc(_comparison([0.02, 0.06, 0.12]), _paths({"data-10": [0.2, 0.2]}))


def test_planted_study_needs_one_rate_per_level():
    with pytest.raises(ConfigError, match="has 3 levels; got 2 rates"):
        planted_study(_setting(3), [0.1, 0.2])
