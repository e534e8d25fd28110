"""The claims of the Junk DNA Hypothesis as pure functions of studies.

Each function takes the measured :class:`~junkdna_core.study.sweep.Study` (or two),
computes the claim's statistic with its interval and p-value, compares it with
a threshold, and returns a :class:`ClaimResult`: record first, assert after.
Thresholds default to the paper's numbers and are options, never edited to make
a run pass.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from junkdna_core import stats
from junkdna_core.config.errors import ConfigError
from junkdna_core.config.thresholds import PAPER_THRESHOLDS
from junkdna_core.data.settings import level_difficulty

if TYPE_CHECKING:  # the claims read measurements; they never run the models that make them
    from junkdna_core.study.sweep import Curve, Study
    from junkdna_core.study.transfer import InterpolationPath, ModeComparison

BOOTSTRAP_RESAMPLES = 1000
# The pruning method quantization is compared with (paper Section 4: one-shot magnitude pruning).
REFERENCE_PRUNING = "magnitude"


@dataclass(frozen=True)
class ClaimResult:
    """A claim's verdict with the statistic, interval, p-value and threshold behind it."""

    claim: str
    setting: str
    method: str
    model: str
    statistic_name: str
    statistic: float
    threshold: float
    direction: Literal[">=", "<="]
    holds: bool
    low: float | None = None
    high: float | None = None
    pvalue: float | None = None
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    def as_record(self) -> dict[str, Any]:
        """JSON-ready dict for the run record."""
        return asdict(self)

    def message(self) -> str:
        """One line saying what was measured, against what, and the verdict."""
        ci = f" [{self.low:.3f}, {self.high:.3f}]" if self.low is not None and self.high is not None else ""
        p = f", p={self.pvalue:.3g}" if self.pvalue is not None else ""
        verdict = "holds" if self.holds else "does NOT hold"
        why = f" ({self.reason})" if self.reason else ""
        return (f"{self.claim} {verdict} for {self.setting}-{self.method}-{self.model}: {self.statistic_name} = "
                f"{self.statistic:.4f}{ci}{p}; needs {self.direction} {self.threshold:g}{why}")


class UndefinedClaim(Exception):
    """The data leave a claim's statistic undefined (e.g. the dense model scores 0 or at chance)."""


def _points(curve: Curve) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(strengths, per-item scores (points x items), dense per-item scores), dense points left out."""
    keep = [i for i, s in enumerate(curve.strengths) if s > 0]
    if len(keep) < 3:
        raise ConfigError(f"{curve.level.name}: a claim needs at least 3 compressed levels; got {len(keep)}")
    x = np.array([curve.strengths[i] for i in keep])
    scores = np.array([curve.compressed[i].scores for i in keep], dtype=float)
    return x, scores, np.array(curve.dense.scores, dtype=float)


def _drops(curve: Curve, kind: str = "relative") -> np.ndarray:
    _x, scores, dense = _points(curve)
    means, base = scores.mean(axis=1), dense.mean()
    if kind == "relative" and base <= 0:
        raise UndefinedClaim(f"{curve.level.name}: the dense score is {base:g}; the normalized drop is undefined")
    if kind == "chance_corrected" and base <= curve.level.chance:
        raise UndefinedClaim(f"{curve.level.name}: the dense score {base:.3f} is at or below chance "
                             f"{curve.level.chance:.3f}; the chance-corrected drop is undefined")
    if kind == "absolute":
        return np.asarray(stats.absolute_drop(means, base))
    if kind == "chance_corrected":
        return np.asarray(stats.chance_corrected_drop(means, base, curve.level.chance))
    return np.asarray(stats.normalized_drop(means, base))


def _dense_summary(study: Study) -> dict[str, float]:
    return {c.level.name: c.dense.mean for c in study.curves}


def difficulty_of(study: Study) -> dict[str, float]:
    """Each level's difficulty: its rank, or (human - dense) / human for human-gap settings."""
    return level_difficulty(study.setting, _dense_summary(study))


def provenance(*studies: Study) -> dict[str, Any]:
    """What the measurement rests on: model fingerprint, configurations, items (with ids), calibration."""
    return {
        "model_fingerprint": studies[0].model_fingerprint,
        "setting_version": studies[0].setting.version,
        "levels": [c.level.describe() for c in studies[0].curves],
        "studies": [{"method": s.method, "configurations": list(s.configurations), "calibration": s.calibration}
                    for s in studies],
        "items": studies[0].items,
    }


def _base(*studies: Study, claim: str, **kw: Any) -> dict[str, Any]:
    study = studies[0]
    return {"claim": claim, "setting": study.setting.id, "method": study.method, "model": study.model,
            "provenance": provenance(*studies), **kw}


