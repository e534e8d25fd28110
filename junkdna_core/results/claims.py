"""The claims of the Junk DNA Hypothesis as pure functions of studies.

Each function takes the measured :class:`~junkdna_core.study.sweep.Study` (or
several), computes the claim's conditions — each a statistic with its interval
and p-value against a threshold — and returns a
:class:`~junkdna_core.results.schema.ClaimRecord` whose verdict follows from
them: record first, assert after. Data that leave a statistic undefined (a dense
score at chance, a constant curve) give the verdict ``undefined`` with its
reason and no number. Bootstrap intervals resample items (and random masks,
for the random control) with the study's seed, ``BOOTSTRAP_RESAMPLES`` times.
Thresholds default to the paper's numbers and are options, never edited to make
a run pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from junkdna_core import stats
from junkdna_core.config.errors import ConfigError
from junkdna_core.config.thresholds import PAPER_THRESHOLDS
from junkdna_core.data.settings import level_difficulty
from junkdna_core.results.schema import (
    BarrierDetails,
    ClaimDetails,
    ClaimRecord,
    Condition,
    Configuration,
    CurveDetails,
    DecidedBy,
    Direction,
    Interval,
    IntervalMethod,
    MeanGap,
    PathRecord,
    Provenance,
    QuantizationDetails,
    RandomControlDetails,
    SlopeDetails,
    SlopeGap,
    SlopeRecord,
    StudyProvenance,
    TransferGapDetails,
    load,
    verdict_of,
)

if TYPE_CHECKING:  # the claims read measurements; they never run the models that make them
    from junkdna_core.study.sweep import Curve, Study
    from junkdna_core.study.transfer import InterpolationPath, ModeComparison

BOOTSTRAP_RESAMPLES = 1000
CONFIDENCE = 0.95
# The pruning method quantization is compared with (paper Section 4: one-shot magnitude pruning).
REFERENCE_PRUNING = "magnitude"
# The random control: a level is at its floor once it lost this fraction of its above-chance score, and the
# methods are matched at this many damage targets spread evenly up to the damage both reach before that.
FLOOR_FRACTION = 0.9
MATCHED_TARGETS = 4

# The conditions' names, stable across runs and models: compare matches a claim's conditions by name.
CURVE_SPEARMAN = "max over levels of Spearman(strength, drop)"
ORDERING = "Spearman(difficulty, -slope)"
SLOPE_GAP = "slope(hardest) - slope(easiest)"
QUANTIZATION_GAP = "min over levels of rho(pruning) - rho(quantization)"
MATCHED_DAMAGE = "hardest-level drop at matched easiest-level damage, random - magnitude"
TRANSFER_GROWTH = "gap(hardest) - gap(easiest)"
BARRIER_GROWTH = "barrier(hardest) - barrier(easiest)"

ConditionSpec = tuple[str, Direction, float, DecidedBy]


class UndefinedClaim(Exception):
    """The data leave a claim's statistic undefined (e.g. the dense model scores 0 or at chance)."""


# --------------------------------------------------------------------------- measurements of a study


