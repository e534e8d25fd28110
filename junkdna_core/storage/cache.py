"""A content-addressed artifact cache shared by processes and pytest-xdist workers.

An entry is a directory addressed by ``(kind, key)``, where ``key`` is the sha256
of the canonical JSON of everything that determines the artifact (model
fingerprint, method, parameters, calibration fingerprint, algorithm version).
Entries are built under a per-key file lock in a temporary directory on the same
filesystem, sealed with a ``MANIFEST.json`` (written last) listing every file's
size and hash, and moved into place with one atomic rename. Readers verify the
manifest; a corrupt or truncated entry is discarded and rebuilt.

Entries read through :meth:`ArtifactCache.use` are read under a shared lock, record the time of
each use (the entry directory's mtime; the manifest is never rewritten), and may be evicted,
least recently used first, to keep the cache under a size cap (:meth:`ArtifactCache.prune`); the
evictor takes each entry's lock without waiting and skips entries another process is building
or reading. Entries handed out as bare paths by :meth:`ArtifactCache.get_or_build` are never
evicted: their readers hold no lock. The lock backend (``flock`` or ``soft``, for shared file
systems) is described in :mod:`junkdna_core.storage.locks`.

On-disk layout under the root::

    <kind>/<key[:2]>/<key>/    complete entries (MANIFEST.json + the artifact's files)
    locks/<key>.lock           per-key locks (never deleted)
    tmp/<key>.<random>/        builds in progress, or leftovers of killed builds
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

import platformdirs

from junkdna_core import __version__
from junkdna_core.config.errors import CacheError, ConfigError, JunkdnaError
from junkdna_core.storage.digests import file_digest
from junkdna_core.storage.locks import LockBusy, Locking, Mode, locking_from_env

CACHE_SCHEMA = 1
"""Version of the on-disk layout and key recipe; bump it when either changes."""

MANIFEST_NAME = "MANIFEST.json"
RESULT_NAME = "result.json"
HASH_ALGORITHM = "blake2b"

_LOCKS_DIR = "locks"
_TMP_DIR = "tmp"
_KIND_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_KEY_PATTERN = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20
_STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})
_PERMISSION_ERRNOS = frozenset({errno.EACCES, errno.EPERM})
_JSON_ALLOWED = "None, bool, int, finite float, str, list/tuple, or a mapping with str keys"
_ADVICE = "free some space, or set JUNKDNA_CACHE or --jd-cache to a writable directory"

logger = logging.getLogger(__name__)


def default_cache_root() -> Path:
    """The cache root: ``$JUNKDNA_CACHE`` if set, else the user cache directory for junkdna."""
    configured = os.environ.get("JUNKDNA_CACHE")
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_cache_dir("junkdna"))


def file_key(path: Path, root: Path) -> list[Any]:
    """A file as a cache key part, without reading it.

    Its path under ``root``, size, modification time, and the name it resolves to
    (a Hugging Face cache blob's name is its content hash).
    """
    stat = path.stat()
    return [path.relative_to(root).as_posix(), stat.st_size, stat.st_mtime_ns, path.resolve().name]


@dataclass(frozen=True)
class CacheEntry:
    """One complete entry of the cache, as described by its manifest.

    ``accessed``: the last time the entry was built or used (through :meth:`ArtifactCache.use`);
    ``evictable``: whether :meth:`ArtifactCache.prune` may remove it.
    """

    kind: str
    key: str
    path: Path
    size_bytes: int
    created: datetime
    description: str
    accessed: datetime
    evictable: bool


@dataclass(frozen=True)
class PruneReport:
    """What :meth:`ArtifactCache.prune` did: the entries it evicted, the ones in use it skipped, the size left."""

    max_bytes: int
    evicted: tuple[CacheEntry, ...]
    in_use: tuple[CacheEntry, ...]
    size_bytes: int

    @property
    def freed_bytes(self) -> int:
        return sum(e.size_bytes for e in self.evicted)

    @property
    def within_limit(self) -> bool:
        return self.size_bytes <= self.max_bytes


class ArtifactCache:
    """Content-addressed store of built artifacts (directories) and JSON results.

    ``locking``: the lock backend (default: ``$JUNKDNA_CACHE_LOCK``, else flock). ``max_bytes``:
    after building an entry it reads through :meth:`use`, the cache evicts least recently used
    evictable entries until its size is at most this (None: no cap).
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        locking: Locking | None = None,
        max_bytes: int | None = None,
    ) -> None:
        self.root: Path = Path(root).expanduser() if root is not None else default_cache_root()
        self.locking: Locking = locking if locking is not None else locking_from_env()
        if max_bytes is not None and (not isinstance(max_bytes, int) or max_bytes < 0):
            raise ConfigError(f"the cache size cap must be a whole number of bytes >= 0; got {max_bytes!r}")
        self.max_bytes = max_bytes

    def __repr__(self) -> str:
        return f"ArtifactCache(root={str(self.root)!r}, locking={self.locking!r}, max_bytes={self.max_bytes!r})"

    # -- addressing ---------------------------------------------------------------

    def key(self, kind: str, parts: Mapping[str, Any]) -> str:
        """The sha256 hex digest addressing the artifact ``kind`` built from ``parts``."""
        _check_kind(kind)
        if not isinstance(parts, Mapping):
            raise ConfigError(f"cache key parts must be a mapping with str keys; got {type(parts).__name__}")
        _check_jsonable(parts, f"cache key parts of kind {kind!r}", ())
        document = {"schema": CACHE_SCHEMA, "kind": kind, "parts": parts}
        return hashlib.sha256(_canonical_json(document).encode("utf-8")).hexdigest()

    def entry_dir(self, kind: str, key: str) -> Path:
        """Where the entry ``(kind, key)`` lives (whether or not it exists)."""
        _check_kind(kind)
        if not isinstance(key, str) or not _KEY_PATTERN.fullmatch(key):
            raise ConfigError(f"cache key must be 64 lowercase hex characters; got {key!r}")
        return self.root / kind / key[:2] / key

    # -- building -----------------------------------------------------------------

    def get_or_build(
        self,
        kind: str,
        parts: Mapping[str, Any],
        build: Callable[[Path], None],
        *,
        description: str = "",
    ) -> Path:
        """The directory of a complete, verified entry, built by ``build(empty_dir)`` if needed.

        Across processes sharing the root, exactly one builds a missing entry; the
        others wait for it and reuse the result. A corrupt entry is logged, discarded
        and rebuilt. If ``build`` raises, nothing is left behind and the error
        propagates (as :class:`CacheError` when the cache's storage failed).
        """
        key = self.key(kind, parts)
        entry = self.entry_dir(kind, key)
        if _entry_problem(entry, kind, key) is None:
            return entry
        self._prepare_root()
        self._build_if_needed(kind, key, parts, build, description, evictable=False)
        return entry

    @contextmanager
    def use(
        self,
        kind: str,
        parts: Mapping[str, Any],
        build: Callable[[Path], None],
        *,
        description: str = "",
    ) -> Iterator[Path]:
        """Hold a complete, verified entry for the with-block, built by ``build(empty_dir)`` if needed.

        As :meth:`get_or_build`, but the entry is read under a shared lock (no process can
        evict or rebuild it meanwhile), each use is recorded as its access time, and the entry
        may be evicted by :meth:`prune` when no one holds it. After building it, a cache with
        ``max_bytes`` prunes itself down to the cap (never evicting this entry).
        """
        key = self.key(kind, parts)
        entry = self.entry_dir(kind, key)
        self._prepare_root()
        built = False
        while True:  # an entry evicted between our build and our shared lock is built again
            with self._key_lock(key, description or kind, "shared"):
                if _entry_problem(entry, kind, key) is None:
                    _touch(entry)
                    if built and self.max_bytes is not None:
                        self.prune(self.max_bytes, keep=(key,))
                    yield entry
                    return
            built = self._build_if_needed(kind, key, parts, build, description, evictable=True) or built

    def _build_if_needed(
        self, kind: str, key: str, parts: Mapping[str, Any], build: Callable[[Path], None], description: str,
        *, evictable: bool,
    ) -> bool:
        """Under the key's exclusive lock, build the entry unless it is complete; whether it was built."""
        entry = self.entry_dir(kind, key)
        label = description or kind
        with self._key_lock(key, label, "exclusive"):
            _revalidate(entry.parent)
            problem = _entry_problem(entry, kind, key)
            if problem is None:
                return False
            if entry.exists():
                logger.warning("cache entry %s (%s) is unusable: %s; rebuilding it", entry, label, problem)
                self._discard(entry, key)
            self._sweep_leftovers(held_key=key)
            logger.info("building cache entry %s (%s)", entry, label)
            manifest_head = {"kind": kind, "key": key, "parts": parts, "description": description,
                             "evictable": evictable}
            self._build_into(entry, manifest_head, build)
        return True

    def get_or_compute_json(self, kind: str, parts: Mapping[str, Any], compute: Callable[[], Any]) -> Any:
        """The JSON value ``compute()`` returns, computed once per ``(kind, parts)`` and then read back.

        The value is always the one parsed from the stored ``result.json``, so a
        first call and a cached call return equal values (tuples come back as lists).
        """

        def build(directory: Path) -> None:
            value = compute()
            _check_jsonable(value, f"result computed for cache kind {kind!r}", ())
            _write_durably(directory / RESULT_NAME, _canonical_json(value).encode("utf-8"))

        entry = self.get_or_build(kind, parts, build)
        try:
            return json.loads((entry / RESULT_NAME).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise CacheError(
                f"cache entry {entry} of kind {kind!r} holds no {RESULT_NAME}: it was built by get_or_build, "
                "not get_or_compute_json; use a distinct kind for JSON results"
            ) from exc

    # -- inspection and maintenance -----------------------------------------------

    def entries(self) -> list[CacheEntry]:
        """Every entry with a readable manifest, ordered by kind then creation time."""
        found = [entry for path in self._entry_dirs(None) if (entry := _read_entry(path)) is not None]
        return sorted(found, key=lambda e: (e.kind, e.created, e.key))

    def size_bytes(self) -> int:
        """Total size of every file under the root (entries, unfinished builds, locks)."""
        if not self.root.is_dir():
            return 0
        return sum(_tree_size(self.root))

    def prune(self, max_bytes: int, *, keep: tuple[str, ...] = ()) -> PruneReport:
        """Evict evictable entries, least recently used first, until the cache holds at most ``max_bytes``.

        Entries whose lock another process holds (being built or read) are skipped, as are the
        keys in ``keep``; entries that are not evictable (per-item scores and other JSON results,
        converted models) are never removed, so the cap may be unreachable: the report says so.
        """
        if not isinstance(max_bytes, int) or max_bytes < 0:
            raise ConfigError(f"the cache size cap must be a whole number of bytes >= 0; got {max_bytes!r}")
        total = self.size_bytes()
        evicted: list[CacheEntry] = []
        in_use: list[CacheEntry] = []
        candidates = sorted((e for e in self.entries() if e.evictable and e.key not in keep),
                            key=lambda e: (e.accessed, e.created, e.key))
        for entry in candidates:
            if total <= max_bytes:
                break
            try:
                with self.locking.hold(self._lock_path(entry.key), "exclusive", blocking=False):
                    if not entry.path.is_dir():
                        continue  # evicted meanwhile by another process
                    self._discard(entry.path, entry.key)
            except LockBusy:
                in_use.append(entry)
                continue
            logger.info("evicted cache entry %s (%s, %d bytes, last used %s)", entry.path, entry.description,
                        entry.size_bytes, entry.accessed.isoformat())
            evicted.append(entry)
            total -= entry.size_bytes
        return PruneReport(max_bytes, tuple(evicted), tuple(in_use), self.size_bytes())

    def clear(self, kind: str | None = None) -> int:
        """Remove all entries (or those of one ``kind``); return how many were removed.

        Each entry is removed under its build lock, so a build in progress is
        waited for rather than torn. Leftovers of killed builds are removed too.
        """
        if kind is not None:
            _check_kind(kind)
        removed = 0
        doomed = self._entry_dirs(kind)
        if doomed:
            self._prepare_root()
        for path in doomed:
            with self._key_lock(path.name, f"clearing {path.parent.parent.name}"):
                if path.exists():
                    self._discard(path, path.name)
                    removed += 1
        if self.root.is_dir():
            self._sweep_leftovers(held_key=None)
        return removed

    # -- internals ----------------------------------------------------------------

    def _prepare_root(self) -> None:
        """Create the root with its lock and temp directories, or raise CacheError."""
        with _storage_errors(f"cannot create the artifact cache at {self.root}"):
            for sub in (_LOCKS_DIR, _TMP_DIR):
                (self.root / sub).mkdir(parents=True, exist_ok=True)

    def _lock_path(self, key: str) -> Path:
        return self.root / _LOCKS_DIR / f"{key}.lock"

    @contextmanager
    def _key_lock(self, key: str, label: str, mode: Mode = "exclusive") -> Iterator[None]:
        """Hold the inter-process lock of ``key`` in ``mode``; log when another process makes us wait."""
        path = self._lock_path(key)
        with contextlib.ExitStack() as stack:
            with _storage_errors(f"cannot take the lock of cache entry {key[:12]} under {self.root}"):
                try:
                    stack.enter_context(self.locking.hold(path, mode, blocking=False))
                except LockBusy:
                    logger.info("waiting for another process to finish with cache entry %s (%s)", key[:12], label)
                    stack.enter_context(self.locking.hold(path, mode))
            yield

    def _build_into(self, entry: Path, manifest_head: Mapping[str, Any], build: Callable[[Path], None]) -> None:
        """Run ``build`` in a fresh temp dir, seal it with a manifest and rename it to ``entry``."""
        with _storage_errors(f"cannot create a build directory under {self.root / _TMP_DIR}"):
            staging = Path(tempfile.mkdtemp(prefix=f"{manifest_head['key']}.", dir=self.root / _TMP_DIR))
        try:
            build(staging)
            _write_manifest(staging, manifest_head)
            entry.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(staging, entry)
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST) or _entry_problem(
                        entry, manifest_head["kind"], manifest_head["key"]) is not None:
                    raise
                # another machine built it although we held the lock: locks do not reach across this file system
                logger.warning("cache entry %s appeared while this process held its lock: the lock does not hold "
                               "across the processes sharing %s; set %s=soft for all of them (docs/cluster.md)",
                               entry, self.root, "JUNKDNA_CACHE_LOCK")
                shutil.rmtree(staging, ignore_errors=True)
                return
            _fsync_directory(entry.parent)
        except BaseException as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(exc, OSError) and not isinstance(exc, JunkdnaError) and self._is_storage_failure(exc):
                raise CacheError(
                    f"cannot write cache entry {entry} ({exc.strerror or exc}: {exc.filename or ''}); {_ADVICE}"
                ) from exc
            raise

    def _is_storage_failure(self, exc: OSError) -> bool:
        """Whether ``exc`` means the cache's own storage is full, read-only or not writable."""
        if exc.errno in _STORAGE_ERRNOS:
            return True
        if exc.errno in _PERMISSION_ERRNOS and exc.filename is not None:
            return _is_within(Path(os.fsdecode(exc.filename)), self.root)
        return False

    def _discard(self, path: Path, key: str) -> None:
        """Move ``path`` aside into the temp dir (atomic) and delete it; the caller holds its lock."""
        with _storage_errors(f"cannot remove cache entry {path}"):
            trash = Path(tempfile.mkdtemp(prefix=f"{key}.discard-", dir=self.root / _TMP_DIR))
            os.replace(path, trash / "entry")
            shutil.rmtree(trash)

    def _sweep_leftovers(self, held_key: str | None) -> None:
        """Delete temp dirs of builds that are no longer running.

        A temp dir belongs to the key its name starts with. Under ``held_key``'s lock
        its temp dirs are leftovers by construction; any other key's temp dirs are
        removed only if that key's lock can be taken at once (no live builder).
        """
        tmp_root = self.root / _TMP_DIR
        by_key: dict[str, list[Path]] = {}
        for child in _list_dir(tmp_root):
            owner = child.name.split(".", 1)[0]
            if _KEY_PATTERN.fullmatch(owner):
                by_key.setdefault(owner, []).append(child)
        for owner, paths in by_key.items():
            if owner == held_key:
                _remove_all(paths)
                continue
            try:
                with self.locking.hold(self._lock_path(owner), "exclusive", blocking=False):
                    _remove_all(paths)
            except (LockBusy, OSError):
                continue

    def _entry_dirs(self, kind: str | None) -> list[Path]:
        """Directories shaped like entries (complete or not), of one kind or all kinds."""
        if kind is not None:
            kind_dirs = [self.root / kind]
        else:
            kind_dirs = [d for d in _list_dir(self.root) if d.name not in (_LOCKS_DIR, _TMP_DIR)]
        return [
            key_dir
            for kind_dir in kind_dirs
            for prefix_dir in _list_dir(kind_dir)
            for key_dir in _list_dir(prefix_dir)
            if key_dir.is_dir() and _KEY_PATTERN.fullmatch(key_dir.name) and key_dir.name[:2] == prefix_dir.name
        ]


