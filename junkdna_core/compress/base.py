"""The interface every compression method implements, built-in or third-party.

A method is configured with a frozen parameter dataclass (validated before any
compute), then asked to *compute* the compression of a group of weight matrices.
It never touches a model: enforcing the result (copying weights, zeroing,
holding masks through training) is the job of :mod:`junkdna_core.compress.masks`
and :mod:`junkdna_core.compress.runner`. This is the torch.ao.pruning split of
"compute a mask" from "enforce a mask".

Weights are always given in ``(out_features, in_features)`` layout; "along the
input dimension" means along dim 1.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

import torch

from junkdna_core.compress.encodings import WeightEncoding
from junkdna_core.compress.validation import check_nm_shape
from junkdna_core.config.budgets import Budget
from junkdna_core.config.errors import ConfigError, MethodError

Family = Literal["pruning", "quantization", "lowrank"]


@dataclass(frozen=True)
class MethodParams:
    """Base of every method's parameters. Subclasses validate in ``__post_init__``."""

    def as_dict(self) -> dict[str, Any]:
        """The parameters as a JSON-ready dict (used in cache keys and records)."""
        return dataclasses.asdict(self)


STATISTICS: tuple[str, ...] = ("gram", "input_norms")
"""The input statistics a calibrated method can ask for (its ``statistics`` class attribute)."""


class LayerStats:
    """Statistics of one linear layer's inputs over the calibration tokens.

    ``gram``: the float32 (or float64) sum over tokens of ``x x^T``, shape
    ``(in_features, in_features)``. ``squares``: the sum over tokens of ``x_j^2``,
    shape ``(in_features,)``. ``tokens``: how many input rows went in. At least
    one of ``gram`` and ``squares`` is given; the runner collects only what the
    method declares in its ``statistics`` (reading a Gram matrix that was not
    collected is a MethodError saying so). Layers that read the same input
    tensor (q/k/v, gate/up) share one LayerStats object. Read-only.
    """

    __slots__ = ("_gram", "_squares", "layer", "tokens")

    def __init__(
        self,
        gram: torch.Tensor | None = None,
        tokens: int = 0,
        *,
        squares: torch.Tensor | None = None,
        layer: str = "",
    ) -> None:
        if gram is None and squares is None:
            raise ConfigError(f"LayerStats of {layer or 'a layer'} needs a gram or squares tensor; got neither")
        for attr, value in (("_gram", gram), ("_squares", squares), ("tokens", tokens), ("layer", layer)):
            object.__setattr__(self, attr, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"LayerStats is read-only; cannot set {name!r}")

    @property
    def gram(self) -> torch.Tensor:
        """``sum_t x_t x_t^T``; MethodError when only the squares were collected."""
        if self._gram is None:
            raise MethodError(
                f"the calibration statistics of {self.layer or 'this layer'} hold no Gram matrix: the method's "
                "`statistics` class attribute does not list 'gram' (add it to read LayerStats.gram)"
            )
        return self._gram

    @property
    def has_gram(self) -> bool:
        """True when the Gram matrix was collected."""
        return self._gram is not None

    @property
    def input_norms(self) -> torch.Tensor:
        """The l2 norm of each input feature over all tokens, ``||X_j||_2`` (Wanda's scale)."""
        squares = self._squares if self._squares is not None else torch.diagonal(self._gram)
        return torch.sqrt(torch.clamp(squares, min=0.0))

    def __repr__(self) -> str:
        held = "gram" if self._gram is not None else "squares"
        return f"LayerStats({self.layer or '?'}: {held}, tokens={self.tokens})"


