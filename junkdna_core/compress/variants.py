"""Method variants: a compression method with some of its options fixed, as one ``--jd-methods`` entry names it.

``magnitude[scope=global]`` is the variant of ``magnitude`` whose ``scope`` is
``global``. Option values are typed by the fields of the method's parameter
dataclass (``int``, ``float``, ``bool``, ``str``, a ``Literal`` or ``X | None``);
the level field (``sparsity``, ``bits``, ...) is the sweep variable and cannot
be fixed. A variant is configured at each level of its sweep with
:meth:`MethodVariant.at_level`, which hands the run's seed to a method whose
parameters have a ``seed`` field unless the spec (or the code) sets one.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from junkdna_core.compress.base import CompressionMethod
from junkdna_core.compress.registry import get_method
from junkdna_core.config.errors import ConfigError
from junkdna_core.config.method_specs import MethodSpec, parse_method_spec

SEED_FIELD = "seed"
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def type_name(hint: Any) -> str:
    """A parameter's type as users read it: ``int``, ``int | None``, ``'row' | 'layer' | 'global'``."""
    if isinstance(hint, str):
        return hint
    if typing.get_origin(hint) is Literal:
        return " | ".join(repr(v) for v in typing.get_args(hint))
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " | ".join("None" if a is type(None) else type_name(a) for a in typing.get_args(hint))
    return getattr(hint, "__name__", str(hint))


