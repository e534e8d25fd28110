"""Fine-tuning claims (paper Sections 3.1.1 and 5, Appendix C): setting 1, `irreversible` and `lmc`.

Setting 1 reuses the `monotonic` and `difficulty` claims on sparse against dense
transfer: the drop should grow with sparsity and grow faster as training data
shrink. `irreversible`: pruned weights do not come back through fine-tuning, so
Sparse Transfer and Sparse-to-Dense stay below Dense Transfer and
Dense-with-freezing, more so on harder levels. `lmc`: the loss barrier between
the dense and the sparse fine-tuned solution is higher on the harder level.
"""

from junkdna_core.results import claims


def test_setting1_monotonic(transfer_case, jd_transfer, jd_claim, jd_thresholds):
    setting, method = transfer_case
    jd_claim(claims.monotonic(jd_transfer.study(setting, method), rho_min=jd_thresholds["monotonic"]))


def test_setting1_difficulty(transfer_case, jd_transfer, jd_claim, jd_thresholds):
    setting, method = transfer_case
    jd_claim(claims.difficulty(jd_transfer.study(setting, method), rho_min=jd_thresholds["difficulty"]))


def test_irreversible(irreversible_case, jd_transfer, jd_claim, jd_thresholds):
    setting, method = irreversible_case
    jd_claim(claims.irreversible(jd_transfer.modes(setting, method), margin=jd_thresholds["irreversible"]))


def test_lmc(lmc_case, jd_transfer, jd_claim, jd_thresholds):
    setting, method = lmc_case
    jd_claim(claims.lmc(jd_transfer.modes(setting, method), jd_transfer.paths(setting, method),
                        margin=jd_thresholds["lmc"]))