@dataclass
class LayerResult:
    """What a method computed for one weight matrix.

    ``mask``: bool tensor of the weight's shape, True where the weight is kept
    (pruning methods). ``weight``: replacement values of the weight's shape and
    dtype (quantized-then-dequantized, low-rank reconstruction, or the
    OBS-updated survivors of SparseGPT). Either or both may be set; when both
    are, the enforced weight is ``weight * mask``. ``encoding`` (optional, with
    ``weight``): the compact form ``weight`` was made from, integer codes on a
    grid or low-rank factors (:mod:`junkdna_core.compress.encodings`); it must
    decode to ``weight`` exactly, and lets the artifact store a few bits per
    weight instead of the dense values.
    """

    mask: torch.Tensor | None = None
    weight: torch.Tensor | None = None
    encoding: WeightEncoding | None = None


P = TypeVar("P", bound=MethodParams)


CALIBRATION_PASSES: tuple[str, ...] = ("block", "sequential")
"""How a calibrated method's blocks are passed over (its ``calibration_pass`` class attribute)."""


def declared_calibration_pass(method: type[CompressionMethod] | CompressionMethod) -> str:
    """The calibration pass a method declares; ConfigError naming the method if it is not one of CALIBRATION_PASSES."""
    declared = getattr(method, "calibration_pass", "block")
    if declared not in CALIBRATION_PASSES:
        name = getattr(method, "name", type(method).__name__)
        raise ConfigError(
            f"method {name!r} declares calibration_pass={declared!r}; expected one of "
            f"{', '.join(map(repr, CALIBRATION_PASSES))}"
        )
    return declared


def declared_statistics(method: type[CompressionMethod] | CompressionMethod) -> frozenset[str]:
    """The statistics a method declares it reads; ConfigError naming the method if the declaration is invalid."""
    declared = getattr(method, "statistics", ("gram",))
    if isinstance(declared, str) or not isinstance(declared, (tuple, list, frozenset, set)) or not declared:
        bad = True
    else:
        bad = not set(declared) <= set(STATISTICS)
    if bad:
        name = getattr(method, "name", type(method).__name__)
        raise ConfigError(
            f"method {name!r} declares statistics={declared!r}; expected a non-empty tuple of "
            f"{', '.join(map(repr, STATISTICS))}"
        )
    return frozenset(declared)


def params_with_options(params_type: type[P], options: Mapping[str, Any], **level: Any) -> P:
    """``params_type(**level, **options)``, raising ConfigError on an option the type does not have."""
    allowed = [f.name for f in dataclasses.fields(params_type) if f.name not in level]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(
            f"{params_type.__name__} has no option {', '.join(map(repr, unknown))}; "
            f"allowed options: {', '.join(allowed) or 'none'}"
        )
    return params_type(**level, **options)