def _points(curve: Curve) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(strengths, per-item scores (points x items), dense per-item scores), dense points left out."""
    keep = [i for i, s in enumerate(curve.strengths) if s > 0]
    if len(keep) < 3:
        raise ConfigError(f"{curve.level.name}: a claim needs at least 3 compressed levels; got {len(keep)}")
    x = np.array([curve.strengths[i] for i in keep])
    scores = np.array([curve.compressed[i].scores for i in keep], dtype=float)
    return x, scores, np.array(curve.dense.scores, dtype=float)


def _check_drop(curve: Curve, kind: str) -> None:
    """UndefinedClaim when the dense score leaves the drop of ``kind`` undefined at this level."""
    reason = stats.undefined_drop(kind, curve.dense.mean, curve.level.chance)
    if reason:
        raise UndefinedClaim(f"{curve.level.name}: {reason}")


def _drops(curve: Curve, kind: str = "relative") -> np.ndarray:
    """The drop of ``kind`` at each compressed point (means over items)."""
    _check_drop(curve, kind)
    _, scores, dense = _points(curve)
    return np.asarray(stats.drop(kind, scores.mean(axis=1), dense.mean(), curve.level.chance))


def _resample_counts(studies: Sequence[Study]) -> dict[str, np.ndarray]:
    """Bootstrap item counts per level, shared by ``studies`` (which must score the same items).

    Levels that hold the same items (settings 2, 3, 4) share one draw, so their
    comparison is paired; other levels are drawn independently.
    """
    first = studies[0]
    for other in studies[1:]:
        for a, b in zip(first.curves, other.curves, strict=True):
            if a.level.name != b.level.name or a.dense.item_ids != b.dense.item_ids:
                raise ConfigError(f"{other.method} and {first.method} were not scored on the same items of "
                                  f"{first.setting.id} level {a.level.name}; compare studies of one run")
    rng = np.random.default_rng(first.seed)
    if len({c.dense.item_ids for c in first.curves}) == 1:
        shared = stats.resample_counts(rng, len(first.curves[0].dense.scores), BOOTSTRAP_RESAMPLES)
        return {c.level.name: shared for c in first.curves}
    return {c.level.name: stats.resample_counts(rng, len(c.dense.scores), BOOTSTRAP_RESAMPLES) for c in first.curves}


def _resampled_drops(curve: Curve, counts: np.ndarray, kind: str = "relative") -> np.ndarray:
    """The drop at each compressed point in each resample, shape (resamples, points)."""
    _, scores, dense = _points(curve)
    means, base = counts @ scores.T / dense.size, counts @ dense / dense.size
    reason = stats.undefined_drop(kind, float(base.min()), curve.level.chance)
    if reason:
        raise UndefinedClaim(f"{curve.level.name}, in a bootstrap resample: {reason}")
    return np.asarray(stats.drop(kind, means, base[:, None], curve.level.chance))


def _interval(replicates: np.ndarray, seed: int, method: IntervalMethod = "bootstrap over items") -> Interval:
    low, high = stats.percentiles(np.asarray(replicates, dtype=float), CONFIDENCE)
    return Interval(low, high, CONFIDENCE, method, BOOTSTRAP_RESAMPLES, seed)


def _dense_summary(study: Study) -> dict[str, float]:
    return {c.level.name: c.dense.mean for c in study.curves}


def difficulty_of(study: Study) -> dict[str, float]:
    """Each level's difficulty: its rank, or (human - dense) / human for human-gap settings."""
    return level_difficulty(study.setting, _dense_summary(study))


def extra_metrics(study: Study) -> dict[str, dict[str, dict[str, Any]]]:
    """Per level, the mean of each metric recorded beside the level's own (``--jd-metric``): dense and at each
    strength of the sweep (in order); levels without such metrics are left out."""
    return {
        c.level.name: {
            metric: {"dense": float(np.mean(values)), "strengths": list(c.strengths),
                     "means": [float(np.mean(s.extra[metric])) for s in c.compressed]}
            for metric, values in c.dense.extra.items()
        }
        for c in study.curves if c.dense.extra
    }


def _ordered_curves(study: Study) -> list[Curve]:
    difficulty = difficulty_of(study)
    return sorted(study.curves, key=lambda c: difficulty[c.level.name])


# --------------------------------------------------------------------------- records


def _configuration(config: dict[str, Any]) -> Configuration:
    return load(Configuration, config, "configuration")


def _extra(study: Study) -> dict[str, Any]:
    metrics = extra_metrics(study)
    return {"extra_metrics": metrics} if metrics else {}


def provenance(*studies: Study) -> Provenance:
    """What the measurement rests on: model (fingerprint, parameters, where it ran, how texts were fed to it),
    configurations, items (with ids), seed, and the metrics recorded beside the levels' own (:func:`extra_metrics`)."""
    first = studies[0]
    return Provenance(
        model_fingerprint=first.model_fingerprint,
        setting_version=first.setting.version,
        levels=tuple(c.level.describe() for c in first.curves),
        studies=tuple(StudyProvenance(s.method, s.family, tuple(_configuration(c) for c in s.configurations),
                                      s.calibration, more=_extra(s)) for s in studies),
        items=first.items,
        model_parameters=first.model_parameters,
        seed=first.seed,
        more={"model_info": first.model_info, "inputs": first.inputs},
    )


