"""Statistics of the claims, as pure functions on numpy arrays in the style of :mod:`scipy.stats`.

Every input is checked before any compute: NaN or infinite values, mismatched
lengths and out-of-range options raise :class:`~junkdna_core.config.errors.ConfigError`
(a ``ValueError``) naming what was given. A statistic that is undefined for
valid input (constant input, fewer than 3 points) is never returned as NaN: the
result dataclass says ``defined=False`` and gives the ``reason``, and its
numeric fields hold documented placeholders.

- :mod:`~junkdna_core.stats.drops`: normalized, absolute and chance-corrected drops;
- :mod:`~junkdna_core.stats.ranks`: Spearman with exact p-values, the difficulty ordering, permutation tests;
- :mod:`~junkdna_core.stats.slopes`: Theil–Sen and the paired item bootstrap of slopes per level;
- :mod:`~junkdna_core.stats.intervals`: percentile bootstrap and Student-t intervals;
- :mod:`~junkdna_core.stats.paths`: the loss barrier of an interpolation path.
"""

from junkdna_core.stats.drops import (
    DROP_KINDS,
    DropKind,
    absolute_drop,
    chance_corrected_drop,
    drop,
    normalized_drop,
    undefined_drop,
)
from junkdna_core.stats.intervals import Interval, MeanInterval, bootstrap_ci, percentiles, resample_counts, t_interval
from junkdna_core.stats.paths import interpolation_barrier
from junkdna_core.stats.ranks import (
    EXACT_PVALUE_MAX_N,
    Correlation,
    difficulty_ordering,
    permutation_pvalue,
    spearman,
    spearman_rows,
)
from junkdna_core.stats.slopes import (
    LevelSlope,
    Slope,
    SlopeComparison,
    SlopeDifference,
    paired_bootstrap_slopes,
    theil_sen,
    theil_sen_slopes,
)

__all__ = [
    "DROP_KINDS", "EXACT_PVALUE_MAX_N", "Correlation", "DropKind", "Interval", "LevelSlope", "MeanInterval", "Slope",
    "SlopeComparison", "SlopeDifference", "absolute_drop", "bootstrap_ci", "chance_corrected_drop",
    "difficulty_ordering", "drop", "interpolation_barrier", "normalized_drop", "paired_bootstrap_slopes",
    "percentiles", "permutation_pvalue", "resample_counts", "spearman", "spearman_rows", "t_interval", "theil_sen",
    "theil_sen_slopes", "undefined_drop",
]
