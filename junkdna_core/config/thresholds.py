"""The default threshold of every claim: the paper's where it has one (by claim name).

Kept apart from the claims so that option parsing and the pytest controller
read them without importing torch.
"""

from __future__ import annotations

# Table 2: pruning Spearman 0.975..1.0, GPTQ 0.316..0.872 (smallest pruning-minus-quantization gap
# 0.107); Appendix E: low rank 0.899..0.956. The controls the paper lacks (random, irreversible, lmc)
# only need the effect in the stated direction.
PAPER_THRESHOLDS: dict[str, float] = {
    "monotonic": 0.975,
    "difficulty": 0.8,
    "quantization": 0.1,
    "lowrank": 0.899,
    "random": 0.0,
    "irreversible": 0.0,
    "lmc": 0.0,
}