def _record(studies: Sequence[Study], claim: str, conditions: Sequence[Condition], details: ClaimDetails | None,
            reason: str | None = None, method: str | None = None) -> ClaimRecord:
    first = studies[0]
    verdict = verdict_of(tuple(conditions))
    return ClaimRecord(claim=claim, setting=first.setting.id, method=method or first.method, model=first.model,
                       verdict=verdict, conditions=tuple(conditions), provenance=provenance(*studies),
                       details=details, reason=reason if verdict != "holds" else None)


def _undefined(studies: Sequence[Study], claim: str, specs: Sequence[ConditionSpec], error: Exception,
               method: str | None = None, details: ClaimDetails | None = None) -> ClaimRecord:
    """The record of a claim whose statistics the data leave undefined: no numbers, and why."""
    conditions = [Condition(name, None, direction, threshold, decided_by)
                  for name, direction, threshold, decided_by in specs]
    return _record(studies, claim, conditions, details, reason=str(error), method=method)


def _extreme(per_level: dict[str, stats.Correlation], largest: bool) -> tuple[str | None, list[str]]:
    """The level with the largest (or smallest) defined statistic, and the levels where it is undefined."""
    defined = {n: c.statistic for n, c in per_level.items() if c.defined}
    pick = max if largest else min
    return (pick(defined, key=defined.__getitem__) if defined else None), [n for n, c in per_level.items()
                                                                             if not c.defined]


# --------------------------------------------------------------------------- the claims


def monotonic(study: Study, *, rho_min: float = PAPER_THRESHOLDS["monotonic"], claim: str = "monotonic") -> ClaimRecord:
    """Performance falls monotonically with compression at every difficulty level (paper S3, Table 2).

    Statistic: the largest (weakest) Spearman(strength, normalized drop) over
    levels, with its bootstrap interval over items; holds when it is <= -rho_min.
    A level whose drop curve is constant has no rank order: the claim is then
    undefined, unless another level already fails it.
    """
    spec: ConditionSpec = (CURVE_SPEARMAN, "<=", -rho_min, "estimate")
    try:
        x = _points(study.curves[0])[0]
        drops = {c.level.name: _drops(c) for c in study.curves}
    except UndefinedClaim as exc:
        return _undefined([study], claim, [spec], exc)
    per_level = {name: stats.spearman(x, d) for name, d in drops.items()}
    weakest, undefined = _extreme(per_level, largest=True)
    details = CurveDetails(
        strengths=tuple(float(s) for s in x), drops={n: tuple(float(v) for v in d) for n, d in drops.items()},
        difficulty=difficulty_of(study), dense=_dense_summary(study),
        spearman={n: c.statistic if c.defined else None for n, c in per_level.items()},
        pvalue={n: c.pvalue if c.defined else None for n, c in per_level.items()}, weakest_level=weakest)
    why_undefined = (f"Spearman is undefined at {', '.join(undefined)}: {per_level[undefined[0]].reason}"
                     if undefined else None)
    if weakest is None or (undefined and per_level[weakest].statistic <= -rho_min):
        return _undefined([study], claim, [spec], UndefinedClaim(why_undefined), details=details)
    try:  # the measured curve is kept when only some resample leaves the drop undefined
        counts = _resample_counts([study])
        boot = {c.level.name: _resampled_drops(c, counts[c.level.name]) for c in study.curves}
    except UndefinedClaim as exc:
        return _undefined([study], claim, [spec], exc, details=details)
    defined = [n for n in per_level if per_level[n].defined]
    replicates = np.max([stats.spearman_rows(x, boot[n]) for n in defined], axis=0)
    worst = per_level[weakest]
    condition = Condition(CURVE_SPEARMAN, worst.statistic, "<=", -rho_min, "estimate",
                          _interval(replicates, study.seed), worst.pvalue)
    reason = "; ".join(p for p in (f"weakest level {weakest}: Spearman {worst.statistic:.3f}", why_undefined) if p)
    return _record([study], claim, [condition], details, reason=reason)


def _comparison(study: Study, drop: str) -> stats.SlopeComparison:
    curves = _ordered_curves(study)
    x, _, _ = _points(curves[0])
    for curve in curves:
        _check_drop(curve, drop)
    try:
        return stats.paired_bootstrap_slopes(
            x,
            {c.level.name: _points(c)[1] for c in curves},
            {c.level.name: _points(c)[2] for c in curves},
            drop=drop,
            chance={c.level.name: c.level.chance for c in curves} if drop == "chance_corrected" else None,
            paired_levels=len({c.dense.item_ids for c in curves}) == 1,
            n_resamples=BOOTSTRAP_RESAMPLES,
            seed=study.seed,
            confidence=CONFIDENCE,
        )
    except ConfigError as exc:  # a resample whose dense mean reaches 0 or chance
        raise UndefinedClaim(str(exc)) from exc


