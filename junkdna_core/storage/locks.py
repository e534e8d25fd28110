"""Inter-process locks of cache entries: shared while an entry is read, exclusive while it is built or evicted.

Two backends, chosen per site with ``JUNKDNA_CACHE_LOCK`` (every process sharing a cache must
use the same one):

``flock`` (the default)
    ``fcntl.flock`` on ``locks/<key>.lock``. The kernel releases a dead process's locks at once.
    On a local disk, and on NFS: the Linux NFS client implements ``flock`` with whole-file POSIX
    locks, which NFSv4 carries in the protocol itself, under the client's lease — when a machine
    dies, the server drops its locks after the lease time (90 s by default), so a crashed node
    never leaves a stale lock. Also right on GPFS, CephFS and Lustre mounted with ``-o flock``.
    NFSv3 needs the NLM lock daemons (``lockd``/``statd``); mounts with ``nolock`` or
    ``local_lock=flock|all``, Lustre with ``localflock`` and BeeGFS without global locks keep
    locks per machine without saying so: use ``soft`` there.
``soft``
    filelock's :class:`~filelock.SoftReadWriteLock` (filelock 4): lock state as marker files
    published with atomic hard links, so it needs nothing of the filesystem but links and
    renames; each holder refreshes its marker every ``heartbeat`` seconds from a thread, and any
    process on any machine may take over a marker left unchanged for three heartbeats (a dead
    holder). For file systems whose byte-range locks do not reach other machines.

Lock files are never deleted: a process waiting on a lock file that another one unlinks and
recreates would lock a different file than the next arrival, and both would "hold" the lock.
"""

from __future__ import annotations

import errno
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Literal

from junkdna_core.config.errors import CacheError, ConfigError

Mode = Literal["shared", "exclusive"]
LOCK_ENV = "JUNKDNA_CACHE_LOCK"
BACKENDS = ("flock", "soft")
_BUSY = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES})
_UNSUPPORTED = frozenset({errno.ENOSYS, errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL})


class LockBusy(Exception):
    """A non-blocking acquisition found the lock held by another process."""


class Locking(ABC):
    """A lock backend: holds a lock file in shared or exclusive mode."""

    name: str

    @abstractmethod
    def hold(self, path: Path, mode: Mode, *, blocking: bool = True) -> AbstractContextManager[None]:
        """Hold the lock at ``path`` for the with-block; LockBusy at once if ``blocking`` is False and it is taken."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class FlockLocking(Locking):
    """``fcntl.flock`` locks: released by the kernel when their holder dies (see the module docstring)."""

    name = "flock"

    @contextmanager
    def hold(self, path: Path, mode: Mode, *, blocking: bool = True) -> Iterator[None]:
        import fcntl  # POSIX only; Windows uses the soft backend (see locking_from_env)

        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            operation = fcntl.LOCK_SH if mode == "shared" else fcntl.LOCK_EX
            try:
                fcntl.flock(fd, operation if blocking else operation | fcntl.LOCK_NB)
            except OSError as exc:
                if not blocking and exc.errno in _BUSY:
                    raise LockBusy(str(path)) from None
                if exc.errno in _UNSUPPORTED:
                    raise CacheError(
                        f"the file system of {path} does not support flock locks ({os.strerror(exc.errno)}; Lustre "
                        f"mounted without -o flock?); set {LOCK_ENV}=soft for every process using this cache"
                    ) from exc
                raise
            yield
        finally:
            os.close(fd)  # releases the lock


class SoftLocking(Locking):
    """filelock's SoftReadWriteLock: marker files with heartbeats, for file systems without shared byte-range locks."""

    name = "soft"

    def __init__(self, heartbeat: float = 30.0) -> None:
        if not heartbeat > 0:
            raise ConfigError(f"the soft lock heartbeat must be > 0 seconds; got {heartbeat!r}")
        self.heartbeat = heartbeat

    def __repr__(self) -> str:
        return f"SoftLocking(heartbeat={self.heartbeat!r})"

    @contextmanager
    def hold(self, path: Path, mode: Mode, *, blocking: bool = True) -> Iterator[None]:
        try:
            from filelock import SoftReadWriteLock, Timeout
        except ImportError as exc:
            raise ConfigError(f"{LOCK_ENV}=soft needs filelock>=4 (SoftReadWriteLock): pip install -U filelock") from exc
        lock = SoftReadWriteLock(str(path), heartbeat_interval=self.heartbeat, is_singleton=False)
        acquire = lock.acquire_read if mode == "shared" else lock.acquire_write
        try:
            acquire(blocking=blocking)
        except Timeout:
            lock.close()
            raise LockBusy(str(path)) from None
        try:
            yield
        finally:
            lock.release()
            lock.close()


def parse_lock_backend(text: str) -> Locking:
    """The backend named ``flock`` or ``soft``."""
    value = str(text).strip().lower()
    if value == "flock":
        return FlockLocking()
    if value == "soft":
        return SoftLocking()
    raise ConfigError(f"{LOCK_ENV} must be one of {', '.join(BACKENDS)}; got {text!r}")


def locking_from_env() -> Locking:
    """The backend ``$JUNKDNA_CACHE_LOCK`` names; ``flock`` by default (``soft`` where fcntl does not exist)."""
    configured = os.environ.get(LOCK_ENV, "").strip()
    if configured:
        return parse_lock_backend(configured)
    try:
        import fcntl  # noqa: F401  (probe: POSIX systems have it)
    except ImportError:
        return SoftLocking()
    return FlockLocking()
