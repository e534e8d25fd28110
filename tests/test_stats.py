"""Tests of junkdna_core.stats against scipy, hand-computed values and properties."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from junkdna_core.config.errors import ConfigError
from junkdna_core.stats import (
    Correlation,
    absolute_drop,
    bootstrap_ci,
    chance_corrected_drop,
    difficulty_ordering,
    interpolation_barrier,
    normalized_drop,
    paired_bootstrap_slopes,
    permutation_pvalue,
    resample_counts,
    spearman,
    spearman_rows,
    t_interval,
    theil_sen,
    theil_sen_slopes,
    undefined_drop,
)

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")
FAST = settings(max_examples=40, deadline=None)


def rank_correlation(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    """Spearman's rho along ``axis``, vectorised, for scipy.stats.permutation_test."""
    ra = scipy.stats.rankdata(a, axis=axis)
    rb = scipy.stats.rankdata(b, axis=axis)
    ra = ra - ra.mean(axis=axis, keepdims=True)
    rb = rb - rb.mean(axis=axis, keepdims=True)
    return (ra * rb).sum(axis=axis) / np.sqrt((ra**2).sum(axis=axis) * (rb**2).sum(axis=axis))


# --------------------------------------------------------------------------- drops


def test_normalized_drop_hand_value() -> None:
    assert normalized_drop(0.5, 0.6) == pytest.approx(-1 / 6)
    assert isinstance(normalized_drop(0.5, 0.6), float)


def test_normalized_drop_broadcasts() -> None:
    drops = normalized_drop([0.6, 0.3, 0.0], 0.6)
    np.testing.assert_allclose(drops, [0.0, -0.5, -1.0])


@pytest.mark.parametrize("dense", [0.0, -2.3, [0.5, 0.0]])
def test_normalized_drop_rejects_non_positive_dense(dense) -> None:
    with pytest.raises(ConfigError, match="f_dense > 0"):
        normalized_drop(0.4, dense)


@pytest.mark.parametrize("bad", [math.nan, math.inf, [0.1, math.nan]])
def test_drops_reject_non_finite(bad) -> None:
    with pytest.raises(ConfigError, match="finite"):
        normalized_drop(bad, 0.5)
    with pytest.raises(ConfigError, match="finite"):
        absolute_drop(0.5, bad)


def test_absolute_drop_and_shape_mismatch() -> None:
    assert absolute_drop(0.5, 0.6) == pytest.approx(-0.1)
    with pytest.raises(ConfigError, match="broadcastable"):
        absolute_drop([0.1, 0.2, 0.3], [0.1, 0.2])


def test_chance_corrected_drop_four_options() -> None:
    chance = 1 / 4
    assert chance_corrected_drop(0.40, 0.55, chance) == pytest.approx((0.40 - 0.25) / (0.55 - 0.25) - 1)
    assert chance_corrected_drop(0.40, 0.55, chance) == pytest.approx(-0.5)
    assert chance_corrected_drop(0.25, 0.55, chance) == pytest.approx(-1.0)
    assert chance_corrected_drop(0.55, 0.55, chance) == pytest.approx(0.0)


@pytest.mark.parametrize("dense", [0.25, 0.2])
def test_chance_corrected_drop_rejects_dense_at_or_below_chance(dense: float) -> None:
    with pytest.raises(ConfigError, match="dense model at or below chance"):
        chance_corrected_drop(0.3, dense, 0.25)


# --------------------------------------------------------------------------- Spearman


@pytest.mark.parametrize("n", [12, 40])
def test_spearman_matches_scipy_with_t_pvalue(n: int) -> None:
    rng = np.random.default_rng(n)
    x = rng.integers(0, 6, n).astype(float)  # ties
    y = x + rng.normal(0, 2, n)
    result = spearman(x, y)
    expected = scipy.stats.spearmanr(x, y)
    assert result.defined and result.pvalue_method == "t"
    assert result.statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert result.pvalue == pytest.approx(expected.pvalue, rel=1e-9)