def _undefined(studies: tuple[Study, ...], claim: str, method: str, threshold: float, direction: str,
               error: UndefinedClaim) -> ClaimResult:
    """The result of a claim whose statistic the data leave undefined: it does not hold, and says why."""
    return ClaimResult(**_base(*studies, claim=claim, method=method), statistic_name="undefined", statistic=0.0,
                       threshold=threshold, direction=direction, holds=False, reason=f"undefined: {error}")


def monotonic(study: Study, *, rho_min: float = PAPER_THRESHOLDS["monotonic"], claim: str = "monotonic") -> ClaimResult:
    """Performance falls monotonically with compression at every difficulty level (paper S3, Table 2).

    Statistic: the largest (weakest) Spearman(strength, normalized drop) over
    levels; the claim holds when it is <= -rho_min.
    """
    per_level = {}
    try:
        for curve in study.curves:
            x, _, _ = _points(curve)
            per_level[curve.level.name] = (stats.spearman(x, _drops(curve)), _drops(curve).tolist())
    except UndefinedClaim as exc:
        return _undefined((study,), claim, study.method, -rho_min, "<=", exc)
    worst_name, (worst, _) = max(per_level.items(), key=lambda kv: kv[1][0].statistic if kv[1][0].defined else 1.0)
    undefined = [n for n, (c, _) in per_level.items() if not c.defined]
    details = {
        "spearman": {n: c.statistic for n, (c, _) in per_level.items()},
        "pvalue": {n: c.pvalue for n, (c, _) in per_level.items()},
        "drops": {n: d for n, (_, d) in per_level.items()},
        "strengths": [s for s in study.curves[0].strengths if s > 0],
        "dense": _dense_summary(study),
        "difficulty": difficulty_of(study),
        "weakest_level": worst_name,
    }
    return ClaimResult(
        **_base(study, claim=claim),
        statistic_name=f"max over levels of Spearman(strength, drop) (weakest: {worst_name})",
        statistic=worst.statistic if not undefined else 1.0,
        threshold=-rho_min, direction="<=",
        holds=not undefined and worst.statistic <= -rho_min,
        pvalue=worst.pvalue,
        reason=f"undefined at {', '.join(undefined)}: {per_level[undefined[0]][0].reason}" if undefined else None,
        details=details,
    )


def _ordered_curves(study: Study) -> list[Curve]:
    difficulty = difficulty_of(study)
    return sorted(study.curves, key=lambda c: difficulty[c.level.name])


def _comparison(study: Study, drop: str) -> stats.SlopeComparison:
    curves = _ordered_curves(study)
    x, _, _ = _points(curves[0])
    same_items = len({c.dense.item_ids for c in curves}) == 1
    for curve in curves:
        _drops(curve, drop)
    try:
        return stats.paired_bootstrap_slopes(
            x,
            {c.level.name: _points(c)[1] for c in curves},
            {c.level.name: _points(c)[2] for c in curves},
            drop=drop,
            chance={c.level.name: c.level.chance for c in curves} if drop == "chance_corrected" else None,
            paired_levels=same_items,
            n_resamples=BOOTSTRAP_RESAMPLES,
            seed=0,
        )
    except ConfigError as exc:  # a resample whose dense mean reaches 0 or chance
        raise UndefinedClaim(str(exc)) from exc


def difficulty(
    study: Study, *, rho_min: float = PAPER_THRESHOLDS["difficulty"], drop: str = "relative",
    claim: str = "difficulty",
) -> ClaimResult:
    """Harder levels drop faster (paper S3: Theil–Sen slope grows with difficulty).

    Per level, the Theil–Sen slope of the drop against strength, with a paired
    bootstrap over items. Holds when the hardest level's slope is below the
    easiest's with the bootstrap interval of the difference below 0, and, with 3
    or more levels, Spearman(difficulty rank, -slope) >= rho_min.
    """
    curves = _ordered_curves(study)
    try:
        comparison = _comparison(study, drop)
    except UndefinedClaim as exc:
        return _undefined((study,), claim, study.method, rho_min, ">=", exc)
    easiest, hardest = curves[0].level.name, curves[-1].level.name
    gap = comparison.difference(easiest, hardest)
    ordering = stats.difficulty_ordering([comparison.slope(c.level.name).slope for c in curves])
    details = {
        "drop": drop,
        "difficulty": difficulty_of(study),
        "slopes": {s.level: {"slope": s.slope, "low": s.low, "high": s.high, "drops": list(s.drops)}
                   for s in comparison.levels},
        "ordering_spearman": ordering.statistic if ordering.defined else None,
        "ordering_pvalue": ordering.pvalue if ordering.defined else None,
        "hard_minus_easy": {"difference": gap.difference, "low": gap.low, "high": gap.high, "pvalue": gap.pvalue},
        "dense": _dense_summary(study),
    }
    gap_name = f"slope({hardest}) - slope({easiest})"
    gap_text = f"{gap_name} = {gap.difference:.3f} [{gap.low:.3f}, {gap.high:.3f}], p={gap.pvalue:.3g}"
    reason = None if gap.high < 0 else (
        f"{gap_text}: the hardest level drops slower" if gap.low > 0 else f"{gap_text} does not exclude 0")
    if len(curves) < 3:
        return ClaimResult(**_base(study, claim=claim), statistic_name=gap_name, statistic=gap.difference,
                           threshold=0.0, direction="<=", holds=gap.high < 0, low=gap.low, high=gap.high,
                           pvalue=gap.pvalue, reason=reason, details=details)
    # The interval and p-value of a record belong to its statistic: here the ordering's exact p-value; the
    # slope difference's interval is in the reason (when it fails) and in details["hard_minus_easy"].
    return ClaimResult(
        **_base(study, claim=claim),
        statistic_name=f"Spearman(difficulty, -slope) over {len(curves)} levels",
        statistic=ordering.statistic, threshold=rho_min, direction=">=",
        holds=ordering.statistic >= rho_min and gap.high < 0,
        pvalue=ordering.pvalue if ordering.defined else None,
        reason=reason, details=details,
    )


