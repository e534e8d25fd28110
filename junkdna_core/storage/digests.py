"""File digests, memoised per process by the file's identity and stat, so hot reads stay cheap."""

from __future__ import annotations

import base64
import functools
import hashlib
import os

_CHUNK = 1 << 20


def file_digest(path: str | os.PathLike[str], algorithm: str) -> str:
    """The hex digest of the file at ``path`` with ``algorithm`` (``blake2b``, ``sha256``, ...).

    Recomputed only when the file's size, modification or change time or inode changed.
    """
    stat = os.stat(path)
    return _digest(os.fspath(path), algorithm, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)


def record_sha256(path: str | os.PathLike[str]) -> str:
    """The file's sha256 as pip's RECORD writes it: urlsafe base64 without padding."""
    digest = bytes.fromhex(file_digest(path, "sha256"))
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@functools.lru_cache(maxsize=4096)
def _digest(path: str, algorithm: str, size: int, mtime_ns: int, ctime_ns: int, inode: int) -> str:
    del size, mtime_ns, ctime_ns, inode  # part of the memo key only
    hasher = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()