def _hints(params_type: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(params_type)
    except Exception:  # noqa: BLE001 - an annotation that does not resolve is shown as written
        return {f.name: f.type for f in dataclasses.fields(params_type)}


def describe_params(params_type: type) -> str:
    """``name: type = default, ...`` of a parameter dataclass (``junkdna methods``, option errors)."""
    hints = _hints(params_type)
    parts = []
    for f in dataclasses.fields(params_type):
        default = "" if f.default is dataclasses.MISSING else f" = {f.default!r}"
        parts.append(f"{f.name}: {type_name(hints.get(f.name, f.type))}{default}")
    return ", ".join(parts)


def format_value(value: Any) -> str:
    """An option value as it is written in a spec: ``true``, ``none``, ``4``, ``0.5``, ``global``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    return repr(value) if isinstance(value, float) else str(value)


def _convert(text: str, hint: Any) -> Any:
    """``text`` as a value of type ``hint``; ValueError if it is not one."""
    origin = typing.get_origin(hint)
    if origin is Literal:
        for allowed in typing.get_args(hint):
            if format_value(allowed) == text or (not isinstance(allowed, str) and _try(text, type(allowed)) == allowed):
                return allowed
        raise ValueError
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if type(None) in args and text.lower() in ("none", "null"):
            return None
        for arg in args:
            if arg is not type(None):
                try:
                    return _convert(text, arg)
                except ValueError:
                    continue
        raise ValueError
    if hint is bool:
        if text.lower() in _TRUE + _FALSE:
            return text.lower() in _TRUE
        raise ValueError
    if hint is int:
        return int(text)
    if hint is float:
        value = float(text)
        if not math.isfinite(value):
            raise ValueError
        return value
    if hint is str:
        return text
    raise TypeError(f"a parameter of type {type_name(hint)} cannot be set from the command line")


def _try(text: str, kind: type) -> Any:
    try:
        return _convert(text, kind)
    except (ValueError, TypeError):
        return None


@dataclass(frozen=True)
class MethodVariant:
    """A method class with options fixed: ``label`` in records and messages, ``spec`` to name it again.

    ``source`` is the name or ``module:Class`` the spec gave; ``options`` are
    typed values in the order of the parameter dataclass's fields.
    """

    cls: type[CompressionMethod]
    source: str
    options: tuple[tuple[str, Any], ...] = ()

    def _suffix(self) -> str:
        return f"[{','.join(f'{k}={format_value(v)}' for k, v in self.options)}]" if self.options else ""

    @property
    def label(self) -> str:
        """``name`` or ``name[key=value,...]``: the method as records, messages and test ids name it."""
        return self.cls.name + self._suffix()

    @property
    def spec(self) -> str:
        """The spec text that resolves to this variant (what a benchmark passes to ``jd_study``)."""
        return self.source + self._suffix()

    def at_level(self, level: float, *, run_seed: int | None = None, **options: Any) -> CompressionMethod:
        """The method configured at ``level`` with this variant's options plus ``options`` (set in code).

        ``run_seed`` (--jd-seed) goes to a ``seed`` parameter that neither the spec nor ``options`` set.
        """
        given = dict(self.options)
        twice = sorted(set(given) & set(options))
        if twice:
            raise ConfigError(f"{self.label}: option {', '.join(twice)} is set by the method spec and again in code")
        given.update(options)
        fields = {f.name for f in dataclasses.fields(self.cls.params_type)}
        if run_seed is not None and SEED_FIELD in fields and SEED_FIELD not in given:
            given[SEED_FIELD] = run_seed
        return self.cls.at_level(level, **given)

    def check_levels(self, levels: Iterable[float], *, run_seed: int | None = None) -> None:
        """Raise ConfigError naming this variant and the level if it cannot be configured at one of ``levels``."""
        for level in levels:
            try:
                self.at_level(level, run_seed=run_seed)
            except ConfigError as exc:
                raise ConfigError(f"{self.spec}: at {self.cls.level_name} {level:g}: {exc}") from None

    def effective_options(self) -> frozenset[tuple[str, Any]]:
        """The options that differ from the parameter defaults (two variants equal in these are the same)."""
        defaults = {f.name: f.default for f in dataclasses.fields(self.cls.params_type)}
        return frozenset((k, v) for k, v in self.options if defaults.get(k, dataclasses.MISSING) != v)


def _allowed(cls: type[CompressionMethod]) -> str:
    hints = _hints(cls.params_type)
    shown = [f"{f.name}: {type_name(hints.get(f.name, f.type))}" for f in dataclasses.fields(cls.params_type)
             if f.name != cls.level_name]
    return ", ".join(shown) or "none"


def resolve_variant(spec: MethodSpec | str) -> MethodVariant:
    """The variant a spec names, its option values typed; ConfigError listing the allowed options and types."""
    spec = spec if isinstance(spec, MethodSpec) else parse_method_spec(spec)
    cls = get_method(spec.name)
    hints = _hints(cls.params_type)
    order = [f.name for f in dataclasses.fields(cls.params_type)]
    typed: dict[str, Any] = {}
    for key, text in spec.options:
        if key == cls.level_name:
            raise ConfigError(
                f"{spec.text}: {key} is the level {cls.name} is swept over, not an option; choose levels with "
                f"--jd-sparsities (pruning methods) or the budget's (see `junkdna methods`)")
        if key not in hints:
            raise ConfigError(f"{spec.text}: {cls.name} has no option {key!r}; its options are {_allowed(cls)}")
        try:
            typed[key] = _convert(text, hints[key])
        except ValueError:
            raise ConfigError(f"{spec.text}: option {key} of {cls.name} takes {type_name(hints[key])}; "
                              f"got {text!r}") from None
        except TypeError as exc:
            raise ConfigError(f"{spec.text}: option {key}: {exc}") from None
    return MethodVariant(cls, spec.name, tuple((k, typed[k]) for k in order if k in typed))


def check_distinct(variants: Sequence[MethodVariant]) -> None:
    """Raise ConfigError if two variants configure the same method alike, or share a label."""
    seen: dict[Any, MethodVariant] = {}
    labels: dict[str, MethodVariant] = {}
    for variant in variants:
        key = (variant.cls, variant.effective_options())
        if key in seen:
            raise ConfigError(f"{seen[key].spec} and {variant.spec} configure the same method "
                              "(an option equal to its default changes nothing); give one of them")
        if variant.label in labels:
            raise ConfigError(f"{labels[variant.label].spec} and {variant.spec} are both called {variant.label!r}; "
                              "records could not tell them apart")
        seen[key] = labels[variant.label] = variant
