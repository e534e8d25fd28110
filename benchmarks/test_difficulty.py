"""Claim `difficulty` (paper Section 3): harder levels drop faster (Theil–Sen slope vs difficulty).

Beside the paper's normalized drop, the chance-corrected drop: with fewer answer
options the chance floor alone makes the normalized drop smaller, so a real
difficulty effect must survive the correction.
"""

from junkdna_core.results import claims


def test_difficulty(pruning_case, jd_study, jd_claim, jd_thresholds):
    setting, method = pruning_case
    result = claims.difficulty(jd_study(setting, method), rho_min=jd_thresholds["difficulty"])
    jd_claim(result)


def test_difficulty_chance_corrected(chance_case, jd_study, jd_claim, jd_thresholds):
    setting, method = chance_case
    result = claims.difficulty(jd_study(setting, method), rho_min=jd_thresholds["difficulty"],
                               drop="chance_corrected", claim="difficulty-chance-corrected")
    jd_claim(result)