def quantization(pruning: Study, quantized: Study, *, margin: float = PAPER_THRESHOLDS["quantization"]) -> ClaimResult:
    """Pruning impairs monotonically where quantization does not (paper S4, Table 2).

    Statistic: the smallest, over levels, of monotonicity(pruning) -
    monotonicity(quantization), where monotonicity = -Spearman(strength, drop).
    Holds when it is >= margin at every level.
    """
    if pruning.setting.id != quantized.setting.id:
        raise ConfigError("compare pruning and quantization on the same setting")
    method = f"{pruning.method}-vs-{quantized.method}"
    results = [monotonic(pruning, rho_min=0.0), monotonic(quantized, rho_min=0.0)]
    for r in results:
        if r.statistic_name == "undefined" or r.reason:
            return _undefined((quantized, pruning), "quantization", method, margin, ">=",
                              UndefinedClaim(f"{r.method}: {r.reason}"))
    prune, quant = (r.details["spearman"] for r in results)
    gaps = {name: (-prune[name]) - (-quant[name]) for name in prune}
    weakest = min(gaps, key=gaps.get)
    return ClaimResult(
        **_base(quantized, pruning, claim="quantization", method=method),
        statistic_name=f"min over levels of rho(pruning) - rho(quantization) (weakest: {weakest})",
        statistic=gaps[weakest], threshold=margin, direction=">=", holds=gaps[weakest] >= margin,
        details={"pruning_spearman": prune, "quantization_spearman": quant, "gap": gaps,
                 "note": "the embedded SmolLM2 weights sit on a 4-bit grid (GGUF Q4_1)"},
    )


def random_control(magnitude: Study, random: Study, *, margin: float = PAPER_THRESHOLDS["random"]) -> ClaimResult:
    """Removing small weights hurts hard levels differently from removing random weights.

    For each method, the hard-vs-easy slope ratio slope(hardest)/slope(easiest)
    (how many times faster the hardest level drops). Statistic: ratio(magnitude)
    - ratio(random); holds when it is > margin, i.e. magnitude pruning
    concentrates its damage on the hard level more than random pruning does.
    """
    ratios = {}
    method = f"{magnitude.method}-vs-{random.method}"
    try:
        for study in (magnitude, random):
            comparison = _comparison(study, "relative")
            curves = _ordered_curves(study)
            easy, hard = comparison.slope(curves[0].level.name), comparison.slope(curves[-1].level.name)
            if easy.slope == 0:
                raise UndefinedClaim(f"{study.method}: the easiest level does not drop at all; the ratio is undefined")
            ratios[study.method] = {"hard": hard.slope, "easy": easy.slope, "ratio": hard.slope / easy.slope}
    except UndefinedClaim as exc:
        return _undefined((magnitude, random), "random", method, margin, ">=", exc)
    statistic = ratios[magnitude.method]["ratio"] - ratios[random.method]["ratio"]
    return ClaimResult(
        **_base(magnitude, random, claim="random", method=method),
        statistic_name="slope-ratio(hard/easy) magnitude - random",
        statistic=statistic, threshold=margin, direction=">=", holds=statistic > margin,
        details={"ratios": ratios, "dense": _dense_summary(magnitude)},
    )


def _finetune_base(comparison: ModeComparison, claim: str, method: str) -> dict[str, Any]:
    return {"claim": claim, "setting": comparison.setting.id, "method": method, "model": comparison.model,
            "provenance": {"model_fingerprint": comparison.model_fingerprint,
                           "setting_version": comparison.setting.version,
                           "levels": [lv.describe() for lv in comparison.setting.levels],
                           "method": comparison.method, "seeds": list(comparison.seeds), "items": comparison.items}}


