"""Typed run records (schema 2): what a run writes and what the leaderboard and compare read.

A run record is one JSON file per pytest run::

    {"schema": 2, "run_id": ..., "created": ISO time, "options": {...}, "environment": {...},
     "claims": [ClaimRecord, ...], "records": [free-form test records],
     "failed_compressions": [FailedCompression, ...], "extra": {...}}

``claims`` hold one :class:`ClaimRecord` per claim a test recorded (asserted or
informational); ``records`` hold whatever tests added with ``jd_record``;
``failed_compressions`` the compressions that failed (their tests recorded nothing);
``extra`` holds what plugins add through the ``pytest_junkdna_update_record``
hook. Every claim has a verdict — ``holds``, ``fails`` or ``undefined`` — that
follows from its :class:`Condition` s (Kleene's three-valued AND: fails when a
defined condition fails, else undefined when one is undefined, else holds), so
the direction a record shows is the one that decided. An undefined condition
carries no number; every defined one carries its interval.

:func:`load` reads any dataclass of this module from JSON, checking every field,
and :func:`dump` writes it; a value that does not fit is a :class:`RecordError`
naming the field (``claims[3].conditions[0].direction``). Records of schema 1
are upgraded on read by :mod:`junkdna_core.results.upgrade`.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar, Literal, Union, get_args, get_origin

from junkdna_core.config.errors import ConfigError

RECORD_SCHEMA = 2
READABLE_SCHEMAS = (1, 2)

Verdict = Literal["holds", "fails", "undefined"]
Direction = Literal[">=", ">", "<=", "<"]
DecidedBy = Literal["estimate", "interval"]
IntervalMethod = Literal["bootstrap over items", "bootstrap over items and random masks", "Student t over seeds"]
VERDICTS: tuple[str, ...] = get_args(Verdict)
STRENGTH_DIGITS = 6  # strengths are matched after rounding to this many digits (leaderboard, compare)


class RecordError(ConfigError):
    """A run record that does not fit the schema; the message names the file (when known) and the field."""

    def __init__(self, where: str, problem: str) -> None:
        self.where, self.problem = where, problem
        super().__init__(f"{where}: {problem}" if where else problem)

    def at(self, prefix: str) -> RecordError:
        """The same error, located under ``prefix`` (a file name or an enclosing field)."""
        if not self.where:
            return RecordError(prefix, self.problem)
        joint = "" if self.where.startswith("[") else "."
        return RecordError(f"{prefix}{joint}{self.where}", self.problem)


# --------------------------------------------------------------------------- claims


@dataclass(frozen=True)
class Interval:
    """A confidence interval of a statistic, and how it was obtained (resamples and seed of a bootstrap)."""

    low: float
    high: float
    confidence: float
    method: IntervalMethod
    resamples: int | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if not self.low <= self.high:
            raise RecordError("low", f"the interval's low end {self.low} lies above its high end {self.high}")
        if not 0 < self.confidence < 1:
            raise RecordError("confidence", f"must lie in (0, 1); got {self.confidence}")


@dataclass(frozen=True)
class Condition:
    """One inequality a claim needs: a statistic, or its interval, against a threshold.

    ``decided_by``: ``estimate`` compares the statistic itself; ``interval``
    compares the interval's end on the threshold's side (its low end for ``>``
    and ``>=``, its high end for ``<`` and ``<=``), so the whole interval must
    lie beyond the threshold. ``statistic`` None: undefined, with no interval
    and no p-value.
    """

    name: str
    statistic: float | None
    direction: Direction
    threshold: float
    decided_by: DecidedBy = "estimate"
    interval: Interval | None = None
    pvalue: float | None = None

    def __post_init__(self) -> None:
        if self.statistic is None and (self.interval is not None or self.pvalue is not None):
            raise RecordError("statistic", f"{self.name} is undefined (null) but carries an interval or a p-value")
        if self.statistic is not None and self.decided_by == "interval" and self.interval is None:
            raise RecordError("interval", f"{self.name} is decided by its interval but has none")

    @property
    def decisive(self) -> float | None:
        """The number compared with the threshold (None when undefined)."""
        if self.statistic is None or self.decided_by == "estimate" or self.interval is None:
            return self.statistic
        return self.interval.low if self.direction in (">", ">=") else self.interval.high

    def holds(self) -> bool | None:
        """Whether the condition holds; None when its statistic is undefined."""
        value = self.decisive
        if value is None:
            return None
        return {">=": value >= self.threshold, ">": value > self.threshold,
                "<=": value <= self.threshold, "<": value < self.threshold}[self.direction]

    def requirement(self) -> str:
        """What the condition needs, e.g. ``>= 0.8`` or ``interval > 0``."""
        what = "interval " if self.decided_by == "interval" else ""
        return f"{what}{self.direction} {self.threshold:g}"

    def describe(self) -> str:
        """``name = value [low, high], p=...`` (``name undefined`` when undefined)."""
        if self.statistic is None:
            return f"{self.name} undefined"
        ci = f" [{self.interval.low:.3f}, {self.interval.high:.3f}]" if self.interval else ""
        p = f", p={self.pvalue:.3g}" if self.pvalue is not None else ""
        return f"{self.name} = {self.statistic:.4f}{ci}{p}"


def verdict_of(conditions: tuple[Condition, ...]) -> Verdict:
    """The verdict of a claim needing every condition: fails if one fails, else undefined if one is, else holds."""
    outcomes = [c.holds() for c in conditions]
    if False in outcomes:
        return "fails"
    return "undefined" if None in outcomes else "holds"


@dataclass(frozen=True)
class Configuration:
    """One configuration of a swept method: what identifies it, its strength, and what was verified.

    ``strength``: the common axis of :mod:`junkdna_core.compress.strength` (0 = dense);
    ``measured``: what was verified after compression (``{"dense": true}`` for the
    dense point), None when the run did not verify it; ``more``: any other keys.
    """

    method: str
    version: str
    params: dict[str, Any]
    strength: float | None = None
    measured: dict[str, Any] | None = None
    more: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.measured is not None and not self.measured:
            raise RecordError("measured", "must be null or a non-empty object of what was verified")


@dataclass(frozen=True)
class StudyProvenance:
    """One study a claim rests on: the method, its family, each configuration swept, the calibration data."""

    method: str
    family: str
    configurations: tuple[Configuration, ...]
    calibration: str | None = None
    more: dict[str, Any] = field(default_factory=dict)

    @property
    def measured(self) -> bool:
        """True when every configuration carries what was verified after compression."""
        return bool(self.configurations) and all(c.measured for c in self.configurations)


@dataclass(frozen=True)
class Provenance:
    """What a claim's numbers rest on: the model, the setting, the studies, the items, the seeds."""

    model_fingerprint: str
    setting_version: int
    levels: tuple[dict[str, Any], ...]
    studies: tuple[StudyProvenance, ...]
    items: dict[str, Any]
    model_parameters: int | None = None
    seed: int | None = None
    training_seeds: tuple[int, ...] | None = None
    more: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.studies:
            raise RecordError("studies", "a claim rests on at least one study")


