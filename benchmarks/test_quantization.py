"""Claim `quantization` (paper Section 4, Table 2): quantization does not impair monotonically as pruning does.

The quantized study's own monotonicity is recorded beside the claim (not asserted: the paper's point is
that it is weaker), so the leaderboard can draw pruning and quantization side by side (paper Figure 7).
"""

from junkdna_core.results import claims


def test_quantization(quantization_case, jd_study, jd_record, jd_claim, jd_thresholds):
    setting, method = quantization_case
    quantized = jd_study(setting, method)
    jd_record(claims.monotonic(quantized, rho_min=jd_thresholds["monotonic"]).as_record())
    result = claims.quantization(jd_study(setting, claims.REFERENCE_PRUNING), quantized,
                                 margin=jd_thresholds["quantization"])
    jd_claim(result)
