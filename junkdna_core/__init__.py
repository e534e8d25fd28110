"""junkdna: benchmarks for the Junk DNA Hypothesis (arXiv 2310.02277).

The public API for compression-method plugins::

    from junkdna_core import CompressionMethod, PruningMethod, MethodParams, LayerResult, LayerStats, get_method

plus :mod:`junkdna_core.testing` (the conformance kit). The names are loaded on
first access, so importing the package (as pytest does for the plugin, in every
process, including the xdist controller) does not import torch.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("junkdna")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

if TYPE_CHECKING:
    from junkdna_core.compress.base import CompressionMethod, LayerResult, LayerStats, MethodParams, PruningMethod
    from junkdna_core.compress.encodings import LowRankFactors, QuantizedWeight
    from junkdna_core.compress.quantizer import QuantizationMethod
    from junkdna_core.compress.registry import get_method
    from junkdna_core.compress.validation import check_fraction
    from junkdna_core.config.budgets import Budget
    from junkdna_core.config.errors import ConfigError

_PUBLIC = {
    "CompressionMethod": "junkdna_core.compress.base",
    "PruningMethod": "junkdna_core.compress.base",
    "QuantizationMethod": "junkdna_core.compress.quantizer",
    "MethodParams": "junkdna_core.compress.base",
    "LayerResult": "junkdna_core.compress.base",
    "LayerStats": "junkdna_core.compress.base",
    "QuantizedWeight": "junkdna_core.compress.encodings",
    "LowRankFactors": "junkdna_core.compress.encodings",
    "get_method": "junkdna_core.compress.registry",
    "check_fraction": "junkdna_core.compress.validation",
    "Budget": "junkdna_core.config.budgets",
    "ConfigError": "junkdna_core.config.errors",
}

__all__ = [
    "Budget",
    "CompressionMethod",
    "ConfigError",
    "LayerResult",
    "LayerStats",
    "LowRankFactors",
    "MethodParams",
    "PruningMethod",
    "QuantizationMethod",
    "QuantizedWeight",
    "__version__",
    "check_fraction",
    "get_method",
]


def __getattr__(name: str) -> Any:
    # Lazy (PEP 562): the compression API imports torch, which the xdist controller never needs.
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'junkdna_core' has no attribute {name!r}")
