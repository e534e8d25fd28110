"""Control `random`: small weights versus random weights that do the same damage.

If the small weights carry the knowledge hard tasks need, magnitude pruning should cost the hard level more
than random pruning does at the strengths where both cost the easy level the same (matched damage; see
`claims.random_control`). Random pruning is averaged over --jd-random-seeds masks (seeds --jd-seed, +1, ...),
whose spread is inside the claim's interval.
"""

from junkdna_core.results import claims


def test_random_control(control_case, jd_study, jd_claim, jd_thresholds, jd_session):
    setting, _ = control_case
    randoms = [jd_study(setting, "random", seed=seed) for seed in jd_session.random_mask_seeds()]
    result = claims.random_control(jd_study(setting, "magnitude"), randoms, margin=jd_thresholds["random"])
    jd_claim(result)