def irreversible(comparison: ModeComparison, *, margin: float = PAPER_THRESHOLDS["irreversible"]) -> ClaimResult:
    """Sparse Transfer and Sparse-to-Dense stay below Dense Transfer and Dense-with-freezing (paper S5, Fig. 8).

    Per level and seed, the gap ``min(dense, dense-frozen) - max(sparse,
    sparse-to-dense)`` in test accuracy (positive: both sparse modes are below
    both dense ones). Holds when, with Student-t intervals over seeds, the gap is
    above ``margin`` at every level and the gap at the hardest level exceeds the
    gap at the easiest (difference paired by seed, interval above ``margin``).
    """
    acc = comparison.accuracy
    difficulty = comparison.difficulty()
    ordered = sorted(acc, key=difficulty.get)
    gaps = {lv: np.minimum(acc[lv]["dense"], acc[lv]["dense-frozen"])
            - np.maximum(acc[lv]["sparse"], acc[lv]["sparse-to-dense"]) for lv in ordered}
    intervals = {lv: stats.t_interval(g) for lv, g in gaps.items()}
    growth = stats.t_interval(gaps[ordered[-1]] - gaps[ordered[0]])
    method = comparison.method_label
    base = _finetune_base(comparison, "irreversible", method)
    if not growth.defined:
        return ClaimResult(**base, statistic_name="undefined", statistic=0.0, threshold=margin, direction=">=",
                           holds=False, reason=f"undefined: {growth.reason} (seeds: {len(comparison.seeds)})")
    ordering = stats.spearman([difficulty[lv] for lv in ordered], [intervals[lv].mean for lv in ordered])
    reasons = []
    short = {lv: _short_of(intervals[lv].high, margin) for lv in ordered if intervals[lv].low <= margin}
    for verdict in dict.fromkeys(short.values()):
        reasons.append(f"the gap's interval {verdict} at {', '.join(lv for lv in short if short[lv] == verdict)}")
    if growth.low <= margin:
        reasons.append(f"gap({ordered[-1]}) - gap({ordered[0]}) = {growth.mean:.3f} "
                       f"[{growth.low:.3f}, {growth.high:.3f}] {_short_of(growth.high, margin)}")
    return ClaimResult(
        **base,
        statistic_name=f"gap({ordered[-1]}) - gap({ordered[0]}), gap = min(dense modes) - max(sparse modes)",
        statistic=growth.mean, threshold=margin, direction=">=", holds=not reasons,
        low=growth.low, high=growth.high, reason="; ".join(reasons) or None,
        details={
            "sparsity": comparison.sparsity,
            "difficulty": difficulty,
            "accuracy": {lv: {m: list(v) for m, v in modes.items()} for lv, modes in acc.items()},
            "gap": {lv: {"mean": i.mean, "low": i.low, "high": i.high} for lv, i in intervals.items()},
            "gap_spearman_with_difficulty": ordering.statistic if ordering.defined else None,
        },
    )


def lmc(comparison: ModeComparison, paths: list[InterpolationPath], *,
        margin: float = PAPER_THRESHOLDS["lmc"]) -> ClaimResult:
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
    base = _finetune_base(comparison, "lmc", comparison.method_label)
    details = {
        "difficulty": difficulty,
        "barrier": {lv: [barrier[lv, s] for s in seeds] for lv in measured},
        "paths": [{"level": p.level, "seed": p.seed, "alphas": list(p.alphas), "loss": list(p.losses),
                   "accuracy": list(p.accuracies)} for p in paths],
    }
    if growth is None or not growth.defined:
        return ClaimResult(**base, statistic_name="undefined", statistic=0.0, threshold=margin, direction=">=",
                           holds=False, details=details,
                           reason=f"undefined: barrier differences over {len(seeds)} seed(s) give no interval")
    return ClaimResult(
        **base, statistic_name=f"barrier({hard}) - barrier({easy}), mean over seeds",
        statistic=growth.mean, threshold=margin, direction=">=", holds=growth.low > margin,
        low=growth.low, high=growth.high, details=details,
        reason=None if growth.low > margin else
        f"interval [{growth.low:.3f}, {growth.high:.3f}] {_short_of(growth.high, margin)}",
    )


def _short_of(high: float, margin: float) -> str:
    """Why an interval that had to lie above ``margin`` does not: it straddles it, ends at it, or lies below."""
    if high > margin:
        return f"does not exclude {margin:g}"
    return f"does not rise above {margin:g}" if high == margin else f"lies below {margin:g} (reversed)"
