"""Control `random`: small weights versus random weights at the same sparsity.

If the small weights carry the knowledge hard tasks need, magnitude pruning
should concentrate its damage on the hard level more than random pruning does.
"""

from junkdna_core.results import claims


def test_random_control(control_case, jd_study, jd_claim, jd_thresholds):
    setting, _ = control_case
    result = claims.random_control(jd_study(setting, "magnitude"), jd_study(setting, "random"),
                                   margin=jd_thresholds["random"])
    jd_claim(result)