# -- canonical JSON -----------------------------------------------------------------


def _check_kind(kind: str) -> None:
    """Raise ConfigError unless ``kind`` is a safe directory name that is not reserved."""
    if not isinstance(kind, str) or not _KIND_PATTERN.fullmatch(kind) or kind in (_LOCKS_DIR, _TMP_DIR):
        raise ConfigError(
            f"cache kind must match {_KIND_PATTERN.pattern} and not be {_LOCKS_DIR!r} or {_TMP_DIR!r}; "
            f"got {kind!r}"
        )


def _check_jsonable(value: Any, what: str, path: tuple[str, ...]) -> None:
    """Raise ConfigError naming the key path of the first value JSON cannot hold exactly."""
    where = ".".join(path) or "<top level>"
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"{what}: key {where!r} is {value!r}; allowed: {_JSON_ALLOWED}")
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_jsonable(item, what, (*path, str(index)))
        return
    if isinstance(value, Mapping):
        for name, item in value.items():
            if not isinstance(name, str):
                raise ConfigError(
                    f"{what}: key {name!r} under {where!r} is a {type(name).__name__}; allowed: {_JSON_ALLOWED}"
                )
            _check_jsonable(item, what, (*path, name))
        return
    raise ConfigError(f"{what}: key {where!r} is a {type(value).__name__} ({value!r}); allowed: {_JSON_ALLOWED}")