def difficulty(
    study: Study, *, rho_min: float = PAPER_THRESHOLDS["difficulty"], drop: str = "relative",
    claim: str = "difficulty",
) -> ClaimRecord:
    """Harder levels drop faster (paper S3: Theil–Sen slope grows with difficulty).

    Per level, the Theil–Sen slope of the drop against strength, with a paired
    bootstrap over items. Conditions: with 3 or more levels, Spearman(difficulty
    rank, -slope) >= rho_min (its interval from the same resamples); always, the
    interval of slope(hardest) - slope(easiest) below 0.
    """
    curves = _ordered_curves(study)
    gap_spec: ConditionSpec = (SLOPE_GAP, "<", 0.0, "interval")
    specs: list[ConditionSpec] = ([(ORDERING, ">=", rho_min, "estimate")] if len(curves) >= 3 else []) + [gap_spec]
    try:
        comparison = _comparison(study, drop)
    except UndefinedClaim as exc:
        return _undefined([study], claim, specs, exc)
    easiest, hardest = curves[0].level.name, curves[-1].level.name
    gap = comparison.difference(easiest, hardest)
    gap_condition = Condition(SLOPE_GAP, gap.difference, "<", 0.0, "interval",
                              Interval(gap.low, gap.high, CONFIDENCE, "bootstrap over items", BOOTSTRAP_RESAMPLES,
                                       study.seed), gap.pvalue)
    ordering = stats.difficulty_ordering([comparison.slope(c.level.name).slope for c in curves])
    details = SlopeDetails(
        drop=drop, difficulty=difficulty_of(study),
        slopes={s.level: SlopeRecord(s.slope, s.low, s.high, s.drops) for s in comparison.levels},
        hard_minus_easy=SlopeGap(gap.difference, gap.low, gap.high, gap.pvalue), dense=_dense_summary(study),
        ordering_spearman=ordering.statistic if ordering.defined else None,
        ordering_pvalue=ordering.pvalue if ordering.defined else None,
    )
    gap_text = f"slope({hardest}) - slope({easiest})"
    reasons = [] if gap.high < 0 else [
        f"{gap_text} lies above 0: the hardest level drops slower" if gap.low > 0
        else f"the interval of {gap_text} does not exclude 0"]
    conditions = [gap_condition]
    if len(curves) >= 3:
        if ordering.defined:
            replicates = np.stack([comparison.replicates[c.level.name] for c in curves], axis=1)
            ordering_reps = stats.spearman_rows(np.arange(len(curves), dtype=float), -replicates)
            conditions.insert(0, Condition(ORDERING, ordering.statistic, ">=", rho_min, "estimate",
                                           _interval(ordering_reps, study.seed), ordering.pvalue))
        else:
            conditions.insert(0, Condition(ORDERING, None, ">=", rho_min))
            reasons.insert(0, f"the slopes give no order: {ordering.reason}")
    return _record([study], claim, conditions, details, reason="; ".join(reasons) or None)


