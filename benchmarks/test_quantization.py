"""Claim `quantization` (paper Section 4, Table 2): quantization does not impair monotonically as pruning does."""

from junkdna_core import claims


def test_quantization(quantization_case, jd_study, jd_claim, jd_thresholds):
    setting, method = quantization_case
    result = claims.quantization(jd_study(setting, claims.REFERENCE_PRUNING), jd_study(setting, method),
                                 margin=jd_thresholds["quantization"])
    jd_claim(result)
