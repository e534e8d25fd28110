"""Conformance kit: the rules every compression method keeps, checked against any method class.

Three ways in:

- ``check_method(MyMethod)`` returns the list of :class:`Problem` found (empty when
  the method conforms); ``assert_conforms(MyMethod)`` raises :class:`ConformanceError`
  listing every one.
- ``conformance_cases(MyMethod)`` yields ``(rule, callable)`` pairs for
  ``pytest.mark.parametrize``; a callable raises ConformanceError on a broken rule
  and calls ``pytest.skip`` when the rule does not apply to the method's family.
- ``pytest --jd-conformance mymethod,other,package.module:Class`` (the junkdna
  pytest plugin) adds one test per rule per method to the run, named
  ``jd-conformance::<method>::<rule>``, and exits non-zero naming the method and
  the broken rule. The kit's tests are added to whatever else the run collects;
  run it from a directory without tests (or add ``-k jd-conformance``) to run it alone.

Rules, checked on small synthetic weight matrices (one with heavy ties, one
bfloat16) and synthetic calibration statistics, at the method's full-budget
default levels unless ``levels`` is given (weakest first):

``attributes``
    A CompressionMethod subclass with a lower-case ``name``, a non-empty
    ``version`` string (part of every cache key), a frozen dataclass
    ``params_type``, a known ``family``, a ``level_name`` (``sparsity`` for
    pruning, which ``--jd-sparsities`` sweeps), a bool ``needs_calibration`` and
    a ``statistics`` tuple naming what ``compress`` reads from its LayerStats
    (``gram`` and/or ``input_norms``; calibrated methods are handed only those).
``levels``
    ``default_levels`` of both budgets: non-empty, finite, no repeats, weakest
    first (sparsity ascending; bits and rank descending); each configures via
    ``at_level`` to a method reporting that level and a JSON-ready ``describe()``.
``results``
    ``compress`` returns a LayerResult for exactly the keys given, with a bool
    mask and/or a finite weight of the input's shape and dtype; pruning
    methods return a mask (it is held through fine-tuning).
``inputs-unchanged``
    ``compress`` leaves the weights and the statistics it was given untouched.
``exact-sparsity`` (pruning)
    The masks prune exactly ``round(s * n)`` weights, ties included, counted in
    one unit: per layer (n = the layer's size), per row (n = in_features, in
    every output row) or per group (n = all layers of one ``compress`` call,
    for global scopes). A method may narrow this by declaring the class
    attribute ``sparsity_unit = "layer" | "row" | "group"``; without it any
    of the three is accepted.
``deterministic``
    A freshly configured method gives identical results on identical inputs.
``invalid-config``
    ``at_level`` raises ConfigError naming the value given for invalid levels
    (sparsity -0.1, 1.0, nan; bits 0, -1, nan; rank 0.0, -0.1, nan) and for an
    unknown option, so nothing is computed with a bad configuration.
``lossier-when-stronger`` (quantization, low rank)
    The strongest level changes the weights, and at least as much as the weakest.
``whole-model``
    ``compress_model`` runs on a tiny random Llama (hidden size 64, so the
    default quantization group size 64 divides every layer) with calibration
    token ids at the strongest level: every target compressed, nothing else
    touched, finite logits, and for pruning the masks keep the sparsity rule.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, get_args

import pytest
import torch

from junkdna_core.compress.base import (
    STATISTICS,
    CompressionMethod,
    Family,
    LayerResult,
    LayerStats,
    MethodParams,
    declared_statistics,
)
from junkdna_core.compress.registry import import_spec, load_registered
from junkdna_core.compress.verify import SPARSITY_UNITS, sparsity_problem
from junkdna_core.config.budgets import BUDGETS
from junkdna_core.config.errors import ConfigError

FAMILIES: tuple[str, ...] = get_args(Family)
INVALID_LEVELS: dict[str, tuple[float, ...]] = {
    "pruning": (-0.1, 1.0, math.nan),
    "quantization": (0, -1, math.nan),
    "lowrank": (0.0, -0.1, math.nan),
}
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]*")
_TIED_LAYER = "block.self_attn.q_proj"
_CALIBRATION_TOKENS = 96


@dataclass(frozen=True)
class Problem:
    """One broken rule: which method, which rule, and what was wrong."""

    method: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.method} breaks rule '{self.rule}': {self.message}"


class ConformanceError(AssertionError):
    """A method broke one or more conformance rules; the message lists every problem."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class _NotApplicable(Exception):
    """The rule does not apply to this method (e.g. exact sparsity for a quantizer)."""