def quantization(pruning: Study, quantized: Study, *,
                 margin: float = PAPER_THRESHOLDS["quantization"]) -> ClaimRecord:
    """Pruning impairs monotonically where quantization does not (paper S4, Table 2).

    Statistic: the smallest, over levels, of rho(pruning) - rho(quantization), where
    rho = -Spearman(strength, drop) is each method's monotonicity; its interval
    comes from one bootstrap of the items both studies scored. Holds when it is
    >= margin.
    """
    if pruning.setting.id != quantized.setting.id:
        raise ConfigError("compare pruning and quantization on the same setting")
    method = f"{pruning.method}-vs-{quantized.method}"
    spec: ConditionSpec = (QUANTIZATION_GAP, ">=", margin, "estimate")
    studies = (quantized, pruning)
    try:
        counts = _resample_counts(studies)
        monotonicity, replicates = {}, {}
        for study in studies:
            x = _points(study.curves[0])[0]
            monotonicity[study.method] = {c.level.name: stats.spearman(x, _drops(c)) for c in study.curves}
            replicates[study.method] = {c.level.name: -stats.spearman_rows(x, _resampled_drops(c, counts[c.level.name]))
                                        for c in study.curves}
        for study in studies:
            _, undefined = _extreme(monotonicity[study.method], largest=True)
            if undefined:
                level = monotonicity[study.method][undefined[0]]
                raise UndefinedClaim(f"{study.method}: Spearman is undefined at {', '.join(undefined)}: {level.reason}")
    except UndefinedClaim as exc:
        return _undefined(studies, "quantization", [spec], exc, method=method)
    prune = {n: -c.statistic for n, c in monotonicity[pruning.method].items()}
    quant = {n: -c.statistic for n, c in monotonicity[quantized.method].items()}
    gaps = {name: prune[name] - quant[name] for name in prune}
    weakest = min(gaps, key=gaps.__getitem__)
    boot = np.min([replicates[pruning.method][n] - replicates[quantized.method][n] for n in gaps], axis=0)
    condition = Condition(QUANTIZATION_GAP, gaps[weakest], ">=", margin, "estimate", _interval(boot, pruning.seed))
    details = QuantizationDetails(pruning_spearman={n: -v for n, v in prune.items()},
                                  quantization_spearman={n: -v for n, v in quant.items()}, gap=gaps)
    reason = (f"weakest level {weakest}: rho({pruning.method}) {prune[weakest]:.3f}, "
              f"rho({quantized.method}) {quant[weakest]:.3f}")
    return _record(studies, "quantization", [condition], details, reason=reason, method=method)


def _level_means(study: Study, levels: Sequence[str], counts: dict[str, np.ndarray],
                 ) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Strengths (0 first) and, per level, the mean score at each (the dense one first), and per resample."""
    x, point, boot = None, {}, {}
    for curve in (c for c in study.curves if c.level.name in levels):
        strengths, scores, dense = _points(curve)
        every = np.vstack([dense, scores])
        x = np.concatenate([[0.0], strengths])
        point[curve.level.name] = every.mean(axis=1)
        boot[curve.level.name] = counts[curve.level.name] @ every.T / dense.size
    return x, point, boot


def _relative(means: np.ndarray, what: str) -> np.ndarray:
    """Normalized drops of mean scores whose first column (or entry) is the dense model's."""
    dense = means[..., :1]
    reason = stats.undefined_drop("relative", float(dense.min()))
    if reason:
        raise UndefinedClaim(f"{what}{', in a bootstrap resample' if means.ndim > 1 else ''}: {reason}")
    return np.asarray(stats.drop("relative", means, dense))


def _at_damage(x: np.ndarray, easy: np.ndarray, hard: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, ...]:
    """Strength and hardest-level drop where the easiest level's drop first reaches each target.

    ``easy`` and ``hard``: drops (rows x points, the dense point first); the easy
    curve is made non-increasing (running minimum) so each target is reached once,
    and both curves are read by linear interpolation in strength. A row that never
    reaches a target is read at its last point. Returns (strengths, hard drops),
    each rows x targets.
    """
    envelope = np.minimum.accumulate(easy, axis=1)
    reached = envelope[:, None, :] <= targets[None, :, None]
    found = reached.any(axis=2)
    last = envelope.shape[1] - 1
    i = np.maximum(np.where(found, reached.argmax(axis=2), last), 1)
    rows = np.arange(envelope.shape[0])[:, None]
    e0, e1 = envelope[rows, i - 1], envelope[rows, i]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(found, (targets[None, :] - e0) / (e1 - e0), 1.0)
    t = np.where(found & (i == 1) & (e1 == e0), 1.0, t)
    s = x[i - 1] + t * (x[i] - x[i - 1])
    return s, hard[rows, i - 1] + t * (hard[rows, i] - hard[rows, i - 1])


def _usable(hard_means: np.ndarray, chance: float, what: str) -> int:
    """How many leading points (dense first) come before the hardest level reaches its floor."""
    reason = stats.undefined_drop("chance_corrected", float(hard_means[0]), chance)
    if reason:
        raise UndefinedClaim(f"{what}: {reason}: there is nothing to lose")
    corrected = np.asarray(stats.drop("chance_corrected", hard_means, hard_means[0], chance))
    floor = np.nonzero(corrected <= -FLOOR_FRACTION)[0]
    return int(floor[0]) if floor.size else hard_means.size