# --------------------------------------------------------------------------- details, one kind per claim family


def _same_levels(where: str, expected: Mapping[str, Any], given: Mapping[str, Any]) -> None:
    if set(expected) != set(given):
        raise RecordError(where, f"needs one entry per level {sorted(expected)}; got {sorted(given)}")


@dataclass(frozen=True)
class CurveDetails:
    """Drop vs compression strength per level (the monotonic and lowrank claims, setting 1)."""

    kind: ClassVar[str] = "curve"
    strengths: tuple[float, ...]
    drops: dict[str, tuple[float, ...]]
    difficulty: dict[str, float]
    dense: dict[str, float]
    spearman: dict[str, float | None] = field(default_factory=dict)
    pvalue: dict[str, float | None] = field(default_factory=dict)
    weakest_level: str | None = None

    def __post_init__(self) -> None:
        _same_levels("difficulty", self.drops, self.difficulty)
        for level, drops in self.drops.items():
            if len(drops) != len(self.strengths):
                raise RecordError(f"drops.{level}", f"needs one drop per strength ({len(self.strengths)}); "
                                                    f"got {len(drops)}")

    @property
    def easiest(self) -> str:
        """The least difficult level."""
        return min(self.difficulty, key=self.difficulty.__getitem__)

    @property
    def hardest(self) -> str:
        """The most difficult level."""
        return max(self.difficulty, key=self.difficulty.__getitem__)

    def retention(self, level: str) -> dict[float, float]:
        """Retention (1 + normalized drop) of ``level`` at each strength, keyed by rounded strength."""
        return {round(s, STRENGTH_DIGITS): 1.0 + d for s, d in zip(self.strengths, self.drops[level])}