def _canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, ASCII, floats as their exact repr."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


# -- manifest writing and verification -----------------------------------------------


def _write_manifest(directory: Path, head: Mapping[str, Any]) -> None:
    """Hash and fsync every file under ``directory``, then write the manifest last."""
    if (directory / MANIFEST_NAME).exists():
        raise CacheError(f"the build wrote its own {MANIFEST_NAME} in {directory}; that name is reserved")
    files = []
    for path in sorted(_walk_files(directory)):
        relative = path.relative_to(directory).as_posix()
        files.append({"path": relative, "size": path.stat().st_size, "hash": _hash_and_fsync(path)})
    now = time.time()
    manifest = {
        "schema": CACHE_SCHEMA,
        **head,
        "created": datetime.fromtimestamp(now, timezone.utc).isoformat(),
        "junkdna_version": __version__,
        "hash_algorithm": HASH_ALGORITHM,
        "files": files,
    }
    _write_durably(directory / MANIFEST_NAME, json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8"))
    _fsync_directory(directory)


def _walk_files(directory: Path) -> Iterator[Path]:
    """Every regular file under ``directory``; a symlink or special file is a build error."""
    for dirpath, dirnames, filenames in os.walk(directory):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            if path.is_symlink():
                raise CacheError(f"the build left a symlink {path}; cache entries hold regular files only")
        for name in filenames:
            path = Path(dirpath) / name
            if not path.is_file():
                raise CacheError(f"the build left {path}, which is not a regular file")
            yield path


def _entry_problem(entry: Path, kind: str, key: str) -> str | None:
    """None if ``entry`` is complete and intact, else what is wrong with it ("missing" if absent)."""
    if not entry.is_dir():
        return "missing"
    try:
        manifest = json.loads((entry / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"{MANIFEST_NAME} is missing or unreadable ({exc})"
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        return f"{MANIFEST_NAME} has no file list"
    expected = {"schema": CACHE_SCHEMA, "kind": kind, "key": key, "hash_algorithm": HASH_ALGORITHM}
    for field, value in expected.items():
        if manifest.get(field) != value:
            return f"{MANIFEST_NAME} says {field}={manifest.get(field)!r}, expected {value!r}"
    for record in manifest["files"]:
        problem = _file_problem(entry, record)
        if problem is not None:
            return problem
    return None


def _file_problem(entry: Path, record: Any) -> str | None:
    """None if the file a manifest record describes is present with its size and hash."""
    if not isinstance(record, dict) or not isinstance(record.get("path"), str):
        return f"{MANIFEST_NAME} has a malformed file record {record!r}"
    relative = PurePosixPath(record["path"])
    if relative.is_absolute() or ".." in relative.parts:
        return f"{MANIFEST_NAME} names a file outside the entry: {record['path']!r}"
    path = entry.joinpath(*relative.parts)
    try:
        stat = path.stat()
    except OSError:
        return f"file {record['path']!r} is missing"
    if stat.st_size != record.get("size"):
        return f"file {record['path']!r} has {stat.st_size} bytes, manifest says {record.get('size')}"
    try:
        digest = file_digest(path, HASH_ALGORITHM)
    except OSError as exc:
        return f"file {record['path']!r} cannot be read ({exc})"
    if digest != record.get("hash"):
        return f"file {record['path']!r} does not match its {HASH_ALGORITHM} hash"
    return None


def _hash_and_fsync(path: Path) -> str:
    """The file's hash, after flushing it to stable storage."""
    hasher = hashlib.blake2b()
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
        while chunk := handle.read(_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def _read_entry(path: Path) -> CacheEntry | None:
    """The entry described by ``path``'s manifest, or None if it has no readable manifest."""
    try:
        manifest = json.loads((path / MANIFEST_NAME).read_text(encoding="utf-8"))
        created = datetime.fromisoformat(manifest["created"])
        kind, key, description = manifest["kind"], manifest["key"], manifest.get("description", "")
        accessed = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return CacheEntry(kind, key, path, sum(_tree_size(path)), created, description, accessed,
                      manifest.get("evictable") is True)


def _touch(entry: Path) -> None:
    """Record a use of ``entry`` as its directory's modification time (best effort: a read-only cache is fine)."""
    try:
        os.utime(entry)
    except OSError:
        pass


def _revalidate(directory: Path) -> None:
    """Open ``directory`` so an NFS client revalidates its cached attributes (close-to-open), and with them
    what it remembers of the names inside: an entry another machine just renamed into place is then seen."""
    try:
        os.close(os.open(directory, os.O_RDONLY))
    except OSError:
        pass


# -- small filesystem helpers --------------------------------------------------------


@contextmanager
def _storage_errors(what: str) -> Iterator[None]:
    """Turn an OSError from the cache's own filesystem work into CacheError with advice."""
    try:
        yield
    except JunkdnaError:
        raise
    except OSError as exc:
        raise CacheError(f"{what}: {exc.strerror or exc} ({exc.filename or ''}); {_ADVICE}") from exc


def _write_durably(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file and fsync it."""
    with open(path, "xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_directory(path: Path) -> None:
    """Flush a directory's entries (renames, new files) to stable storage."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _list_dir(path: Path) -> list[Path]:
    """The children of ``path``, or nothing if it is not a readable directory."""
    try:
        return sorted(path.iterdir())
    except OSError:
        return []


def _tree_size(path: Path) -> Iterator[int]:
    """Sizes of every file under ``path`` (files that vanish meanwhile are skipped)."""
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            try:
                yield os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue


def _remove_all(paths: list[Path]) -> None:
    """Delete directories, ignoring ones already gone."""
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


def _is_within(path: Path, root: Path) -> bool:
    """Whether ``path`` is ``root`` or lies under it."""
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True



def default_cache(cache: ArtifactCache | None) -> ArtifactCache:
    """``cache``, or the default ArtifactCache ($JUNKDNA_CACHE or the user cache dir)."""
    return cache if cache is not None else ArtifactCache()