def method_label(method_cls: Any) -> str:
    """``name (module:Class)`` of a method class, or just ``module:Class`` when it has no usable name."""
    path = f"{getattr(method_cls, '__module__', '?')}:{getattr(method_cls, '__qualname__', repr(method_cls))}"
    name = getattr(method_cls, "name", None)
    return f"{name} ({path})" if isinstance(name, str) and name else path


def resolve_method(spec: str) -> type:
    """The class named by ``spec``: a ``junkdna.methods`` entry-point name or ``package.module:Class``.

    Unlike the registry this does not validate the class (that is the kit's job),
    so a broken plugin can still be checked and its problems reported.
    """
    spec = str(spec).strip()
    obj = import_spec(spec) if ":" in spec else load_registered(spec)
    if not isinstance(obj, type):
        raise ConfigError(f"method {spec!r} is not a class (got {obj!r})")
    return obj


def parse_conformance_names(text: str) -> tuple[str, ...]:
    """Comma-separated method names or ``module:Class`` specs, each resolving to a class, no repeats."""
    names = tuple(part.strip() for part in str(text).split(",") if part.strip())
    if not names:
        raise ConfigError(f"expected a comma-separated list of method names or module:Class; got {text!r}")
    if len(set(names)) != len(names):
        raise ConfigError(f"method list {text!r} names a method twice")
    for name in names:
        resolve_method(name)
    return names


# --- synthetic inputs -------------------------------------------------------------------------


def _sample_weights() -> dict[str, torch.Tensor]:
    """Three small weights: heavy ties (five values, zeros included), spread float32, bfloat16."""
    g = torch.Generator().manual_seed(0)
    return {
        _TIED_LAYER: torch.randint(-2, 3, (8, 64), generator=g).float(),
        "block.mlp.up_proj": torch.randn(16, 64, generator=g),
        "block.mlp.down_proj": torch.randn(8, 128, generator=g).to(torch.bfloat16),
    }


def _sample_stats(weights: Mapping[str, torch.Tensor], statistics: frozenset[str]) -> dict[str, LayerStats]:
    """Input statistics per weight, only those in ``statistics`` (as the runner collects them).

    The tied layer's inputs all have equal norms, so its ties stay tied.
    """
    g = torch.Generator().manual_seed(1)
    stats = {}
    for name, weight in weights.items():
        cols = weight.shape[1]
        if name == _TIED_LAYER:
            gram = torch.eye(cols) * _CALIBRATION_TOKENS
        else:
            x = torch.randn(_CALIBRATION_TOKENS, cols, generator=g)
            gram = x.T @ x
        if "gram" in statistics:
            stats[name] = LayerStats(gram=gram, tokens=_CALIBRATION_TOKENS, layer=name)
        else:
            stats[name] = LayerStats(squares=torch.diagonal(gram).clone(), tokens=_CALIBRATION_TOKENS, layer=name)
    return stats