@dataclass(frozen=True)
class SlopeRecord:
    """One level's Theil–Sen slope of the drop vs strength, its bootstrap interval and the drops it fits."""

    slope: float
    low: float
    high: float
    drops: tuple[float, ...]


@dataclass(frozen=True)
class SlopeGap:
    """``slope(hardest) - slope(easiest)`` with its paired bootstrap interval and p-value."""

    difference: float
    low: float
    high: float
    pvalue: float


@dataclass(frozen=True)
class SlopeDetails:
    """Per-level slopes of the drop vs strength (the difficulty claims)."""

    kind: ClassVar[str] = "slopes"
    drop: str
    difficulty: dict[str, float]
    slopes: dict[str, SlopeRecord]
    hard_minus_easy: SlopeGap
    dense: dict[str, float]
    ordering_spearman: float | None = None
    ordering_pvalue: float | None = None

    def __post_init__(self) -> None:
        _same_levels("slopes", self.difficulty, self.slopes)


@dataclass(frozen=True)
class QuantizationDetails:
    """Per-level monotonicity of pruning and quantization, and their gap; notes measured on the model."""

    kind: ClassVar[str] = "quantization"
    pruning_spearman: dict[str, float]
    quantization_spearman: dict[str, float]
    gap: dict[str, float]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class RandomControlDetails:
    """Magnitude vs random pruning at matched damage on the easiest level (see ``claims.random_control``).

    ``targets``: the easiest level's drops at which the methods are matched;
    ``strengths`` and ``hardest_drops``: per method, the strength reaching each
    target and the hardest level's drop there; ``usable_strengths``: per method,
    the strengths before its hardest level reaches the floor; ``masks``: the
    random masks' seeds, and ``per_mask`` the statistic against each mask alone.
    """

    kind: ClassVar[str] = "random-control"
    easiest_level: str
    hardest_level: str
    targets: tuple[float, ...]
    strengths: dict[str, tuple[float, ...]]
    hardest_drops: dict[str, tuple[float, ...]]
    usable_strengths: dict[str, tuple[float, ...]]
    masks: tuple[int, ...]
    per_mask: tuple[float, ...]
    floor_fraction: float
    dense: dict[str, float]


@dataclass(frozen=True)
class MeanGap:
    """A mean over seeds with its Student-t interval."""

    mean: float
    low: float
    high: float


@dataclass(frozen=True)
class TransferGapDetails:
    """Accuracy of the four transfer modes per level and seed, and the dense-minus-sparse gap (irreversible)."""

    kind: ClassVar[str] = "transfer-gap"
    sparsity: float
    difficulty: dict[str, float]
    accuracy: dict[str, dict[str, tuple[float, ...]]]
    gap: dict[str, MeanGap]
    gap_spearman_with_difficulty: float | None = None


@dataclass(frozen=True)
class PathRecord:
    """Loss and accuracy along one interpolation path between dense and sparse fine-tuned solutions."""

    level: str
    seed: int
    alphas: tuple[float, ...]
    loss: tuple[float, ...]
    accuracy: tuple[float, ...]


@dataclass(frozen=True)
class BarrierDetails:
    """Loss barriers per level and seed, and the paths they come from (lmc)."""

    kind: ClassVar[str] = "barrier"
    difficulty: dict[str, float]
    barrier: dict[str, tuple[float, ...]]
    paths: tuple[PathRecord, ...]


@dataclass(frozen=True)
class LegacyDetails:
    """Details of a schema-1 record that no schema-2 kind describes (kept verbatim, never plotted or ranked)."""

    kind: ClassVar[str] = "legacy"
    data: dict[str, Any]


ClaimDetails = (CurveDetails | SlopeDetails | QuantizationDetails | RandomControlDetails | TransferGapDetails
                | BarrierDetails | LegacyDetails)
DETAIL_KINDS: dict[str, type] = {cls.kind: cls for cls in get_args(ClaimDetails)}


