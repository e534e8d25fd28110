"""junkdna: benchmarks for the Junk DNA Hypothesis (arXiv 2310.02277)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("junkdna")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
