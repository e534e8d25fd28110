"""Claim `monotonic` (paper Section 3, Table 2): the drop grows monotonically with sparsity at every level."""

from junkdna_core.results import claims


def test_monotonic(pruning_case, jd_study, jd_claim, jd_thresholds):
    setting, method = pruning_case
    result = claims.monotonic(jd_study(setting, method), rho_min=jd_thresholds["monotonic"])
    jd_claim(result)
