"""Compression failures: named once, with the method, level and model, then remembered instead of retried.

:func:`compression_error` turns any exception raised while building a compressed
model into a :class:`~junkdna_core.config.errors.CompressionError` whose last line
says what failed (a :class:`~junkdna_core.config.errors.MethodError`, e.g. a missed
level naming the expected and the measured values, stays a MethodError);
:func:`naming_failures` does it for a block of code; a :class:`FailedCompressions`
memo (one per session) makes every later request for the same (model,
configuration) fail at once with a short message of the same class.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from junkdna_core.config.errors import CacheError, CompressionError, MissingResourceError

if TYPE_CHECKING:
    from junkdna_core.compress.base import CompressionMethod


def failure_key(model_fingerprint: str, method: CompressionMethod) -> str:
    """What identifies a compression: the model's fingerprint and the configuration (name, version, params)."""
    return json.dumps([model_fingerprint, method.describe()], sort_keys=True, default=str)


def _what(method: CompressionMethod) -> str:
    return f"{method.name} at {method.level_name} {method.level:g}"


def compression_error(model: str, model_fingerprint: str, method: CompressionMethod,
                      error: BaseException) -> CompressionError:
    """The error saying that compressing ``model`` with ``method`` failed, and why (raise it ``from error``).

    Its class is ``error``'s when that is a CompressionError (a MethodError stays
    one), else CompressionError.
    """
    reason = f"{type(error).__name__}: {error}"
    kind = type(error) if isinstance(error, CompressionError) else CompressionError
    return kind(f"compression of {_what(method)} ({method!r}) on {model} failed: {reason}",
                key=failure_key(model_fingerprint, method), reason=reason)


@contextlib.contextmanager
def naming_failures(model: str, model_fingerprint: str, method: CompressionMethod) -> Iterator[None]:
    """Run the block; any failure in it but the storage's and the model files' becomes :func:`compression_error`."""
    try:
        yield
    except (CacheError, MissingResourceError):  # storage and model files: not the method's fault
        raise
    except CompressionError as exc:
        if exc.key is not None:  # already named (a nested build)
            raise
        raise compression_error(model, model_fingerprint, method, exc) from exc
    except Exception as exc:  # whatever the method did wrong, the error names it, its level and the model
        raise compression_error(model, model_fingerprint, method, exc) from exc


class FailedCompressions:
    """The compressions that failed in this session, by :func:`failure_key`, with the reason of their failure."""

    def __init__(self) -> None:
        self._failed: dict[str, tuple[type[CompressionError], str]] = {}

    @contextlib.contextmanager
    def remembering(self, model_fingerprint: str, methods: Iterable[CompressionMethod]) -> Iterator[None]:
        """Fail at once if one of ``methods`` failed on this model before; else run the block and note a failure."""
        for method in methods:
            key = failure_key(model_fingerprint, method)
            if key in self._failed:
                kind, reason = self._failed[key]
                raise kind(f"compression of {_what(method)} failed earlier in this session: {reason}",
                           key=key, reason=reason, earlier=True)
        try:
            yield
        except CompressionError as exc:
            if not exc.earlier and exc.key is not None:
                self._failed.setdefault(exc.key, (type(exc), exc.reason))
            raise