class CompressionMethod(ABC):
    """A compression method: configured once, then asked to compress groups of weights.

    Subclasses set the class attributes and implement :meth:`compress`; they may
    override :meth:`at_level`, :meth:`default_levels` and :meth:`check_shapes`. Register one with an entry point in the
    ``junkdna.methods`` group (``name = "package.module:Class"``).

    Class attributes:
      name: registry name, lower-case, used in test ids (``setting2-wanda-smollm2``).
      version: bump it whenever results change; it is part of every cache key.
      params_type: the frozen :class:`MethodParams` subclass this method takes.
      family: ``pruning``, ``quantization`` or ``lowrank``.
      level_name: what a compression level means (``sparsity``, ``bits``, ``rank_fraction``).
      needs_calibration: True if :meth:`compress` needs ``stats`` (then it is
        called once per transformer block, or once per group of a block's
        linears that read one input with the "sequential" ``calibration_pass``,
        with the inputs of the partially compressed model); False if it is called once with all
        target weights and ``stats=None`` (so global scopes are possible).
      statistics: what a calibrated method reads from its :class:`LayerStats`, a
        tuple of names from :data:`STATISTICS`: ``"gram"`` (the full
        ``in x in`` Gram matrix; the input norms come with it, from its
        diagonal) or only ``"input_norms"`` (one sum of squares per input
        feature: a pass costs about one forward instead of a Gram product per
        layer). Default ``("gram",)``, which serves every method.
      calibration_pass: how a calibrated method's blocks are passed over.
        ``"block"`` (default, the Wanda/SparseGPT reference scheme): every
        linear of a block gets statistics of the block's inputs in one pass over
        the calibration batches, :meth:`compress` is called once for the
        block, and a second pass feeds the compressed block's outputs to the
        next. ``"sequential"``: one pass per block over all calibration samples
        at once; each group of linears that read one input (q/k/v, o, gate/up,
        down) is compressed when the pass reaches it, on inputs that come from
        the already compressed linears before it ("true sequential"), and the
        same pass feeds the next block: about one forward's cost, with the
        activations of all calibration tokens in one block at a time.
      sparsity_unit (optional): ``layer``, ``row`` or ``group``, the unit in which a pruning
        method keeps the exact count ``round(sparsity * n)``; the conformance kit
        (:mod:`junkdna_core.testing`) holds the method to it.
    """

    name: ClassVar[str]
    version: ClassVar[str]
    params_type: ClassVar[type[MethodParams]]
    family: ClassVar[Family]
    level_name: ClassVar[str]
    needs_calibration: ClassVar[bool] = False
    statistics: ClassVar[tuple[str, ...]] = ("gram",)
    calibration_pass: ClassVar[str] = "block"

    def __init__(self, params: MethodParams) -> None:
        if not isinstance(params, self.params_type):
            raise ConfigError(
                f"{type(self).__name__} takes {self.params_type.__name__}, got {type(params).__name__}"
            )
        self.params = params

    @classmethod
    def at_level(cls, level: float, **options: Any) -> CompressionMethod:
        """The method configured at one compression level (in units of ``level_name``).

        ``options`` set the other parameters; an unknown one is a ConfigError
        listing the allowed ones.
        """
        return cls(params_with_options(cls.params_type, options, **{cls.level_name: cls.level_value(level)}))

    @classmethod
    def level_value(cls, level: float) -> Any:
        """The parameter value of a level (identity; integer-valued levels override this)."""
        return level

    @classmethod
    def default_levels(cls, budget: Budget) -> tuple[float, ...]:
        """The levels swept by default under ``budget``, weakest compression first: its ``sparsities``."""
        return budget.sparsities

    @abstractmethod
    def compress(
        self,
        weights: Mapping[str, torch.Tensor],
        stats: Mapping[str, LayerStats] | None,
    ) -> dict[str, LayerResult]:
        """Compute the compression of every weight in ``weights`` (keyed by module name).

        Must not modify the input tensors. Returns one :class:`LayerResult` per key.
        """

    def check_shapes(self, shapes: Mapping[str, tuple[int, int]]) -> None:
        """Raise ConfigError if a weight of one of these ``(out, in)`` shapes cannot be compressed.

        Called on every target before any compute, so a bad configuration (an
        N:M pattern or a group size that does not divide a layer's input
        dimension) fails early and never leaves a half-compressed model.
        """

    @property
    def level(self) -> float:
        """This configuration's compression level, in units of ``level_name``."""
        return float(getattr(self.params, self.level_name))

    def describe(self) -> dict[str, Any]:
        """Name, version and parameters: what identifies this configuration in caches and records."""
        return {"method": self.name, "version": self.version, "params": self.params.as_dict()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.as_dict().items())
        return f"{type(self).__name__}({args})"


class PruningMethod(CompressionMethod):
    """Base of pruning methods: their level is a sparsity, and they return keep-masks."""

    family: ClassVar[Family] = "pruning"
    level_name: ClassVar[str] = "sparsity"

    def check_shapes(self, shapes: Mapping[str, tuple[int, int]]) -> None:
        """With an N:M pattern (a parameter ``m``), every layer's in_features must be a multiple of M."""
        m = getattr(self.params, "m", None)
        if m is not None:
            for shape in shapes.values():
                check_nm_shape(tuple(shape), m)

