"""A third-party method written only from the public API that ignores its sparsity (always prunes 10%).

Used by tests/test_verify.py: imported there, and copied into a temporary directory on PYTHONPATH for
the benchmark run given ``--jd-methods tenpercent_plugin:TenPercent``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from junkdna_core import LayerResult, MethodParams, PruningMethod, check_fraction


@dataclass(frozen=True)
class TenPercentParams(MethodParams):
    sparsity: float

    def __post_init__(self):
        check_fraction("sparsity", self.sparsity)


class TenPercent(PruningMethod):
    """Always prunes the 10% smallest weights of each layer, whatever sparsity it is given."""

    name: ClassVar[str] = "tenpercent"
    version: ClassVar[str] = "1"
    params_type: ClassVar[type[MethodParams]] = TenPercentParams

    def compress(self, weights, stats):
        results = {}
        for name, w in weights.items():
            order = w.detach().abs().flatten().argsort(stable=True)
            keep = w.new_ones(w.numel(), dtype=bool)
            keep[order[: round(0.1 * w.numel())]] = False
            results[name] = LayerResult(mask=keep.reshape(w.shape))
        return results