@dataclass(frozen=True)
class ClaimRecord:
    """One claim measured on one (model, setting, method): verdict, conditions, details and provenance.

    ``asserted``: True when the test failed unless the claim held; False for a
    claim recorded for information only (the leaderboard and compare judge
    asserted claims only). ``reason`` says why a claim fails or is undefined
    (always given for ``undefined``). The first condition is the claim's
    headline statistic.
    """

    claim: str
    setting: str
    method: str
    model: str
    verdict: Verdict
    conditions: tuple[Condition, ...]
    provenance: Provenance
    details: ClaimDetails | None = None
    asserted: bool = True
    reason: str | None = None
    test: str | None = None

    def __post_init__(self) -> None:
        if not self.conditions:
            raise RecordError("conditions", "a claim needs at least one condition")
        derived = verdict_of(self.conditions)
        if self.verdict != derived:
            found = "; ".join(f"{c.describe()} needs {c.requirement()}" for c in self.conditions)
            raise RecordError("verdict", f"{self.verdict!r} disagrees with its conditions, which give "
                                         f"{derived!r} ({found})")
        if self.verdict == "undefined" and not self.reason:
            raise RecordError("reason", "an undefined claim must say why")
        if self.verdict != "undefined" and self.details is None:
            raise RecordError("details", f"a claim that {self.verdict.rstrip('s')}s needs its details")

    def check_intervals(self) -> None:
        """RecordError unless every defined condition has its interval (required of schema-2 records)."""
        missing = [c.name for c in self.conditions if c.statistic is not None and c.interval is None]
        if missing:
            raise RecordError("conditions", f"every defined condition needs an interval; {', '.join(missing)} "
                                            "has none")

    @property
    def key(self) -> tuple[str, str, str, str]:
        """(model, setting, method, claim): a newer run's record with the same key replaces an older one's."""
        return self.model, self.setting, self.method, self.claim

    @property
    def headline(self) -> Condition:
        """The claim's headline condition (its first)."""
        return self.conditions[0]

    @property
    def holds(self) -> bool:
        """True when the verdict is ``holds``."""
        return self.verdict == "holds"

    @property
    def family(self) -> str:
        """The family of the method the claim's (first) study swept."""
        return self.provenance.studies[0].family

    def message(self) -> str:
        """One line: the verdict first when undefined, what was measured, against what, and why."""
        where = f"{self.setting}-{self.method}-{self.model}"
        why = f" ({self.reason})" if self.reason else ""
        if self.verdict == "undefined":
            needs = "; ".join(f"{c.name} {c.requirement()}" for c in self.conditions)
            return f"undefined: {self.claim} for {where}{why}; it needs {needs}"
        verdict = "holds" if self.holds else "does NOT hold"
        measured = "; ".join(f"{c.describe()}; needs {c.requirement()}" for c in self.conditions)
        return f"{self.claim} {verdict} for {where}: {measured}{why}"


@dataclass(frozen=True)
class FailedCompression:
    """A compression that failed in a run: the model's fingerprint, the method's configuration
    (``describe()``), the error as the run reported it, and the tests that needed it."""

    model_fingerprint: str
    method: dict[str, Any]
    error: str
    tests: tuple[str, ...]


