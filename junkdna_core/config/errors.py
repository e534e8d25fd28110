"""Exceptions raised on bad user input, before any compute happens."""


class JunkdnaError(Exception):
    """Base class of every error junkdna raises on purpose."""


class ConfigError(JunkdnaError, ValueError):
    """A user-supplied option, method name or parameter is not allowed.

    The message always says what was given and what is allowed.
    """


class MissingResourceError(JunkdnaError, FileNotFoundError):
    """A model or data package is not installed; the message names the install command."""


class CacheError(JunkdnaError, OSError):
    """The artifact cache cannot be written (read-only, disk full) or an entry is unusable."""


class CorruptResourceError(MissingResourceError):
    """A file of a model or data package is installed but truncated or garbled; the message names it and the fix."""


class CompressionError(JunkdnaError):
    """Building a compressed model failed: the method misbehaved (a :class:`MethodError`) or the configuration
    could not be applied to the model. The message names the method, its level and the cause.

    ``key`` identifies the (model, configuration) that failed, so a session remembers it instead of
    building it again (None when raised outside a session's build); ``reason`` is the cause as
    ``Type: message``; ``earlier`` marks the short error of a test that needed a compression which
    failed earlier in the session.
    """

    def __init__(self, message: str, *, key: str | None = None, reason: str | None = None,
                 earlier: bool = False) -> None:
        super().__init__(message)
        self.key = key
        self.reason = f"{type(self).__name__}: {message}" if reason is None else reason
        self.earlier = earlier


class MethodError(CompressionError):
    """A compression method misbehaved on a model: it raised, returned a result of the wrong shape or type,
    or missed the level it declared. The message names the method, the level, what was expected and what
    was found (a conformance failure, reported before anything is scored)."""
