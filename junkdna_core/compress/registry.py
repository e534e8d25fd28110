"""The one registry of compression methods: the ``junkdna.methods`` entry-point group.

Built-in methods are registered by junkdna's own ``pyproject.toml``; a third-party
package adds a line to the same group and needs no fork. A user can also name a
class directly as ``package.module:Class``.
"""

from __future__ import annotations

import difflib
import functools
import importlib
from collections.abc import Mapping
from importlib.metadata import entry_points
from types import MappingProxyType
from typing import Any

from junkdna_core.compress.base import CompressionMethod, declared_calibration_pass, declared_statistics
from junkdna_core.config.errors import ConfigError

ENTRY_POINT_GROUP = "junkdna.methods"


def _check_method_class(obj: object, origin: str) -> type[CompressionMethod]:
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


@functools.cache
def available_methods() -> Mapping[str, type[CompressionMethod]]:
    """Every method registered in the entry-point group, by name (read-only, loaded once)."""
    found: dict[str, type[CompressionMethod]] = {}
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        origin = f"entry point {ep.name!r} ({ep.value})"
        try:
            cls = _check_method_class(ep.load(), origin)
        except ConfigError:
            raise
        except Exception as exc:  # a broken plugin must be named, not crash the registry opaquely
            raise ConfigError(f"{origin} failed to load: {type(exc).__name__}: {exc}") from exc
        if cls.name != ep.name:
            raise ConfigError(f"{origin}: class name attribute {cls.name!r} differs from entry-point name")
        if ep.name in found and found[ep.name] is not cls:
            raise ConfigError(f"two packages register a method named {ep.name!r}; uninstall one")
        found[ep.name] = cls
    return MappingProxyType(found)


def import_spec(spec: str) -> Any:
    """The object named by ``package.module:attribute``; ConfigError naming ``spec`` if it cannot be imported."""
    module_name, _, attr = spec.strip().partition(":")
    if not module_name or not attr.isidentifier():
        raise ConfigError(f"cannot import method {spec!r}: expected package.module:ClassName")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError, TypeError) as exc:
        raise ConfigError(f"cannot import method {spec!r}: {type(exc).__name__}: {exc}") from exc


def get_method(name: str) -> type[CompressionMethod]:
    """The method class registered as ``name``, or named as ``module:Class``.

    Raises ConfigError listing the known names (and the closest ones) otherwise.
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"a method name must be a non-empty string; got {name!r}")
    name = name.strip()
    if ":" in name:
        return _check_method_class(import_spec(name), f"method {name!r}")
    methods = available_methods()
    if name in methods:
        return methods[name]
    close = difflib.get_close_matches(name, list(methods), n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ConfigError(f"unknown method {name!r}.{hint} Known methods: {', '.join(sorted(methods))}")


def parse_method_list(text: str) -> tuple[type[CompressionMethod], ...]:
    """Parse a comma-separated list of method names into method classes, in the given order."""
    names = [part.strip() for part in str(text).split(",") if part.strip()]
    if not names:
        raise ConfigError(f"expected a comma-separated list of method names; got {text!r}")
    if len(set(names)) != len(names):
        raise ConfigError(f"method list {text!r} names a method twice")
    return tuple(get_method(n) for n in names)
