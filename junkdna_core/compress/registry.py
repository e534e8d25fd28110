"""The one registry of compression methods: the ``junkdna.methods`` entry-point group.

Built-in methods are registered by junkdna's own ``pyproject.toml``; a third-party
package adds a line to the same group and needs no fork. A user can also name a
class directly as ``package.module:Class``.

Entry points are loaded by name, when a method is asked for: a plugin that does
not import breaks only the runs that ask for it, never the others (``junkdna
methods`` lists it with its error). The names come from package metadata alone,
so checking a name imports neither the plugin nor torch (the xdist controller
checks ``--jd-methods`` this way).
"""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from junkdna_core.config.errors import ConfigError

if TYPE_CHECKING:
    from junkdna_core.compress.base import CompressionMethod

ENTRY_POINT_GROUP = "junkdna.methods"


@functools.cache
def _entry_points() -> Mapping[str, tuple[EntryPoint, ...]]:
    """The group's entry points by name, read from package metadata (nothing is imported)."""
    found: dict[str, list[EntryPoint]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep not in found.setdefault(ep.name, []):  # a distribution seen twice on sys.path lists its entries twice
            found[ep.name].append(ep)
    return MappingProxyType({name: tuple(eps) for name, eps in sorted(found.items())})


def registered_names() -> tuple[str, ...]:
    """Every name registered in the entry-point group, sorted (torch-free: no plugin is imported)."""
    return tuple(_entry_points())


def _unknown(name: str) -> ConfigError:
    names = registered_names()
    close = difflib.get_close_matches(name, names, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return ConfigError(f"unknown method {name!r}.{hint} Known methods: {', '.join(names)} (or give module:Class)")


def _split_spec(spec: str) -> tuple[str, str]:
    module_name, _, attr = spec.strip().partition(":")
    if not module_name or not attr.isidentifier() or module_name.startswith(".") or ".." in module_name:
        raise ConfigError(f"cannot import method {spec!r}: expected package.module:ClassName")
    return module_name, attr


def check_method_name(name: str) -> None:
    """Raise ConfigError unless ``name`` is registered or is a ``module:Class`` whose module can be found.

    Imports nothing but, for ``module:Class``, the module's parent packages.
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"a method name must be a non-empty string; got {name!r}")
    name = name.strip()
    if ":" not in name:
        if name not in _entry_points():
            raise _unknown(name)
        return
    module_name, _ = _split_spec(name)
    try:
        found = importlib.util.find_spec(module_name)
    except Exception as exc:  # a parent package that fails to import: name it
        raise ConfigError(f"cannot import method {name!r}: {type(exc).__name__}: {exc}") from exc
    if found is None:
        raise ConfigError(f"cannot import method {name!r}: no module named {module_name!r}")


def import_spec(spec: str) -> Any:
    """The object named by ``package.module:attribute``; ConfigError naming ``spec`` if it cannot be imported."""
    module_name, attr = _split_spec(spec)
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError, TypeError) as exc:
        raise ConfigError(f"cannot import method {spec!r}: {type(exc).__name__}: {exc}") from exc


@functools.cache
def _load(name: str) -> tuple[Any, ConfigError | None]:
    """The entry point's object, or the error loading it (kept, so a broken plugin is imported once)."""
    eps = _entry_points()[name]
    loaded = []
    for ep in eps:
        try:
            loaded.append(ep.load())
        except Exception as exc:  # noqa: BLE001 - a broken plugin is named, and breaks only the runs asking for it
            error = ConfigError(f"entry point {name!r} ({ep.value}) failed to load: {type(exc).__name__}: {exc}")
            error.__cause__ = exc
            return None, error
    if any(obj is not loaded[0] for obj in loaded):
        return None, ConfigError(f"two packages register a method named {name!r} "
                                 f"({', '.join(ep.value for ep in eps)}); uninstall one")
    return loaded[0], None


def load_registered(name: str) -> Any:
    """The object the entry point ``name`` names, imported on first use (not checked: the conformance kit does).

    ConfigError naming the entry point and the error if its module does not
    import, and if two packages register ``name`` for different objects.
    """
    if name not in _entry_points():
        raise _unknown(name)
    obj, error = _load(name)
    if error is not None:
        raise ConfigError(str(error)) from error.__cause__
    return obj


def _check_method_class(obj: object, origin: str) -> type[CompressionMethod]:
    from junkdna_core.compress.base import (  # imports torch: not when only names are checked
        CompressionMethod,
        declared_calibration_pass,
        declared_statistics,
    )

    if not (isinstance(obj, type) and issubclass(obj, CompressionMethod)):
        raise ConfigError(f"{origin} is not a junkdna CompressionMethod subclass (got {obj!r})")
    missing = [a for a in ("name", "version", "params_type", "family", "level_name") if not hasattr(obj, a)]
    if missing:
        raise ConfigError(f"{origin} ({obj.__name__}) does not define {', '.join(missing)}")
    if not isinstance(obj.version, str) or not obj.version:
        raise ConfigError(f"{origin} ({obj.__name__}) must set a non-empty version string")
    declared_statistics(obj)
    declared_calibration_pass(obj)
    return obj


def get_method(name: str) -> type[CompressionMethod]:
    """The method class registered as ``name``, or named as ``module:Class``; only that one is loaded.

    Raises ConfigError listing the known names (and the closest ones) for an
    unknown name, and naming the plugin and its error for one that fails to load.
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"a method name must be a non-empty string; got {name!r}")
    name = name.strip()
    if ":" in name:
        return _check_method_class(import_spec(name), f"method {name!r}")
    entries = _entry_points().get(name)
    origin = f"entry point {name!r} ({entries[0].value})" if entries else name
    cls = _check_method_class(load_registered(name), origin)
    if cls.name != name:
        raise ConfigError(f"{origin}: class name attribute {cls.name!r} differs from entry-point name")
    return cls


@dataclass(frozen=True)
class RegisteredMethod:
    """One name of the entry-point group: its class, or why it cannot be used."""

    name: str
    target: str
    cls: type[CompressionMethod] | None
    error: str | None


def scan_methods() -> tuple[RegisteredMethod, ...]:
    """Every registered name, each loaded on its own: a broken plugin is listed with its error, not raised."""
    scanned = []
    for name, eps in _entry_points().items():
        try:
            scanned.append(RegisteredMethod(name, eps[0].value, get_method(name), None))
        except ConfigError as exc:
            scanned.append(RegisteredMethod(name, eps[0].value, None, str(exc)))
    return tuple(scanned)


def available_methods() -> Mapping[str, type[CompressionMethod]]:
    """Every registered method that loads, by name (read-only); see :func:`scan_methods` for the broken ones."""
    return MappingProxyType({m.name: m.cls for m in scan_methods() if m.cls is not None})