def random_control(magnitude: Study, randoms: Sequence[Study], *,
                   margin: float = PAPER_THRESHOLDS["random"]) -> ClaimRecord:
    """Removing small weights hurts hard levels more than removing random weights that do the same damage.

    The random masks (one study per seed, on the same strengths) are averaged. The
    two methods are compared at MATCHED DAMAGE: at easiest-level normalized drops
    d_k = k/K * D (k = 1..K, K = ``MATCHED_TARGETS``), where D is the deepest
    easiest-level drop both methods reach before their hardest level reaches its
    floor (it lost ``FLOOR_FRACTION`` of its above-chance score; chance 0 for
    metrics without one), each method's strength reaching d_k is interpolated
    on its easiest-level curve (made non-increasing), and the hardest level's
    drop is read there. Statistic: the mean over targets of hardest drop(random)
    - hardest drop(magnitude); positive when magnitude pruning loses more of the
    hard level for the same loss on the easy one. Holds when it is > margin.

    Interval: percentile bootstrap resampling the items (shared by both methods;
    paired across levels that hold the same items) and, with 2 or more masks, the
    masks (with replacement), so the spread between masks is inside it; targets
    and usable strengths stay those of the data, and a resample that does not
    reach a target is read at its last usable strength. Undefined when a dense
    score is 0, the hardest level starts at chance, or a method does not damage
    the easiest level before its hardest level is at the floor.
    """
    randoms = tuple(randoms)
    if not randoms:
        raise ConfigError("the random control needs at least one random study (one per mask seed)")
    if any(r.setting.id != magnitude.setting.id for r in randoms):
        raise ConfigError("compare magnitude and random pruning on the same setting")
    if len({r.curves[0].strengths for r in randoms}) > 1:
        raise ConfigError("the random masks must be swept over the same strengths to be averaged; got "
                          + "; ".join(str(r.curves[0].strengths) for r in randoms))
    name = randoms[0].method
    method = f"{magnitude.method}-vs-{name}"
    spec: ConditionSpec = (MATCHED_DAMAGE, ">", margin, "estimate")
    studies = (magnitude, *randoms)
    curves = _ordered_curves(magnitude)
    easiest, hardest = curves[0].level, curves[-1].level
    levels = (easiest.name, hardest.name)
    masks = tuple(int(r.configurations[-1]["params"].get("seed", i)) for i, r in enumerate(randoms))
    try:
        counts = _resample_counts(studies)
        x_magnitude, magnitude_point, magnitude_boot = _level_means(magnitude, levels, counts)
        each_mask = [_level_means(r, levels, counts) for r in randoms]
        draw = np.random.default_rng((magnitude.seed, 1)).integers(0, len(randoms), (BOOTSTRAP_RESAMPLES,
                                                                                      len(randoms)))
        resampled = np.arange(BOOTSTRAP_RESAMPLES)[:, None]
        random_point = {lv: np.mean([m[1][lv] for m in each_mask], axis=0) for lv in levels}
        random_boot = {lv: np.stack([m[2][lv] for m in each_mask])[draw, resampled].mean(axis=1) for lv in levels}
        sides = {magnitude.method: (x_magnitude, magnitude_point, magnitude_boot),
                 name: (each_mask[0][0], random_point, random_boot)}
        usable = {m: _usable(point[hardest.name], hardest.chance or 0.0, f"{m} at {hardest.name}")
                  for m, (_, point, _) in sides.items()}
        reach = {}
        for m, (x, point, _) in sides.items():
            reach[m] = float(np.min(_relative(point[easiest.name][:usable[m]], f"{m} at {easiest.name}")))
            if reach[m] >= 0:
                at = f" (at strength {x[usable[m]]:g})" if usable[m] < x.size else ""
                raise UndefinedClaim(f"{m} does not lower {easiest.name} before {hardest.name} reaches its floor{at}: "
                                     "no damage to match; sweep it over lower strengths (--jd-sparsities with "
                                     "more points near 0)")
        targets = max(reach.values()) * np.arange(1, MATCHED_TARGETS + 1) / MATCHED_TARGETS

        def matched(m: str, means: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
            x, n = sides[m][0], usable[m]
            easy, hard = (_relative(np.atleast_2d(means[lv])[:, :n], f"{m} at {lv}") for lv in levels)
            return _at_damage(x[:n], easy, hard, targets)

        point = {m: matched(m, sides[m][1]) for m in sides}
        boot = {m: matched(m, sides[m][2]) for m in sides}
        per_mask = tuple(float(np.mean(matched(name, mask[1])[1] - point[magnitude.method][1]))
                         for mask in each_mask)
    except UndefinedClaim as exc:
        return _undefined(studies, "random", [spec], exc, method=method)
    statistic = float(np.mean(point[name][1] - point[magnitude.method][1]))
    replicates = (boot[name][1] - boot[magnitude.method][1]).mean(axis=1)
    interval_method: IntervalMethod = ("bootstrap over items and random masks" if len(randoms) > 1
                                       else "bootstrap over items")
    condition = Condition(MATCHED_DAMAGE, statistic, ">", margin, "estimate",
                          _interval(replicates, magnitude.seed, interval_method))
    details = RandomControlDetails(
        easiest_level=easiest.name, hardest_level=hardest.name, targets=tuple(float(t) for t in targets),
        strengths={m: tuple(float(v) for v in point[m][0][0]) for m in point},
        hardest_drops={m: tuple(float(v) for v in point[m][1][0]) for m in point},
        usable_strengths={m: tuple(float(v) for v in sides[m][0][:usable[m]]) for m in sides},
        masks=masks, per_mask=per_mask, floor_fraction=FLOOR_FRACTION, dense=_dense_summary(magnitude))
    reason = (f"at {easiest.name} drops {', '.join(f'{t:.3f}' for t in targets)}, {hardest.name} drops by "
              f"{np.mean(point[magnitude.method][1]):.3f} under {magnitude.method} and "
              f"{np.mean(point[name][1]):.3f} under {name} (mean over the targets)")
    return _record(studies, "random", [condition], details, reason=reason, method=method)


# --------------------------------------------------------------------------- fine-tuning claims


def _t_interval(interval: stats.MeanInterval) -> Interval:
    return Interval(interval.low, interval.high, interval.confidence, "Student t over seeds")


def _finetune_record(comparison: ModeComparison, claim: str, conditions: Sequence[Condition],
                     details: ClaimDetails | None, reason: str | None) -> ClaimRecord:
    config = _configuration(comparison.method)
    verdict = verdict_of(tuple(conditions))
    return ClaimRecord(
        claim=claim, setting=comparison.setting.id, method=comparison.method_label, model=comparison.model,
        verdict=verdict, conditions=tuple(conditions), details=details, reason=reason if verdict != "holds" else None,
        provenance=Provenance(
            model_fingerprint=comparison.model_fingerprint, setting_version=comparison.setting.version,
            levels=tuple(lv.describe() for lv in comparison.setting.levels),
            studies=(StudyProvenance(comparison.method_label, comparison.family, (config,)),),
            items=comparison.items, model_parameters=comparison.model_parameters, seed=comparison.data_seed,
            training_seeds=tuple(comparison.seeds),
            more={"model_info": comparison.model_info, "inputs": comparison.inputs}),
    )


def irreversible(comparison: ModeComparison, *, margin: float = PAPER_THRESHOLDS["irreversible"]) -> ClaimRecord:
    """Sparse Transfer and Sparse-to-Dense stay below Dense Transfer and Dense-with-freezing (paper S5, Fig. 8).

    Per level and seed, the gap ``min(dense, dense-frozen) - max(sparse,
    sparse-to-dense)`` in test accuracy (positive: both sparse modes are below
    both dense ones). Conditions, with Student-t intervals over seeds: the gap
    at the hardest level minus the gap at the easiest (paired by seed) lies
    above ``margin``, and the gap at every level lies above ``margin``.
    """
    acc = comparison.accuracy
    difficulty = comparison.difficulty()
    ordered = sorted(acc, key=difficulty.get)
    gaps = {lv: np.minimum(acc[lv]["dense"], acc[lv]["dense-frozen"])
            - np.maximum(acc[lv]["sparse"], acc[lv]["sparse-to-dense"]) for lv in ordered}
    intervals = {lv: stats.t_interval(g) for lv, g in gaps.items()}
    growth = stats.t_interval(gaps[ordered[-1]] - gaps[ordered[0]])
    specs = [(TRANSFER_GROWTH, ">", margin, "interval"), *((f"gap({lv})", ">", margin, "interval") for lv in ordered)]
    if not growth.defined:
        conditions = [Condition(n, None, d, t, b) for n, d, t, b in specs]
        return _finetune_record(comparison, "irreversible", conditions, None,
                                f"{growth.reason} (seeds: {len(comparison.seeds)})")
    ordering = stats.spearman([difficulty[lv] for lv in ordered], [intervals[lv].mean for lv in ordered])
    conditions = [Condition(TRANSFER_GROWTH, growth.mean, ">", margin, "interval", _t_interval(growth)),
                  *(Condition(f"gap({lv})", intervals[lv].mean, ">", margin, "interval", _t_interval(intervals[lv]))
                    for lv in ordered)]
    reasons = []
    short = {lv: _short_of(intervals[lv].high, margin) for lv in ordered if intervals[lv].low <= margin}
    for verdict in dict.fromkeys(short.values()):
        reasons.append(f"the gap's interval {verdict} at {', '.join(lv for lv in short if short[lv] == verdict)}")
    if growth.low <= margin:
        reasons.append(f"gap({ordered[-1]}) - gap({ordered[0]}) = {growth.mean:.3f} "
                       f"[{growth.low:.3f}, {growth.high:.3f}] {_short_of(growth.high, margin)}")
    details = TransferGapDetails(
        sparsity=comparison.sparsity, difficulty=difficulty,
        accuracy={lv: {m: tuple(v) for m, v in modes.items()} for lv, modes in acc.items()},
        gap={lv: MeanGap(i.mean, i.low, i.high) for lv, i in intervals.items()},
        gap_spearman_with_difficulty=ordering.statistic if ordering.defined else None)
    return _finetune_record(comparison, "irreversible", conditions, details, "; ".join(reasons) or None)


def lmc(comparison: ModeComparison, paths: list[InterpolationPath], *,
        margin: float = PAPER_THRESHOLDS["lmc"]) -> ClaimRecord:
    """The loss barrier between dense and sparse fine-tuned solutions is larger on harder levels (Appendix C).

    ``paths`` hold one interpolation path per (level, seed) for at least the
    easiest and the hardest level of the comparison's setting. Statistic: mean
    over seeds of barrier(hardest) - barrier(easiest), paired by seed; holds when
    its Student-t interval lies above ``margin``.
    """
    difficulty = comparison.difficulty()
    measured = sorted({p.level for p in paths}, key=difficulty.get)
    if len(measured) < 2:
        raise ConfigError(f"the lmc claim needs paths at 2 or more levels; got {measured}")
    easy, hard = measured[0], measured[-1]
    barrier = {(p.level, p.seed): p.barrier for p in paths}
    seeds = sorted({p.seed for p in paths if (easy, p.seed) in barrier and (hard, p.seed) in barrier})
    growth = stats.t_interval([barrier[hard, s] - barrier[easy, s] for s in seeds]) if seeds else None
    details = BarrierDetails(
        difficulty=difficulty, barrier={lv: tuple(barrier[lv, s] for s in seeds) for lv in measured},
        paths=tuple(PathRecord(p.level, p.seed, tuple(p.alphas), tuple(p.losses), tuple(p.accuracies))
                    for p in paths))
    if growth is None or not growth.defined:
        return _finetune_record(comparison, "lmc", [Condition(BARRIER_GROWTH, None, ">", margin, "interval")],
                                details, f"barrier differences over {len(seeds)} seed(s) give no interval")
    condition = Condition(BARRIER_GROWTH, growth.mean, ">", margin, "interval", _t_interval(growth))
    reason = f"interval [{growth.low:.3f}, {growth.high:.3f}] {_short_of(growth.high, margin)}"
    return _finetune_record(comparison, "lmc", [condition], details, reason)


def _short_of(high: float, margin: float) -> str:
    """Why an interval that had to lie above ``margin`` does not: it straddles it, ends at it, or lies below."""
    if high > margin:
        return f"does not exclude {margin:g}"
    return f"does not rise above {margin:g}" if high == margin else f"lies below {margin:g} (reversed)"
