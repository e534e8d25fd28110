"""Claim `quantization` (paper Section 4, Table 2): quantization does not impair monotonically as pruning does.

The quantized study's own monotonicity is recorded beside the claim for information only (not asserted: the
paper's point is that it is weaker), so the leaderboard can draw pruning and quantization side by side (paper
Figure 7) and rank quantization methods by what they keep of the hard level.
"""

from junkdna_core.results import claims


def test_quantization(quantization_case, jd_study, jd_claim, jd_thresholds):
    setting, method = quantization_case
    quantized = jd_study(setting, method)
    jd_claim(claims.monotonic(quantized, rho_min=jd_thresholds["monotonic"]), asserted=False)
    result = claims.quantization(jd_study(setting, claims.REFERENCE_PRUNING), quantized,
                                 margin=jd_thresholds["quantization"])
    jd_claim(result)