@dataclass(frozen=True)
class RunRecord:
    """One run record: the run's options and environment, its claims, free-form records and plugin extras.

    ``path`` (where it was read from) and ``read_schema`` (the schema of that
    file, 1 for an upgraded record) are not written.
    """

    run_id: str
    created: datetime
    options: dict[str, Any]
    environment: dict[str, Any]
    claims: tuple[ClaimRecord, ...] = ()
    records: tuple[dict[str, Any], ...] = ()
    failed_compressions: tuple[FailedCompression, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    path: Path | None = field(default=None, compare=False, metadata={"json": False})
    read_schema: int = field(default=RECORD_SCHEMA, compare=False, metadata={"json": False})

    def to_json(self) -> dict[str, Any]:
        """The JSON-ready body of the file (``schema`` first)."""
        return {"schema": RECORD_SCHEMA, **dump(self)}


# --------------------------------------------------------------------------- reading and writing dataclasses


def dump(value: Any) -> Any:
    """``value`` (a dataclass of this module, or containers of them) as JSON-ready data.

    Details get their ``kind``; a ``more`` field's keys are written beside the
    others; fields marked ``json: False`` are left out; datetimes become ISO text.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {"kind": value.kind} if type(value) in DETAIL_KINDS.values() else {}
        for f in dataclasses.fields(value):
            if not f.metadata.get("json", True):
                continue
            item = getattr(value, f.name)
            if f.name == "more":
                out.update(dump(item))
            else:
                out[f.name] = dump(item)
        return out
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): dump(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [dump(v) for v in value]
    return value


T = typing.TypeVar("T")


def load(cls: type[T], data: Any, where: str = "") -> T:
    """An instance of the dataclass ``cls`` from JSON ``data``, every field checked; RecordError naming the field."""
    return _load(cls, data, where)


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin in (tuple, list):
        return f"a list of {_type_name(get_args(tp)[0])}"
    if origin in (dict, Mapping) or tp is dict:
        return "an object"
    names = {str: "a string", int: "a whole number", float: "a number", bool: "true or false", Any: "any value"}
    return names.get(tp, f"an object ({getattr(tp, '__name__', tp)})")


def _fail(where: str, tp: Any, value: Any) -> RecordError:
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    return RecordError(where, f"expected {_type_name(tp)}; got {shown}")


def _load(tp: Any, value: Any, where: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        detail_kinds = [a for a in options if a in DETAIL_KINDS.values()]
        if detail_kinds:
            return _load_details(value, where)
        errors = []
        for option in (a for a in options if a is not type(None)):
            try:
                return _load(option, value, where)
            except RecordError as exc:
                errors.append(exc)
        deeper = [e for e in errors if e.where != where]  # a nested field failed: that is the error to show
        raise deeper[0] if deeper else _fail(where, tp, value)
    if origin is Literal:
        if value not in get_args(tp):
            raise _fail(where, tp, value)
        return value
    if origin in (tuple, list):
        if not isinstance(value, list):
            raise _fail(where, tp, value)
        item = get_args(tp)[0]
        return tuple(_load(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, dict):
            raise _fail(where, tp, value)
        item = get_args(tp)[1] if get_args(tp) else Any
        return {k: _load(item, v, f"{where}.{k}" if where else k) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise _fail(where, tp, value)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(where, tp, value)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise _fail(where, tp, value)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _fail(where, tp, value)
        return value
    if tp is datetime:
        try:
            when = datetime.fromisoformat(value)
        except (TypeError, ValueError):
            raise RecordError(where, f"expected an ISO time; got {value!r}") from None
        return when if when.tzinfo else when.replace(tzinfo=timezone.utc)  # written in UTC; a bare time is UTC
    if dataclasses.is_dataclass(tp):
        return _load_dataclass(tp, value, where)
    raise TypeError(f"schema type {tp!r} has no reader")  # pragma: no cover - a field type this module lacks


def _load_details(value: Any, where: str) -> Any:
    if not isinstance(value, dict) or value.get("kind") not in DETAIL_KINDS:
        kind = value.get("kind") if isinstance(value, dict) else value
        raise RecordError(f"{where}.kind" if where else "kind",
                          f"expected one of {', '.join(map(repr, DETAIL_KINDS))}; got {kind!r}")
    body = {k: v for k, v in value.items() if k != "kind"}
    return _load_dataclass(DETAIL_KINDS[value["kind"]], body, where)


def _load_dataclass(cls: type, value: Any, where: str) -> Any:
    if not isinstance(value, dict):
        raise _fail(where, cls, value)
    hints = typing.get_type_hints(cls)
    readable = [f for f in dataclasses.fields(cls) if f.metadata.get("json", True) and f.name != "more"]
    names = {f.name for f in readable}
    open_ended = "more" in {f.name for f in dataclasses.fields(cls)}
    unknown = [k for k in value if k not in names]
    if unknown and not open_ended:
        raise RecordError(f"{where}.{unknown[0]}" if where else unknown[0],
                          f"unknown field; {cls.__name__} has {', '.join(sorted(names))}")
    kwargs: dict[str, Any] = {}
    for f in readable:
        sub = f"{where}.{f.name}" if where else f.name
        if f.name not in value:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise RecordError(sub, "missing")
            continue
        kwargs[f.name] = _load(hints[f.name], value[f.name], sub)
    if open_ended:
        kwargs["more"] = {k: value[k] for k in unknown}
    try:
        return cls(**kwargs)
    except RecordError as exc:
        raise exc.at(where) if where else exc from None