@pytest.mark.parametrize("n", [3, 4, 5, 6])
def test_spearman_exact_pvalue_matches_scipy_enumeration(n: int) -> None:
    rng = np.random.default_rng(100 + n)
    x = rng.integers(0, 3, n).astype(float)
    x[:2] = [0.0, 1.0]  # never constant
    y = rng.normal(size=n)
    result = spearman(x, y)
    reference = scipy.stats.permutation_test(
        (x, y), rank_correlation, permutation_type="pairings", n_resamples=np.inf, vectorized=True
    )
    assert result.pvalue_method == "exact"
    assert result.statistic == pytest.approx(scipy.stats.spearmanr(x, y).statistic, abs=1e-12)
    assert result.pvalue == pytest.approx(reference.pvalue, abs=1e-12)


def test_spearman_exact_pvalue_matches_brute_force_at_eight_points() -> None:
    x = np.array([0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 3.0, 4.0])
    y = np.array([0.3, 0.1, 0.1, 0.9, 0.5, 0.2, 0.8, 0.7])
    perms = np.array(list(itertools.permutations(range(8))))
    null = rank_correlation(np.broadcast_to(x, perms.shape), y[perms])
    observed = rank_correlation(x, y)
    eps = 1e-12
    expected = min(1.0, 2 * min(np.mean(null <= observed + eps), np.mean(null >= observed - eps)))
    result = spearman(x, y)
    assert result.statistic == pytest.approx(observed, abs=1e-12)
    assert result.pvalue == pytest.approx(expected, abs=1e-12)


def test_spearman_exact_pvalue_of_perfect_order_at_ten_points() -> None:
    result = spearman(np.arange(10.0), np.arange(10.0) ** 2)
    assert result.statistic == 1.0
    assert result.pvalue == pytest.approx(2 / math.factorial(10))


@FAST
@given(st.lists(st.integers(-1000, 1000), min_size=3, max_size=30, unique=True))
def test_spearman_of_monotone_map_is_one(values: list[int]) -> None:
    x = np.array(values, dtype=float)
    assert spearman(x, x**3 + 2 * x).statistic == pytest.approx(1.0)
    assert spearman(x, -np.exp(x / 1000)).statistic == pytest.approx(-1.0)