def _tiny_llama() -> torch.nn.Module:
    """A 2-block random Llama in eval mode, built without touching the global RNG."""
    import transformers

    from junkdna_core.models.synthetic import tiny_llama_config

    # hidden 64, so the default quantization group size (64) divides every layer
    config = tiny_llama_config(128, hidden_size=64, intermediate_size=128, max_position_embeddings=64,
                               tie_word_embeddings=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return transformers.LlamaForCausalLM(config).eval()


def _calibration_ids() -> torch.Tensor:
    return torch.randint(0, 128, (4, 16), generator=torch.Generator().manual_seed(2))


# --- the method under test ----------------------------------------------------------------------


class _Subject:
    """One method class under test, with its levels and cached compress results per level."""

    def __init__(self, method_cls: type, levels: Sequence[float] | None) -> None:
        self.cls = method_cls
        self.label = method_label(method_cls)
        self._levels = None if levels is None else tuple(levels)
        self._results: dict[float, dict[str, LayerResult]] = {}

    @functools.cached_property
    def levels(self) -> tuple[float, ...]:
        """The levels checked, weakest first: the given ones or the full budget's defaults."""
        return self._levels if self._levels is not None else tuple(self.cls.default_levels(BUDGETS["full"]))

    @property
    def family(self) -> Any:
        return getattr(self.cls, "family", None)

    def stats_for(self, weights: Mapping[str, torch.Tensor]) -> dict[str, LayerStats] | None:
        """Calibration statistics for calibrated methods, None for data-free ones (as the runner does)."""
        if not getattr(self.cls, "needs_calibration", False):
            return None
        return _sample_stats(weights, declared_statistics(self.cls))

    def compress(self, level: float) -> dict[str, LayerResult]:
        """A fresh configuration's result on fresh synthetic inputs."""
        weights = _sample_weights()
        method = self.cls.at_level(level)
        return method.compress(weights, self.stats_for(weights))

    def results(self, level: float) -> dict[str, LayerResult]:
        """:meth:`compress` at ``level``, computed once."""
        if level not in self._results:
            self._results[level] = self.compress(level)
        return self._results[level]

    def masks(self, level: float) -> dict[str, torch.Tensor]:
        """The bool masks of :meth:`results`; raises if one is unusable (the ``results`` rule says why)."""
        weights, results = _sample_weights(), self.results(level)
        masks = {}
        for name, weight in weights.items():
            mask = getattr(results.get(name), "mask", None) if isinstance(results, Mapping) else None
            if not _is_mask_for(mask, weight):
                raise _Unusable(f"no usable bool mask for {name} at {self.level_text(level)} (see rule 'results')")
            masks[name] = mask
        return masks

    def level_text(self, level: float) -> str:
        return f"{getattr(self.cls, 'level_name', 'level')}={level!r}"


class _Unusable(Exception):
    """A result another rule already reports as malformed, so this rule cannot be checked."""


def _is_mask_for(mask: Any, weight: torch.Tensor) -> bool:
    return isinstance(mask, torch.Tensor) and mask.dtype == torch.bool and mask.shape == weight.shape


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# --- rules --------------------------------------------------------------------------------------


def _check_attributes(s: _Subject) -> Iterator[str]:
    cls = s.cls
    if not (isinstance(cls, type) and issubclass(cls, CompressionMethod)):
        yield f"{cls!r} is not a subclass of junkdna_core.compress.base.CompressionMethod"
        return
    if inspect.isabstract(cls):
        yield f"does not implement {', '.join(sorted(cls.__abstractmethods__))}"
    name = getattr(cls, "name", None)
    if not (isinstance(name, str) and NAME_PATTERN.fullmatch(name)):
        yield f"name must be lower-case letters, digits, '-', '_' or '.' (used in test ids and lists); got {name!r}"
    version = getattr(cls, "version", None)
    if not (isinstance(version, str) and version.strip()):
        yield ("version must be a non-empty string (part of every cache key; bump it when results change); "
               f"got {version!r}")
    params_type = getattr(cls, "params_type", None)
    frozen_dataclass = (
        isinstance(params_type, type)
        and issubclass(params_type, MethodParams)
        and "__dataclass_fields__" in vars(params_type)
        and params_type.__dataclass_params__.frozen
    )
    if not frozen_dataclass:
        yield f"params_type must be a MethodParams subclass decorated with @dataclass(frozen=True); got {params_type!r}"
    family = getattr(cls, "family", None)
    if family not in FAMILIES:
        yield f"family must be one of {', '.join(FAMILIES)}; got {family!r}"
    level_name = getattr(cls, "level_name", None)
    if not (isinstance(level_name, str) and level_name):
        yield f"level_name must be a non-empty string naming the level's parameter; got {level_name!r}"
    elif family == "pruning" and level_name != "sparsity":
        yield ("a pruning method's level is a sparsity (swept by --jd-sparsities): level_name must be 'sparsity'; "
               f"got {level_name!r}")
    if not isinstance(getattr(cls, "needs_calibration", None), bool):
        yield f"needs_calibration must be True or False; got {getattr(cls, 'needs_calibration', None)!r}"
    statistics = getattr(cls, "statistics", None)
    if isinstance(statistics, str) or not (
        isinstance(statistics, (tuple, list, frozenset, set)) and statistics and set(statistics) <= set(STATISTICS)
    ):
        yield f"statistics must be a non-empty tuple of {', '.join(map(repr, STATISTICS))}; got {statistics!r}"
    unit = getattr(cls, "sparsity_unit", None)
    if unit is not None and unit not in SPARSITY_UNITS:
        yield f"sparsity_unit, when set, must be one of {', '.join(SPARSITY_UNITS)}; got {unit!r}"


def _levels_order_problem(family: Any, levels: tuple[Any, ...]) -> str | None:
    if not levels or not all(_is_number(v) for v in levels):
        return f"must be a non-empty tuple of finite numbers; got {levels!r}"
    if len(set(levels)) != len(levels):
        return f"repeat a level: {levels!r}"
    ascending = family == "pruning"
    ordered = sorted(levels, reverse=not ascending)
    if list(levels) != ordered:
        direction = "ascending sparsity" if ascending else "descending bits or rank"
        return f"must be ordered weakest first ({direction}); got {levels!r}"
    if family == "pruning" and not all(0 <= v < 1 for v in levels):
        return f"sparsities must lie in [0, 1); got {levels!r}"
    return None


def _check_levels(s: _Subject) -> Iterator[str]:
    for budget in BUDGETS.values():
        levels = s.cls.default_levels(budget)
        levels = tuple(levels) if isinstance(levels, (tuple, list)) else levels
        problem = _levels_order_problem(s.family, levels) if isinstance(levels, tuple) else f"got {levels!r}"
        if problem:
            yield f"default_levels(BUDGETS[{budget.name!r}]) {problem}"
            continue
        for level in levels:
            yield from _level_roundtrip(s, level, budget)


def _level_roundtrip(s: _Subject, level: float, budget: str) -> Iterator[str]:
    where = f"at_level({level!r}) (a default level of budget {budget!r})"
    try:
        method = s.cls.at_level(level)
    except Exception as exc:  # noqa: BLE001 - any failure of a default level is reported
        yield f"{where} raised {type(exc).__name__}: {exc}"
        return
    if type(method) is not s.cls:
        yield f"{where} returned {type(method).__name__}, not {s.cls.__name__}"
        return
    if not math.isclose(method.level, level, rel_tol=1e-9, abs_tol=1e-9):
        yield f"{where}.level is {method.level!r}, not {level!r}"
    description = method.describe()
    try:
        json.dumps(description)
    except (TypeError, ValueError) as exc:
        yield f"{where}.describe() is not JSON-ready (it goes into cache keys): {exc}"
    if description.get("version") != getattr(s.cls, "version", None):
        yield f"{where}.describe() reports version {description.get('version')!r}, not the class's"


def _check_results(s: _Subject) -> Iterator[str]:
    weights = _sample_weights()
    for level in s.levels:
        results = s.results(level)
        at = s.level_text(level)
        if not isinstance(results, Mapping):
            yield f"compress at {at} returned {type(results).__name__}, not a dict of LayerResult"
            continue
        missing, extra = sorted(set(weights) - set(results)), sorted(set(results) - set(weights))
        if missing or extra:
            yield f"compress at {at} must return one result per input key; missing {missing}, unexpected {extra}"
        for name in sorted(set(weights) & set(results)):
            yield from (f"{name} at {at}: {m}" for m in _result_problems(s, weights[name], results[name]))


def _result_problems(s: _Subject, weight: torch.Tensor, result: Any) -> Iterator[str]:
    if not isinstance(result, LayerResult):
        yield f"got {type(result).__name__}, not a LayerResult"
        return
    shape = tuple(weight.shape)
    if result.mask is None and result.weight is None:
        yield "LayerResult has neither a mask nor a weight"
    if result.mask is not None and not _is_mask_for(result.mask, weight):
        got = (tuple(result.mask.shape), result.mask.dtype) if isinstance(result.mask, torch.Tensor) else result.mask
        yield f"mask must be a bool tensor of shape {shape}; got {got!r}"
    if s.family == "pruning" and result.mask is None:
        yield "a pruning method must return a keep-mask (it is held through fine-tuning)"
    if result.weight is not None:
        new = result.weight
        if not isinstance(new, torch.Tensor) or tuple(new.shape) != shape or new.dtype != weight.dtype:
            got = (tuple(new.shape), new.dtype) if isinstance(new, torch.Tensor) else new
            yield f"weight must be a tensor of shape {shape} and dtype {weight.dtype}; got {got!r}"
        elif not bool(torch.isfinite(new).all()):
            yield "weight contains NaN or inf"


def _check_inputs_unchanged(s: _Subject) -> Iterator[str]:
    for level in s.levels:
        weights = _sample_weights()
        stats = s.stats_for(weights)
        before_w = {n: w.clone() for n, w in weights.items()}
        before_s = {n: _stats_tensor(st).clone() for n, st in (stats or {}).items()}
        s.cls.at_level(level).compress(weights, stats)
        changed = [n for n in weights if not torch.equal(weights[n], before_w[n])]
        changed += [f"stats[{n!r}]" for n in before_s if not torch.equal(_stats_tensor(stats[n]), before_s[n])]
        if changed:
            yield f"compress at {s.level_text(level)} modified its inputs: {', '.join(changed)}"


def _stats_tensor(stats: LayerStats) -> torch.Tensor:
    """The tensor a LayerStats holds: its Gram matrix, or its sums of squares."""
    return stats.gram if stats.has_gram else stats.input_norms


def _units_of(s: _Subject) -> tuple[str, ...]:
    declared = getattr(s.cls, "sparsity_unit", None)
    return (declared,) if declared in SPARSITY_UNITS else SPARSITY_UNITS


def _check_exact_sparsity(s: _Subject) -> Iterator[str]:
    if s.family != "pruning":
        raise _NotApplicable("exact sparsity applies to pruning methods")
    units = _units_of(s)
    failed = [
        (level, problem) for level in s.levels if (problem := sparsity_problem(s.masks(level), level, units=units))
    ]
    if failed:
        others = [level for level, _ in failed[1:]]
        yield failed[0][1] + (f" (also wrong at sparsity {', '.join(map(repr, others))})" if others else "")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    return a is None and b is None


def _check_deterministic(s: _Subject) -> Iterator[str]:
    for level in s.levels:
        first, second = s.results(level), s.compress(level)
        differ = [
            name
            for name in sorted(set(first) | set(second))
            if not (
                name in first
                and name in second
                and _same(first[name].mask, second[name].mask)
                and _same(first[name].weight, second[name].weight)
            )
        ]
        if differ:
            yield f"two runs at {s.level_text(level)} on identical inputs differ for {', '.join(differ)}"


def _check_invalid_config(s: _Subject) -> Iterator[str]:
    bad_levels = INVALID_LEVELS.get(s.family, ())
    for level in bad_levels:
        yield from _rejects(s, f"at_level({level!r})", lambda lv=level: s.cls.at_level(lv), str(level))
    strongest = s.levels[-1]
    option = "no_such_option"
    yield from _rejects(
        s, f"at_level({strongest!r}, {option}=1)", lambda: s.cls.at_level(strongest, **{option: 1}), option
    )


def _rejects(s: _Subject, call: str, configure: Callable[[], Any], named: str) -> Iterator[str]:
    try:
        configure()
    except ConfigError as exc:
        if named not in str(exc):
            yield f"{call} raised ConfigError whose message does not name the value given ({named}): {exc}"
        return
    except Exception as exc:  # noqa: BLE001 - the wrong exception type is the problem reported
        yield f"{call} raised {type(exc).__name__} ({exc}); invalid configurations must raise junkdna ConfigError"
        return
    yield f"{call} was accepted; invalid configurations must raise ConfigError before any compute"


def _weight_error(s: _Subject, level: float) -> float:
    """Relative Frobenius change of all sample weights at ``level``."""
    weights, results = _sample_weights(), s.results(level)
    change = total = 0.0
    for name, w in weights.items():
        result = results[name]
        new = (w if result.weight is None else result.weight).float()
        if result.mask is not None:
            new = new * result.mask
        change += float(torch.linalg.norm(new - w.float()) ** 2)
        total += float(torch.linalg.norm(w.float()) ** 2)
    return math.sqrt(change / total)


def _check_lossier_when_stronger(s: _Subject) -> Iterator[str]:
    if s.family == "pruning":
        raise _NotApplicable("pruning strength is checked by exact-sparsity")
    weakest, strongest = s.levels[0], s.levels[-1]
    errors = {level: _weight_error(s, level) for level in (weakest, strongest)}
    if errors[strongest] == 0:
        yield f"at its strongest level ({s.level_text(strongest)}) the method leaves every weight unchanged"
    elif errors[strongest] < errors[weakest]:
        yield (
            f"the strongest level changes the weights less (relative error {errors[strongest]:.3g} at "
            f"{s.level_text(strongest)}) than the weakest ({errors[weakest]:.3g} at {s.level_text(weakest)})"
        )


def _check_whole_model(s: _Subject) -> Iterator[str]:
    from junkdna_core.compress.runner import compress_model
    from junkdna_core.compress.targets import find_targets

    model = _tiny_llama()
    dense = {name: p.detach().clone() for name, p in model.named_parameters()}
    targets = find_targets(model)
    level = s.levels[-1]
    report = compress_model(model, s.cls.at_level(level), calibration=_calibration_ids(), progress=False)
    names = [t.name for t in targets]
    if list(report.targets) != names:
        yield f"compressed targets {list(report.targets)}, expected {names}"
    touched = [
        n for n, p in model.named_parameters() if n.rsplit(".", 1)[0] not in names and not torch.equal(p, dense[n])
    ]
    if touched:
        yield f"changed parameters outside the targets: {', '.join(touched)}"
    with torch.no_grad():
        logits = model(_calibration_ids()).logits
    if not bool(torch.isfinite(logits).all()):
        yield f"the compressed model's logits contain NaN or inf at {s.level_text(level)}"
    if s.family == "pruning":
        yield from _whole_model_sparsity(s, report.masks, targets, report.groups, level)
    elif all(torch.equal(model.get_submodule(n).weight, dense[f"{n}.weight"]) for n in names):
        yield f"no target weight changed at {s.level_text(level)}"


def _whole_model_sparsity(
    s: _Subject, masks: Mapping[str, torch.Tensor], targets: Sequence[Any], groups: Sequence[Sequence[str]],
    level: float,
) -> Iterator[str]:
    missing = [t.name for t in targets if t.name not in masks]
    if missing:
        yield f"the run kept no mask for {', '.join(missing)}"
        return
    problem = sparsity_problem({t.name: masks[t.name] for t in targets}, level, groups=groups, units=_units_of(s))
    if problem:
        yield f"on the tiny Llama: {problem}"


CHECKS: dict[str, Callable[[_Subject], Iterator[str]]] = {
    "attributes": _check_attributes,
    "levels": _check_levels,
    "results": _check_results,
    "inputs-unchanged": _check_inputs_unchanged,
    "exact-sparsity": _check_exact_sparsity,
    "deterministic": _check_deterministic,
    "invalid-config": _check_invalid_config,
    "lossier-when-stronger": _check_lossier_when_stronger,
    "whole-model": _check_whole_model,
}
RULES: tuple[str, ...] = tuple(CHECKS)


# --- entry points -------------------------------------------------------------------------------


def _run_rule(subject: _Subject, rule: str) -> list[Problem]:
    """The problems one rule finds; raises _NotApplicable when it does not apply."""
    is_method = isinstance(subject.cls, type) and issubclass(subject.cls, CompressionMethod)
    if rule != "attributes" and not is_method:
        raise _NotApplicable("not a CompressionMethod subclass (see rule 'attributes')")
    messages: list[str] = []
    try:
        for message in CHECKS[rule](subject):  # a loop, so messages before an exception are kept
            messages.append(message)  # noqa: PERF402
    except _NotApplicable:
        raise
    except _Unusable as exc:
        messages.append(str(exc))
    except ConfigError as exc:
        messages.append(f"raised ConfigError on a valid configuration: {exc}")
    except Exception as exc:  # noqa: BLE001 - a broken method is reported by rule, not a kit crash
        messages.append(f"raised {type(exc).__name__}: {exc}")
    return [Problem(subject.label, rule, m) for m in messages]


def _checked_levels(levels: Sequence[float] | None) -> Sequence[float] | None:
    if levels is not None and (isinstance(levels, str) or not levels or not all(_is_number(v) for v in levels)):
        raise ConfigError(f"levels must be a non-empty sequence of finite numbers, weakest first; got {levels!r}")
    return levels


def check_method(method_cls: type, *, levels: Sequence[float] | None = None) -> list[Problem]:
    """Every conformance problem of ``method_cls`` (empty when it conforms).

    ``levels`` (weakest first) default to the method's full-budget default levels.
    """
    subject = _Subject(method_cls, _checked_levels(levels))
    problems: list[Problem] = []
    for rule in RULES:
        try:
            problems += _run_rule(subject, rule)
        except _NotApplicable:
            continue
    return problems


def assert_conforms(method_cls: type, *, levels: Sequence[float] | None = None) -> None:
    """Raise ConformanceError listing every problem of ``method_cls``; return None when it conforms."""
    problems = check_method(method_cls, levels=levels)
    if problems:
        raise ConformanceError(problems)


def conformance_cases(
    method_cls: type, *, levels: Sequence[float] | None = None
) -> Iterator[tuple[str, Callable[[], None]]]:
    """``(rule, case)`` pairs, one per rule; ``case()`` raises ConformanceError or skips when not applicable.

    The cases share one subject, so results computed by one are reused by the next.
    """
    subject = _Subject(method_cls, _checked_levels(levels))

    def case_for(rule: str) -> Callable[[], None]:
        def case() -> None:
            try:
                problems = _run_rule(subject, rule)
            except _NotApplicable as exc:
                pytest.skip(f"{subject.label}: {exc}")
            if problems:
                raise ConformanceError(problems)

        return case

    for rule in RULES:
        yield rule, case_for(rule)


class ConformanceItem(pytest.Item):
    """One rule of the kit for one method, collected by ``--jd-conformance``."""

    def __init__(self, *, case: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case

    def runtest(self) -> None:
        self.case()

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        """The list of broken rules, without a traceback into the kit."""
        if isinstance(excinfo.value, ConformanceError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, self.name


class ConformanceSuite(pytest.Collector):
    """The kit's items for each method spec (registered name or ``module:Class``), in rule order."""

    def __init__(self, *, specs: Sequence[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.specs = tuple(specs)

    def collect(self) -> list[ConformanceItem]:
        items = []
        for spec in self.specs:
            for rule, case in conformance_cases(resolve_method(spec)):
                items.append(
                    ConformanceItem.from_parent(
                        self, name=f"{spec}-{rule}", nodeid=f"{self.nodeid}::{spec}::{rule}", case=case
                    )
                )
        return items


def conformance_items(session: pytest.Session, specs: Sequence[str]) -> list[pytest.Item]:
    """The kit's test items for ``specs``, collected through the session so they are counted and reported."""
    suite = ConformanceSuite.from_parent(session, name="jd-conformance", nodeid="jd-conformance", specs=specs)
    return list(session.genitems(suite))
