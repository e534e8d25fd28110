"""What a compression reached, measured on its results and checked against what the method declared.

Pruning: exactly ``round(sparsity * n)`` pruned weights, ties included, in the
method's ``sparsity_unit`` (every layer, every output row, or every group of
layers compressed by one ``compress`` call; any of the three when the method
declares none). Quantization: at most ``2**bits`` distinct values in every group
of ``group_size`` input columns of a row (the whole row when the method has no
group size). Low rank: no layer's numerical rank above the rank the method keeps.

:class:`LevelMeter` returns the measured values as a JSON-ready dict (stored in
the artifact's build report and in every study configuration) or raises
:class:`~junkdna_core.config.errors.MethodError` naming the method, its level,
what was expected and what was measured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from junkdna_core.compress.base import CompressionMethod
from junkdna_core.config.errors import MethodError

SPARSITY_UNITS: tuple[str, ...] = ("layer", "row", "group")


@dataclass(frozen=True)
class _MaskFacts:
    """What the exact-sparsity rule needs of one mask at one level."""

    pruned: int
    numel: int
    in_features: int
    rows_exact: bool  # every row prunes exactly round(level * in_features)


def _mask_facts(mask: torch.Tensor, level: float) -> _MaskFacts:
    pruned_per_row = (~mask).sum(dim=1)
    rows_exact = bool((pruned_per_row == round(level * mask.shape[1])).all())
    return _MaskFacts(int(pruned_per_row.sum()), mask.numel(), int(mask.shape[1]), rows_exact)


def _units_met(
    facts: Mapping[str, _MaskFacts], level: float, groups: Sequence[Sequence[str]], units: Sequence[str]
) -> list[str]:
    checks = {
        "layer": lambda: all(f.pruned == round(level * f.numel) for f in facts.values()),
        "row": lambda: all(f.rows_exact for f in facts.values()),
        "group": lambda: all(
            sum(facts[n].pruned for n in g) == round(level * sum(facts[n].numel for n in g)) for g in groups
        ),
    }
    return [unit for unit in units if checks[unit]()]


def _problem(
    facts: Mapping[str, _MaskFacts], level: float, groups: Sequence[Sequence[str]], units: Sequence[str]
) -> str:
    got = ", ".join(f"{n} {f.pruned}/{f.numel}" for n, f in facts.items())
    wanted = {
        "layer": "per layer " + ", ".join(f"{n} {round(level * f.numel)}" for n, f in facts.items()),
        "row": "per row " + ", ".join(f"{n} {round(level * f.in_features)} of {f.in_features}" for n, f in facts.items()),
        "group": "per group of layers compressed together "
        + ", ".join(str(round(level * sum(facts[n].numel for n in g))) for g in groups),
    }
    return (
        f"at sparsity {level!r} the masks prune {got}; expected exactly round({level!r} * n) pruned, ties included, "
        f"{' or '.join(wanted[u] for u in units)}"
    )


def sparsity_problem(
    masks: Mapping[str, torch.Tensor],
    level: float,
    *,
    groups: Sequence[Sequence[str]] | None = None,
    units: Sequence[str] = SPARSITY_UNITS,
) -> str | None:
    """Why ``masks`` (True = kept, ``(out, in)``) break the exact-sparsity rule at ``level``, or None.

    Exact means ``round(level * n)`` pruned weights in one of ``units``: every
    layer, every row, or every group of layers (``groups``: lists of names;
    default one group of all masks).
    """
    groups = [list(masks)] if groups is None else groups
    facts = {name: _mask_facts(m, level) for name, m in masks.items()}
    return None if _units_met(facts, level, groups, units) else _problem(facts, level, groups, units)


def max_distinct_per_group(weight: torch.Tensor, group_size: int | None) -> int:
    """The largest number of distinct values in a group of ``group_size`` columns of one row (None: whole rows)."""
    width = weight.shape[1] if group_size is None else group_size
    most = 0
    for chunk in weight.detach().split(width, dim=1):
        ordered = chunk.float().sort(dim=1).values
        distinct = 1 + (ordered[:, 1:] != ordered[:, :-1]).sum(dim=1)
        most = max(most, int(distinct.max()))
    return most


def numerical_rank(weight: torch.Tensor) -> int:
    """The rank of ``weight``: singular values above ``max(out, in) * eps(dtype) * sigma_max`` (NumPy's rule)."""
    singular = torch.linalg.svdvals(weight.detach().float())
    tolerance = max(weight.shape) * torch.finfo(weight.dtype).eps * singular.max()
    return int((singular > tolerance).sum())


def _label(method: CompressionMethod) -> str:
    return f"method {method.name!r} at {method.level_name}={method.level!r}"


def _kept_rank(method: CompressionMethod, shape: tuple[int, int]) -> int:
    rank = getattr(method, "rank", None)
    return int(rank(shape)) if callable(rank) else max(1, round(method.level * min(shape)))


class LevelMeter:
    """Measures what one compression run reached, one ``compress`` call's group at a time.

    :meth:`add` takes each group's enforced weights and masks (``(out, in)``)
    while they are in memory (with sequential onloading a block is in memory
    only for its turn); :meth:`result` checks the whole run against the
    method's declaration and returns the measured values, or raises
    MethodError naming the method, its level, the expected and the measured values.
    """

    def __init__(self, method: CompressionMethod) -> None:
        self.method = method
        self.groups: list[list[str]] = []
        self._facts: dict[str, _MaskFacts] = {}
        self._distinct: dict[str, int] = {}
        self._ranks: dict[str, tuple[int, int, int]] = {}  # name -> (rank, kept rank, min(out, in))
        self._missing_masks: list[str] = []

    def add(self, weights: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor]) -> None:
        """Measure one group: the targets of one ``compress`` call."""
        method = self.method
        self.groups.append(list(weights))
        if method.family == "pruning":
            self._missing_masks += [n for n in weights if n not in masks]
            self._facts.update({n: _mask_facts(masks[n], method.level) for n in weights if n in masks})
        elif method.family == "quantization":
            group_size = getattr(method.params, "group_size", None)
            self._distinct.update({n: max_distinct_per_group(w, group_size) for n, w in weights.items()})
        else:
            for name, w in weights.items():
                shape = (int(w.shape[0]), int(w.shape[1]))
                self._ranks[name] = (numerical_rank(w), _kept_rank(method, shape), min(shape))

    def result(self) -> dict[str, Any]:
        """The measured values, e.g. ``{"unit": "row", "sparsity": 0.5}``; MethodError on a miss."""
        if self.method.family == "pruning":
            return self._pruning()
        if self.method.family == "quantization":
            return self._quantization()
        return self._lowrank()

    def _pruning(self) -> dict[str, Any]:
        method, level = self.method, self.method.level
        if self._missing_masks:
            raise MethodError(f"{_label(method)} returned no mask for {', '.join(self._missing_masks)}")
        declared = getattr(method, "sparsity_unit", None)
        units = (declared,) if declared in SPARSITY_UNITS else SPARSITY_UNITS
        met = _units_met(self._facts, level, self.groups, units)
        if not met:
            raise MethodError(f"{_label(method)} missed its level: {_problem(self._facts, level, self.groups, units)}")
        pruned, total = sum(f.pruned for f in self._facts.values()), sum(f.numel for f in self._facts.values())
        return {"unit": met[0], "sparsity": pruned / total}

    def _quantization(self) -> dict[str, Any]:
        bits = int(self.method.level)
        group_size = getattr(self.method.params, "group_size", None)
        worst = max(self._distinct, key=self._distinct.__getitem__)
        if self._distinct[worst] > 2**bits:
            unit = "row" if group_size is None else f"group of {group_size} columns"
            raise MethodError(
                f"{_label(self.method)} missed its level: expected at most 2**{bits} = {2**bits} distinct values "
                f"per {unit}; measured {self._distinct[worst]} in {worst}"
            )
        return {"bits": bits, "group_size": group_size, "max_distinct_per_group": self._distinct[worst]}

    def _lowrank(self) -> dict[str, Any]:
        for name, (rank, kept, _) in self._ranks.items():
            if rank > kept:
                raise MethodError(
                    f"{_label(self.method)} missed its level: expected rank at most {kept} for {name}; "
                    f"measured rank {rank}"
                )
        return {"rank_fraction": max(rank / width for rank, _, width in self._ranks.values())}