@pytest.mark.parametrize(
    ("x", "y", "reason"),
    [
        ([1.0, 2.0], [3.0, 1.0], "at least 3"),
        ([], [], "at least 3"),
        ([1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0], "x is constant"),
        ([1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 5.0, 5.0], "y is constant"),
    ],
)
def test_spearman_undefined_is_documented_never_nan(x, y, reason: str) -> None:
    result = spearman(x, y)
    assert result == Correlation(statistic=0.0, pvalue=1.0, n=len(x), defined=False,
                                 reason=result.reason, pvalue_method="undefined")
    assert reason in result.reason


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        ([1.0, 2.0, 3.0], [1.0, 2.0], "same length"),
        ([1.0, math.nan, 3.0], [1.0, 2.0, 3.0], "finite"),
        ([1.0, 2.0, 3.0], [1.0, math.inf, 3.0], "finite"),
        ([[1.0, 2.0]], [[1.0, 2.0]], "1-D"),
    ],
)
def test_spearman_rejects_bad_input(x, y, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        spearman(x, y)


# --------------------------------------------------------------------------- Theil–Sen


def test_vectorised_theil_sen_equals_scipy() -> None:
    rng = np.random.default_rng(3)
    x = np.array([0.0, 0.1, 0.2, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])  # one tie in x
    ys = rng.normal(size=(25, x.size)) - 2 * x
    expected = [scipy.stats.theilslopes(row, x).slope for row in ys]
    np.testing.assert_allclose(theil_sen_slopes(x, ys), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("n", [3, 5, 10, 30])
def test_theil_sen_matches_scipy(n: int) -> None:
    rng = np.random.default_rng(n)
    x = np.sort(rng.uniform(0, 1, n))
    y = 0.3 - 1.5 * x + rng.normal(0, 0.2, n)
    result = theil_sen(x, y, confidence=0.9)
    expected = scipy.stats.theilslopes(y, x, alpha=0.9)
    assert result.defined and result.reason is None
    assert (result.slope, result.intercept) == pytest.approx((expected.slope, expected.intercept), abs=1e-12)
    assert (result.low, result.high) == pytest.approx((expected.low_slope, expected.high_slope), abs=1e-12)
    assert result.confidence == 0.9 and result.n == n


def test_theil_sen_tie_fallback_interval() -> None:
    result = theil_sen([0.0, 0.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0])
    assert result.defined and (result.slope, result.low, result.high) == (0.0, 0.0, 0.0)
    assert "range of pairwise slopes" in result.reason


@FAST
@given(
    xs=st.lists(st.integers(-50, 50), min_size=5, max_size=12, unique=True),
    intercept=st.integers(-10, 10),
    slope=st.integers(-5, 5),
    corrupt=st.integers(0, 11),
    error=st.integers(-10_000, 10_000).filter(lambda e: e != 0),
)
def test_theil_sen_ignores_one_outlier(xs, intercept, slope, corrupt, error) -> None:
    x = np.array(xs, dtype=float)
    y = intercept + slope * x
    y[corrupt % x.size] += error
    assert theil_sen(x, y).slope == pytest.approx(slope)


@pytest.mark.parametrize(
    ("x", "y", "reason"),
    [([0.0, 1.0], [1.0, 2.0], "at least 3"), ([1.0, 1.0, 1.0], [1.0, 2.0, 3.0], "x is constant")],
)
def test_theil_sen_undefined(x, y, reason: str) -> None:
    result = theil_sen(x, y)
    assert not result.defined and reason in result.reason
    assert (result.slope, result.intercept, result.low, result.high) == (0.0, 0.0, 0.0, 0.0)


@pytest.mark.parametrize("confidence", [0.0, 1.0, 95, -0.1])
def test_theil_sen_rejects_bad_confidence(confidence: float) -> None:
    with pytest.raises(ConfigError, match="confidence"):
        theil_sen([0.0, 1.0, 2.0], [1.0, 2.0, 3.0], confidence=confidence)


def test_theil_sen_rejects_nan_and_mismatch() -> None:
    with pytest.raises(ConfigError, match="finite"):
        theil_sen([0.0, 1.0, 2.0], [1.0, math.nan, 3.0])
    with pytest.raises(ConfigError, match="same length"):
        theil_sen([0.0, 1.0, 2.0], [1.0, 3.0])


# --------------------------------------------------------------------------- bootstrap_ci


@FAST
@given(st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=60))
def test_bootstrap_ci_contains_mean(values: list[float]) -> None:
    interval = bootstrap_ci(values, n_resamples=500)
    assert interval.estimate == pytest.approx(np.mean(values))
    assert interval.low - 1e-12 <= interval.estimate <= interval.high + 1e-12


def test_bootstrap_ci_agrees_with_scipy_percentile() -> None:
    values = (np.random.default_rng(5).random(300) < 0.6).astype(float)
    ours = bootstrap_ci(values, confidence=0.9, n_resamples=4000)
    theirs = scipy.stats.bootstrap((values,), np.mean, confidence_level=0.9, n_resamples=4000,
                                   method="percentile", rng=np.random.default_rng(1)).confidence_interval
    assert ours.low == pytest.approx(theirs.low, abs=0.01)
    assert ours.high == pytest.approx(theirs.high, abs=0.01)


def test_bootstrap_ci_narrows_with_more_items() -> None:
    rng = np.random.default_rng(6)
    few = bootstrap_ci(rng.random(25) < 0.5)
    many = bootstrap_ci(rng.random(400) < 0.5)
    assert many.high - many.low < 0.5 * (few.high - few.low)


def test_bootstrap_ci_seeded_and_other_statistics() -> None:
    values = np.random.default_rng(7).normal(size=50)
    assert bootstrap_ci(values, seed=3) == bootstrap_ci(values, seed=3)
    assert bootstrap_ci(values, seed=3) != bootstrap_ci(values, seed=4)
    median = bootstrap_ci(values, np.median)
    assert median.estimate == pytest.approx(np.median(values))


def test_bootstrap_ci_single_item_is_degenerate() -> None:
    interval = bootstrap_ci([0.7])
    assert (interval.estimate, interval.low, interval.high) == (0.7, 0.7, 0.7)


@pytest.mark.parametrize(
    ("values", "kwargs", "match"),
    [
        ([], {}, "at least one item"),
        ([0.1, math.nan], {}, "finite"),
        ([0.1, 0.2], {"confidence": 1.5}, "confidence"),
        ([0.1, 0.2], {"n_resamples": 0}, "n_resamples"),
        ([0.1, 0.2], {"seed": -1}, "seed"),
        ([0.1, 0.2], {"statistic": lambda s, axis: np.full(np.shape(s)[:-1], np.nan)}, "statistic"),
        ([0.1, 0.2], {"statistic": lambda s, axis: s}, "statistic"),
    ],
)
def test_bootstrap_ci_rejects_bad_input(values, kwargs, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        bootstrap_ci(values, **kwargs)


# --------------------------------------------------------------------------- permutation_pvalue


def test_permutation_pvalue_enumerates_small_samples_exactly() -> None:
    rng = np.random.default_rng(8)
    x, y = np.arange(4.0), rng.normal(size=4)  # scipy counts (4!)^2 = 576 pairings: all enumerated
    assert permutation_pvalue(x, y, rank_correlation, n_resamples=1000) == pytest.approx(spearman(x, y).pvalue)


def test_permutation_pvalue_detects_association_only_when_present() -> None:
    rng = np.random.default_rng(9)
    x = rng.normal(size=30)
    related = permutation_pvalue(x, x + rng.normal(0, 0.5, 30), rank_correlation)
    unrelated = permutation_pvalue(x, rng.normal(size=30), rank_correlation)
    assert related == pytest.approx(2 / 10_000)  # two-sided: twice (0 + 1) / (9999 + 1)
    assert unrelated > 0.05
    assert permutation_pvalue(x, -x, rank_correlation, alternative="less") == pytest.approx(1 / 10_000)
    assert permutation_pvalue(x, -x, rank_correlation, alternative="greater") == 1.0


def test_permutation_pvalue_two_samples_and_seed() -> None:
    rng = np.random.default_rng(10)
    a, b = rng.normal(0, 1, 20), rng.normal(1.5, 1, 20)

    def mean_difference(u, v, axis=-1):
        return np.mean(u, axis=axis) - np.mean(v, axis=axis)

    p = permutation_pvalue(a, b, mean_difference, permutation_type="independent", seed=1)
    assert p < 0.001
    assert p == permutation_pvalue(a, b, mean_difference, permutation_type="independent", seed=1)
    assert permutation_pvalue(a, b, mean_difference, permutation_type="samples", seed=1) < 0.001


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"alternative": "both"}, "alternative"), ({"permutation_type": "rows"}, "permutation_type"),
     ({"n_resamples": 0}, "n_resamples")],
)
def test_permutation_pvalue_rejects_bad_options(kwargs, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        permutation_pvalue([1.0, 2.0, 3.0], [3.0, 1.0, 2.0], rank_correlation, **kwargs)


def test_permutation_pvalue_rejects_bad_data() -> None:
    with pytest.raises(ConfigError, match="same length"):
        permutation_pvalue([1.0, 2.0, 3.0], [3.0, 1.0], rank_correlation)
    with pytest.raises(ConfigError, match="finite"):
        permutation_pvalue([1.0, math.nan, 3.0], [3.0, 1.0, 2.0], rank_correlation)


# --------------------------------------------------------------------------- paired_bootstrap_slopes

SPARSITY = np.linspace(0.0, 0.9, 10)


def simulated_scores(rng: np.random.Generator, dense_acc: float, slope: float, n_items: int):
    """0/1 correctness per (sparsity, item) whose accuracy falls linearly with sparsity."""
    easiness = rng.normal(0, 1, n_items)  # item effects shared by every sparsity
    def correct(acc):
        return (scipy.stats.norm.cdf(easiness + scipy.stats.norm.ppf(acc)) > rng.random(n_items)).astype(float)
    dense = correct(dense_acc)
    scores = np.stack([correct(dense_acc + slope * s) for s in SPARSITY])
    return scores, dense


def test_paired_bootstrap_detects_planted_steeper_slope() -> None:
    rng = np.random.default_rng(11)
    easy, easy_dense = simulated_scores(rng, 0.8, -0.2, 300)
    hard, hard_dense = simulated_scores(rng, 0.8, -0.6, 300)
    result = paired_bootstrap_slopes(SPARSITY, {"easy": easy, "hard": hard},
                                     {"easy": easy_dense, "hard": hard_dense})
    diff = result.difference("easy", "hard")
    assert diff.high < 0 and diff.pvalue < 0.01
    assert diff.difference == pytest.approx(result.slope("hard").slope - result.slope("easy").slope)
    reverse = result.difference("hard", "easy")
    assert (reverse.difference, reverse.low, reverse.high) == (-diff.difference, -diff.high, -diff.low)
    for level in result.levels:
        assert level.low <= level.slope <= level.high


def test_paired_bootstrap_keeps_each_levels_replicates_for_derived_intervals() -> None:
    rng = np.random.default_rng(13)
    easy, easy_dense = simulated_scores(rng, 0.8, -0.2, 200)
    hard, hard_dense = simulated_scores(rng, 0.8, -0.6, 200)
    result = paired_bootstrap_slopes(SPARSITY, {"easy": easy, "hard": hard}, {"easy": easy_dense, "hard": hard_dense},
                                     paired_levels=True, n_resamples=300)
    assert {k: v.shape for k, v in result.replicates.items()} == {"easy": (300,), "hard": (300,)}
    for level in result.levels:  # the level's interval is the percentile interval of its replicates
        low, high = np.quantile(result.replicates[level.level], [0.025, 0.975])
        assert (level.low, level.high) == pytest.approx((low, high))
    gap = result.difference("easy", "hard")
    assert (gap.low, gap.high) == pytest.approx(tuple(np.quantile(result.replicates["hard"] - result.replicates["easy"],
                                                                  [0.025, 0.975])))


def test_resample_counts_draw_n_items_per_resample_seeded() -> None:
    counts = resample_counts(np.random.default_rng(0), 7, 50)
    assert counts.shape == (50, 7) and np.all(counts.sum(axis=1) == 7)
    assert np.array_equal(counts, resample_counts(np.random.default_rng(0), 7, 50))


@given(st.lists(st.lists(st.integers(-3, 3), min_size=5, max_size=5), min_size=1, max_size=20))
@FAST
def test_spearman_rows_equals_spearman_per_row(rows: list[list[int]]) -> None:
    x = np.array([0.1, 0.2, 0.3, 0.3, 0.5])
    y = np.array(rows, dtype=float)
    expected = [spearman(x, row).statistic for row in y]  # 0.0 where a row is constant (undefined)
    np.testing.assert_allclose(spearman_rows(x, y), expected, atol=1e-12)


def test_spearman_rows_rejects_bad_input() -> None:
    with pytest.raises(ConfigError, match="at least 3 values"):
        spearman_rows([1.0, 1.0, 1.0], [[1.0, 2.0, 3.0]])
    with pytest.raises(ConfigError, match="shape"):
        spearman_rows([1.0, 2.0, 3.0], [[1.0, 2.0]])


def test_undefined_drop_says_why_exactly_where_the_drops_raise() -> None:
    assert undefined_drop("relative", 0.5) is None and undefined_drop("absolute", -1.0) is None
    assert "normalized drop is undefined" in undefined_drop("relative", 0.0)
    assert "at or below chance 0.250" in undefined_drop("chance_corrected", 0.25, 0.25)
    assert undefined_drop("chance_corrected", 0.3, 0.25) is None
    with pytest.raises(ConfigError, match="drop kind"):
        undefined_drop("ratio", 0.5)


def test_paired_bootstrap_point_estimates_are_theil_sen_of_mean_drops() -> None:
    rng = np.random.default_rng(12)
    scores, dense = simulated_scores(rng, 0.7, -0.4, 200)
    result = paired_bootstrap_slopes(SPARSITY, {"only": scores}, {"only": dense}, n_resamples=200)
    drops = (scores.mean(axis=1) - dense.mean()) / dense.mean()
    np.testing.assert_allclose(result.slope("only").drops, drops)
    assert result.slope("only").slope == pytest.approx(scipy.stats.theilslopes(drops, SPARSITY).slope)
    assert result.differences == ()

    absolute = paired_bootstrap_slopes(SPARSITY, {"only": scores}, {"only": dense}, drop="absolute", n_resamples=200)
    assert absolute.slope("only").slope == pytest.approx(
        scipy.stats.theilslopes(scores.mean(axis=1) - dense.mean(), SPARSITY).slope)

    corrected = paired_bootstrap_slopes(SPARSITY, {"only": scores}, {"only": dense}, drop="chance_corrected",
                                        chance={"only": 0.25}, n_resamples=200)
    expected = (scores.mean(axis=1) - 0.25) / (dense.mean() - 0.25) - 1
    np.testing.assert_allclose(corrected.slope("only").drops, expected)


def test_paired_bootstrap_identical_levels_give_zero_difference() -> None:
    rng = np.random.default_rng(13)
    scores, dense = simulated_scores(rng, 0.7, -0.4, 200)
    same = paired_bootstrap_slopes(SPARSITY, {"a": scores, "b": scores.copy()}, {"a": dense, "b": dense.copy()},
                                   paired_levels=True, n_resamples=300)
    diff = same.difference("a", "b")
    assert (diff.difference, diff.low, diff.high, diff.pvalue) == (0.0, 0.0, 0.0, 1.0)

    other, other_dense = simulated_scores(rng, 0.7, -0.4, 200)
    independent = paired_bootstrap_slopes(SPARSITY, {"a": scores, "b": other}, {"a": dense, "b": other_dense},
                                          n_resamples=300)
    diff = independent.difference("a", "b")
    assert diff.low < 0 < diff.high and diff.pvalue > 0.05


def test_pairing_levels_narrows_the_difference_interval() -> None:
    rng = np.random.default_rng(14)
    scores, dense = simulated_scores(rng, 0.7, -0.3, 300)
    # same items, harder presentation: each item loses its answer with a probability rising with sparsity
    lost = rng.random(scores.shape) < 0.3 * SPARSITY[:, None]
    harder = np.where(lost, 0.0, scores)
    kwargs = {"levels_x": SPARSITY, "scores_by_level": {"plain": scores, "harder": harder},
              "dense_by_level": {"plain": dense, "harder": dense}, "n_resamples": 400}
    paired = paired_bootstrap_slopes(**kwargs, paired_levels=True).difference("plain", "harder")
    unpaired = paired_bootstrap_slopes(**kwargs, paired_levels=False).difference("plain", "harder")
    assert paired.difference == unpaired.difference < 0
    assert paired.high - paired.low < 0.7 * (unpaired.high - unpaired.low)


def test_paired_bootstrap_is_seeded_and_fast() -> None:
    rng = np.random.default_rng(15)
    scores, dense = simulated_scores(rng, 0.7, -0.4, 500)
    start = time.perf_counter()
    first = paired_bootstrap_slopes(SPARSITY, {"x": scores}, {"x": dense}, n_resamples=1000, seed=4)
    elapsed = time.perf_counter() - start
    assert first == paired_bootstrap_slopes(SPARSITY, {"x": scores}, {"x": dense}, n_resamples=1000, seed=4)
    assert first != paired_bootstrap_slopes(SPARSITY, {"x": scores}, {"x": dense}, n_resamples=1000, seed=5)
    assert elapsed < 1.0


def _bad_call(**overrides):
    rng = np.random.default_rng(0)
    args = {"levels_x": SPARSITY[:3], "scores_by_level": {"a": rng.random((3, 4))},
            "dense_by_level": {"a": rng.random(4) + 0.5}}
    args.update(overrides)
    return paired_bootstrap_slopes(**args)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"levels_x": [0.0, 0.5]}, "at least 3 levels"),
        ({"levels_x": [0.5, 0.5, 0.5]}, "two distinct"),
        ({"dense_by_level": {"b": np.ones(4)}}, "same non-empty keys"),
        ({"scores_by_level": {"a": np.ones((3, 5))}}, "must have shape"),
        ({"scores_by_level": {"a": np.full((3, 4), np.nan)}}, "finite"),
        ({"drop": "ratio"}, "drop must be one of"),
        ({"chance": {"a": 0.25}}, "only used with drop='chance_corrected'"),
        ({"drop": "chance_corrected"}, "needs a chance level"),
        ({"drop": "chance_corrected", "chance": {"a": 0.9}}, "at or below chance"),
        ({"dense_by_level": {"a": np.zeros(4)}}, "f_dense > 0"),
        ({"scores_by_level": {"a": np.ones((3, 4)), "b": np.ones((3, 2))},
          "dense_by_level": {"a": np.ones(4), "b": np.ones(2)}, "paired_levels": True}, "same items"),
        ({"n_resamples": 0}, "n_resamples"),
    ],
)
def test_paired_bootstrap_rejects_bad_input(overrides, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        _bad_call(**overrides)


def test_paired_bootstrap_rejects_dense_mean_hitting_chance_in_a_resample() -> None:
    dense = np.array([1.0] + [0.0] * 9)  # mean 0.1 > chance 0.05, but most resamples miss the one hit
    with pytest.raises(ConfigError, match="bootstrap resample"):
        paired_bootstrap_slopes(SPARSITY[:3], {"a": np.zeros((3, 10))}, {"a": dense},
                                drop="chance_corrected", chance={"a": 0.05}, n_resamples=50)


# --------------------------------------------------------------------------- difficulty_ordering


def test_difficulty_ordering() -> None:
    assert difficulty_ordering([-0.1, -0.3, -0.5, -0.9]).statistic == pytest.approx(1.0)
    assert difficulty_ordering([-0.9, -0.5, -0.3, -0.1]).statistic == pytest.approx(-1.0)
    mixed = difficulty_ordering([-0.1, -0.5, -0.3, -0.9])
    assert mixed.statistic == pytest.approx(scipy.stats.spearmanr([0, 1, 2, 3], [0.1, 0.5, 0.3, 0.9]).statistic)
    assert not difficulty_ordering([-0.2, -0.2, -0.2]).defined
    assert not difficulty_ordering([-0.1, -0.5]).defined


# --- t_interval and interpolation_barrier ----------------------------------------------------


def test_t_interval_matches_scipy() -> None:
    values = [0.71, 0.74, 0.69, 0.77]
    result = t_interval(values, confidence=0.9)
    low, high = scipy.stats.t.interval(0.9, 3, loc=np.mean(values), scale=scipy.stats.sem(values))
    assert result.defined and result.n == 4
    assert result.mean == pytest.approx(np.mean(values))
    assert (result.low, result.high) == (pytest.approx(low), pytest.approx(high))


def test_t_interval_edge_cases() -> None:
    one = t_interval([0.5])
    assert not one.defined and one.low == one.high == one.mean == 0.5 and "2 replicates" in one.reason
    equal = t_interval([0.3, 0.3, 0.3])
    assert equal.defined and equal.low == equal.high == pytest.approx(0.3)
    with pytest.raises(ConfigError):
        t_interval([])
    with pytest.raises(ConfigError):
        t_interval([0.1, float("nan")])


def test_interpolation_barrier_by_hand() -> None:
    # line from 1.0 to 3.0: at alpha 0.5 it is 2.0, the path is 2.6 -> barrier 0.6
    assert interpolation_barrier([0, 0.5, 1], [1.0, 2.6, 3.0]) == pytest.approx(0.6)
    assert interpolation_barrier([0, 0.25, 0.5, 1], [1.0, 1.2, 1.9, 3.0]) == pytest.approx(0.0)
    assert interpolation_barrier([0, 1], [2.0, 1.0]) == 0.0


@pytest.mark.parametrize("alphas", [[0.0], [0.1, 1.0], [0.0, 0.9], [0.0, 0.6, 0.5, 1.0]])
def test_interpolation_barrier_rejects_bad_paths(alphas) -> None:
    with pytest.raises(ConfigError):
        interpolation_barrier(alphas, [1.0] * len(alphas))
