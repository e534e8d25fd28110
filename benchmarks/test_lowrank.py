"""Claim `lowrank` (paper Appendix E): SVD low-rank compression impairs monotonically like pruning."""

from junkdna_core.results import claims


def test_lowrank(lowrank_case, jd_study, jd_claim, jd_thresholds):
    setting, method = lowrank_case
    result = claims.monotonic(jd_study(setting, method), rho_min=jd_thresholds["lowrank"], claim="lowrank")
    jd_claim(result)
