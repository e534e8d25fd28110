"""The cache's lock backends (flock, soft): shared and exclusive holds, racing processes, dead holders,
file systems that refuse locks, and builders that a lock failed to keep apart."""

from __future__ import annotations

import errno
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from junkdna_core.config.errors import CacheError, ConfigError
from junkdna_core.storage.cache import ArtifactCache
from junkdna_core.storage.locks import (
    LOCK_ENV,
    FlockLocking,
    LockBusy,
    Locking,
    SoftLocking,
    locking_from_env,
    parse_lock_backend,
)

BACKENDS = {"flock": FlockLocking(), "soft": SoftLocking(heartbeat=0.2)}

# A child that takes a lock and reports it, then holds it until killed. argv: backend, path, mode, ready
HOLDER = r"""
import sys, time
from pathlib import Path
from junkdna_core.storage.locks import FlockLocking, SoftLocking

backend, path, mode, ready = sys.argv[1:]
locking = FlockLocking() if backend == "flock" else SoftLocking(heartbeat=0.2)
with locking.hold(Path(path), mode):
    Path(ready).touch()
    time.sleep(600)
"""

# A child that builds one entry after all racers are ready; the build is logged. argv: root, log, ready, n, index
RACER = r"""
import sys, time
from pathlib import Path
from junkdna_core.storage.cache import ArtifactCache

root, log, ready, racers, index = sys.argv[1:]
Path(ready, index).touch()
while len(list(Path(ready).iterdir())) < int(racers):
    time.sleep(0.005)
def build(directory):
    with open(log, "a") as handle:
        handle.write(index + "\n")
    time.sleep(0.3)
    (directory / "weights.bin").write_bytes(b"w" * 1000)
with ArtifactCache(root).use("compressed", {"n": 1}, build) as path:
    print(path, (path / "weights.bin").stat().st_size)
"""


def _start_holder(backend: str, path: Path, mode: str, tmp_path: Path) -> subprocess.Popen:
    ready = tmp_path / f"ready-{time.monotonic_ns()}"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, backend, str(path), mode, str(ready)],
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ready.exists(), proc.stderr.read() if proc.stderr else ""
    return proc


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_shared_holds_coexist_and_exclude_writers(backend, tmp_path):
    locking, path = BACKENDS[backend], tmp_path / "k.lock"
    reader = _start_holder(backend, path, "shared", tmp_path)
    try:
        with locking.hold(path, "shared", blocking=False):  # a second reader gets in at once
            pass
        with pytest.raises(LockBusy), locking.hold(path, "exclusive", blocking=False):
            pass
    finally:
        _kill(reader)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_exclusive_hold_excludes_readers_and_dies_with_its_holder(backend, tmp_path):
    locking, path = BACKENDS[backend], tmp_path / "k.lock"
    writer = _start_holder(backend, path, "exclusive", tmp_path)
    with pytest.raises(LockBusy), locking.hold(path, "shared", blocking=False):
        pass
    _kill(writer)  # a dead holder: flock's is released by the kernel, soft's marker goes stale after 3 heartbeats
    deadline = time.monotonic() + 30
    with locking.hold(path, "exclusive"):
        assert time.monotonic() < deadline


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_racing_processes_build_once_with_either_backend(backend, tmp_path):
    root, log, ready = tmp_path / "cache", tmp_path / "builds.log", tmp_path / "ready"
    ready.mkdir()
    env = {**os.environ, LOCK_ENV: backend}
    procs = [subprocess.Popen([sys.executable, "-c", RACER, str(root), str(log), str(ready), "3", str(i)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for i in range(3)]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], [err[-2000:] for _, err in outputs]
    assert len(log.read_text().splitlines()) == 1
    assert len({out for out, _ in outputs}) == 1 and outputs[0][0].split()[1] == "1000"


def test_threads_of_one_process_exclude_each_other_with_flock(tmp_path):
    path, inside, overlaps = tmp_path / "k.lock", [], []
    barrier = threading.Barrier(3)

    def worker():
        barrier.wait()
        with FlockLocking().hold(path, "exclusive"):
            overlaps.append(len(inside))
            inside.append(1)
            time.sleep(0.05)
            inside.pop()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert overlaps == [0, 0, 0]


def test_backend_is_chosen_by_environment(monkeypatch):
    monkeypatch.delenv(LOCK_ENV, raising=False)
    assert isinstance(locking_from_env(), FlockLocking)
    monkeypatch.setenv(LOCK_ENV, " Soft ")
    assert isinstance(locking_from_env(), SoftLocking)
    assert isinstance(ArtifactCache("/nowhere").locking, SoftLocking)
    monkeypatch.setenv(LOCK_ENV, "nfs")
    with pytest.raises(ConfigError, match=f"{LOCK_ENV} must be one of flock, soft; got 'nfs'"):
        locking_from_env()
    with pytest.raises(ConfigError, match="heartbeat"):
        SoftLocking(heartbeat=0)
    assert isinstance(parse_lock_backend("flock"), FlockLocking)


def test_a_file_system_without_flock_is_a_cache_error_naming_the_soft_backend(tmp_path, monkeypatch):
    import fcntl

    def refuse(fd, operation):
        raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS))

    monkeypatch.setattr(fcntl, "flock", refuse)
    with pytest.raises(CacheError, match=f"{LOCK_ENV}=soft"):
        ArtifactCache(tmp_path).get_or_build("model", {"n": 1}, lambda d: (d / "x").write_bytes(b"x"))


class _NoLocking(Locking):
    """A lock that excludes nobody: what a file system with per-machine locks gives processes on two machines."""

    name = "none"

    @contextmanager
    def hold(self, path, mode, *, blocking=True):
        yield


def test_builders_a_lock_failed_to_exclude_keep_the_first_entry_and_warn(tmp_path, caplog, monkeypatch):
    cache = ArtifactCache(tmp_path, locking=_NoLocking())
    # (the sweep of leftovers under a held lock would delete the other build's directory: only a working lock
    # makes it safe; here the last step, the rename into place, is what is tested)
    monkeypatch.setattr(cache, "_sweep_leftovers", lambda held_key: None)
    started, second_done = threading.Event(), threading.Event()

    def slow(directory):
        started.set()
        second_done.wait(timeout=30)
        (directory / "w").write_bytes(b"first")

    def fast(directory):
        (directory / "w").write_bytes(b"second")

    with caplog.at_level(logging.WARNING, logger="junkdna_core.storage.cache"):
        first = threading.Thread(target=lambda: cache.get_or_build("model", {"n": 1}, slow))
        first.start()
        started.wait(timeout=30)
        path = cache.get_or_build("model", {"n": 1}, fast)
        second_done.set()
        first.join(timeout=30)
    assert (path / "w").read_bytes() == b"second"  # the entry that landed first stays, verified
    assert any("does not hold across" in r.getMessage() for r in caplog.records)
    assert list((tmp_path / "tmp").iterdir()) == []
