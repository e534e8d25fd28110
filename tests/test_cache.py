"""Tests of the content-addressed artifact cache, with real racing and killed processes."""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import math
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import platformdirs
import pytest
from filelock import FileLock

from junkdna_core.config.errors import CacheError, ConfigError
from junkdna_core.storage.cache import (
    CACHE_SCHEMA,
    MANIFEST_NAME,
    ArtifactCache,
    default_cache_root,
)

PAYLOAD = b"weights " * 1000

# A child process: waits until all racers are ready, then asks for one entry.
# argv: root, count_file, ready_dir, racers, index, build_seconds
RACER = r"""
import sys, time
from pathlib import Path
from junkdna_core.storage.cache import ArtifactCache

root, count_file, ready_dir, racers, index, build_seconds = sys.argv[1:]
ready = Path(ready_dir)
(ready / index).touch()
deadline = time.monotonic() + 20
while len(list(ready.iterdir())) < int(racers) and time.monotonic() < deadline:
    time.sleep(0.005)

def build(directory):
    with open(count_file, "a") as handle:
        handle.write(index + "\n")
    time.sleep(float(build_seconds))
    (directory / "weights.bin").write_bytes(b"weights " * 1000)

print(ArtifactCache(root).get_or_build("model", {"name": "tiny", "seed": 0}, build))
"""

# A child process whose build writes part of a file, signals, then hangs until killed.
# argv: root, started_file
HANGER = r"""
import sys, time
from pathlib import Path
from junkdna_core.storage.cache import ArtifactCache

root, started_file = sys.argv[1:]

def build(directory):
    (directory / "weights.bin").write_bytes(b"partial")
    Path(started_file).touch()
    time.sleep(60)

ArtifactCache(root).get_or_build("model", {"name": "tiny", "seed": 0}, build)
"""


class CountingBuild:
    """A build that records how often it ran and writes a fixed payload."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, directory: Path) -> None:
        self.calls += 1
        (directory / "weights.bin").write_bytes(PAYLOAD)
        (directory / "config").mkdir()
        (directory / "config" / "config.json").write_text('{"hidden": 32}')


def _tmp_children(cache: ArtifactCache) -> list[Path]:
    tmp = cache.root / "tmp"
    return sorted(tmp.iterdir()) if tmp.is_dir() else []


def _entry_dirs(cache: ArtifactCache) -> list[Path]:
    return [p for p in cache.root.glob("*/*/*") if p.parts[-3] not in ("locks", "tmp")]


# -- keys -----------------------------------------------------------------------------


def test_key_is_pinned_and_equals_sha256_of_canonical_json(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)
    parts = {"model": "smollm2", "sparsity": 0.5, "layers": [1, 2], "extra": {"b": None, "a": True}}
    canonical = (
        '{"kind":"compressed-model","parts":{"extra":{"a":true,"b":null},"layers":[1,2],'
        '"model":"smollm2","sparsity":0.5},"schema":1}'
    )
    pinned = "5f7a9a642cc1ebd322513b63b7d3e00aee9d13b947048b5202f0172cc847f167"
    assert CACHE_SCHEMA == 1
    assert hashlib.sha256(canonical.encode()).hexdigest() == pinned
    assert cache.key("compressed-model", parts) == pinned
    reordered = {"layers": [1, 2], "extra": {"a": True, "b": None}, "sparsity": 0.5, "model": "smollm2"}
    assert ArtifactCache(tmp_path / "elsewhere").key("compressed-model", reordered) == pinned


@pytest.mark.parametrize(
    ("kind", "parts"),
    [
        ("other-kind", {"a": 1, "b": [0.1, "x"]}),
        ("m", {"a": 2, "b": [0.1, "x"]}),
        ("m", {"a": 1.0, "b": [0.1, "x"]}),
        ("m", {"a": "1", "b": [0.1, "x"]}),
        ("m", {"a": True, "b": [0.1, "x"]}),
        ("m", {"a": 1, "b": [math.nextafter(0.1, 1.0), "x"]}),
        ("m", {"a": 1, "b": ["x", 0.1]}),
        ("m", {"a": 1, "b": [0.1, "x"], "c": None}),
        ("m", {"a": 1}),
        ("m", {"A": 1, "b": [0.1, "x"]}),
    ],
)
def test_key_differs_when_any_part_differs(tmp_path: Path, kind: str, parts: dict) -> None:
    cache = ArtifactCache(tmp_path)
    base = cache.key("m", {"a": 1, "b": [0.1, "x"]})
    assert cache.key(kind, parts) != base


def test_key_floats_are_exact(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)
    assert cache.key("m", {"x": 0.1 + 0.2}) != cache.key("m", {"x": 0.3})
    assert cache.key("m", {"x": 0.1 + 0.2}) == cache.key("m", {"x": 0.30000000000000004})


@pytest.mark.parametrize(
    ("parts", "named"),
    [
        ({"model": "x", "params": {"dtype": object()}}, "params.dtype"),
        ({"levels": [0.1, float("nan")]}, "levels.1"),
        ({"scale": float("inf")}, "scale"),
        ({"path": Path("/x")}, "path"),
        ({"groups": {1: "a"}}, "1"),
        ({"items": {"a", "b"}}, "items"),
    ],
)
def test_key_rejects_non_json_parts_naming_the_key(tmp_path: Path, parts: dict, named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")) as info:
        ArtifactCache(tmp_path).key("m", parts)
    assert "allowed" in str(info.value)


@pytest.mark.parametrize("kind", ["", "../up", "a/b", "locks", "tmp", ".hidden", 3])
def test_bad_kind_is_rejected(tmp_path: Path, kind: object) -> None:
    with pytest.raises(ConfigError, match="cache kind"):
        ArtifactCache(tmp_path).key(kind, {"a": 1})  # type: ignore[arg-type]


def test_entry_dir_layout_and_bad_key(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)
    key = cache.key("m", {"a": 1})
    assert cache.entry_dir("m", key) == tmp_path / "m" / key[:2] / key
    with pytest.raises(ConfigError, match="64 lowercase hex"):
        cache.entry_dir("m", "../../etc")


def test_default_root_follows_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JUNKDNA_CACHE", str(tmp_path / "jd"))
    assert default_cache_root() == tmp_path / "jd"
    assert ArtifactCache().root == tmp_path / "jd"
    monkeypatch.delenv("JUNKDNA_CACHE")
    assert default_cache_root() == Path(platformdirs.user_cache_dir("junkdna"))


# -- building and reuse -----------------------------------------------------------------


def test_build_once_then_reuse_with_manifest(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)
    build = CountingBuild()
    first = cache.get_or_build("model", {"n": 1}, build, description="tiny llama")
    second = cache.get_or_build("model", {"n": 1}, build)
    assert first == second == cache.entry_dir("model", cache.key("model", {"n": 1}))
    assert build.calls == 1
    assert (first / "weights.bin").read_bytes() == PAYLOAD
    manifest = json.loads((first / MANIFEST_NAME).read_text())
    assert manifest["kind"] == "model" and manifest["parts"] == {"n": 1}
    assert manifest["description"] == "tiny llama" and manifest["junkdna_version"]
    files = {record["path"]: record for record in manifest["files"]}
    assert set(files) == {"weights.bin", "config/config.json"}
    assert files["weights.bin"]["size"] == len(PAYLOAD)
    assert files["weights.bin"]["hash"] == hashlib.blake2b(PAYLOAD).hexdigest()
    assert _tmp_children(cache) == []


def test_racing_processes_build_exactly_once(tmp_path: Path) -> None:
    root, count, ready = tmp_path / "cache", tmp_path / "count.txt", tmp_path / "ready"
    ready.mkdir()
    racers = 4
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(root), str(count), str(ready), str(racers), str(i), "0.5"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(racers)
    ]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * racers, [err for _, err in outputs]
    paths = {out.strip() for out, _ in outputs}
    assert len(count.read_text().splitlines()) == 1
    assert len(paths) == 1
    cache = ArtifactCache(root)
    expected = cache.entry_dir("model", cache.key("model", {"name": "tiny", "seed": 0}))
    assert Path(paths.pop()) == expected
    assert (expected / "weights.bin").read_bytes() == PAYLOAD
    assert _tmp_children(cache) == []


def test_racing_threads_build_exactly_once(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)
    started = threading.Barrier(4)
    build = CountingBuild()

    def slow_build(directory: Path) -> None:
        time.sleep(0.2)
        build(directory)

    def worker() -> Path:
        started.wait()
        return cache.get_or_build("model", {"n": 1}, slow_build)

    with ThreadPoolExecutor(max_workers=4) as pool:
        paths = {future.result(timeout=30) for future in [pool.submit(worker) for _ in range(4)]}
    assert build.calls == 1 and len(paths) == 1


@pytest.mark.parametrize("damage", ["truncate", "flip-byte", "delete-file", "garbage-manifest", "no-manifest"])
def test_corrupt_entry_is_detected_logged_and_rebuilt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    cache = ArtifactCache(tmp_path)
    build = CountingBuild()
    entry = cache.get_or_build("model", {"n": 1}, build)
    assert cache.get_or_build("model", {"n": 1}, build) == entry  # a verified (memoized) read first
    time.sleep(0.05)  # file timestamps are coarse: damage comes later than the read, as in real life
    weights = entry / "weights.bin"
    if damage == "truncate":
        weights.write_bytes(PAYLOAD[:-100])
    elif damage == "flip-byte":
        data = bytearray(weights.read_bytes())
        data[len(data) // 2] ^= 0x01
        weights.write_bytes(bytes(data))
    elif damage == "delete-file":
        weights.unlink()
    elif damage == "garbage-manifest":
        (entry / MANIFEST_NAME).write_text('{"files": [')
    else:
        (entry / MANIFEST_NAME).unlink()
    with caplog.at_level(logging.WARNING, logger="junkdna_core.storage.cache"):
        again = cache.get_or_build("model", {"n": 1}, build)
    assert again == entry
    assert build.calls == 2
    assert weights.read_bytes() == PAYLOAD
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(entry) in warnings[0]
    if damage in ("truncate", "flip-byte", "delete-file"):
        assert "weights.bin" in warnings[0]
    assert cache.get_or_build("model", {"n": 1}, build) == entry and build.calls == 2
    assert _tmp_children(cache) == []


def test_failing_build_leaves_nothing_and_reraises(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)

    def failing(directory: Path) -> None:
        (directory / "half.bin").write_bytes(b"half")
        raise RuntimeError("conversion failed")

    with pytest.raises(RuntimeError, match="conversion failed"):
        cache.get_or_build("model", {"n": 1}, failing)
    assert _entry_dirs(cache) == []
    assert _tmp_children(cache) == []
    build = CountingBuild()
    assert (cache.get_or_build("model", {"n": 1}, build) / "weights.bin").read_bytes() == PAYLOAD


def test_sigkilled_build_leaves_no_entry_and_next_build_is_clean(tmp_path: Path) -> None:
    root, started = tmp_path / "cache", tmp_path / "started"
    proc = subprocess.Popen([sys.executable, "-c", HANGER, str(root), str(started)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while not started.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert started.exists(), proc.stderr.read() if proc.stderr else ""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    proc.stderr.close()  # type: ignore[union-attr]
    cache = ArtifactCache(root)
    leftovers = _tmp_children(cache)
    assert len(leftovers) == 1 and (leftovers[0] / "weights.bin").read_bytes() == b"partial"
    assert _entry_dirs(cache) == [] and cache.entries() == []
    build = CountingBuild()
    entry = cache.get_or_build("model", {"name": "tiny", "seed": 0}, build)
    assert build.calls == 1 and (entry / "weights.bin").read_bytes() == PAYLOAD
    assert _tmp_children(cache) == []


def test_leftovers_of_other_keys_are_swept_only_when_unlocked(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)
    other = cache.key("model", {"n": "other"})
    cache.get_or_build("model", {"n": 0}, CountingBuild())
    leftover = tmp_path / "tmp" / f"{other}.abc123"
    leftover.mkdir()
    (leftover / "weights.bin").write_bytes(b"partial")
    with FileLock(str(tmp_path / "locks" / f"{other}.lock")):
        cache.get_or_build("model", {"n": 1}, CountingBuild())
        assert leftover.exists()  # its builder may still be alive
    cache.get_or_build("model", {"n": 2}, CountingBuild())
    assert not leftover.exists()


# -- JSON results -----------------------------------------------------------------------


def test_get_or_compute_json_computes_once(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)
    calls = []

    def compute() -> dict:
        calls.append(1)
        return {"scores": (0.25, 1.0), "ids": ["arc-1", "arc-2"], "n": 2}

    first = cache.get_or_compute_json("item-scores", {"task": "arc"}, compute)
    second = cache.get_or_compute_json("item-scores", {"task": "arc"}, compute)
    assert first == second == {"scores": [0.25, 1.0], "ids": ["arc-1", "arc-2"], "n": 2}
    assert len(calls) == 1


def test_get_or_compute_json_rejects_non_json_result(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)
    with pytest.raises(ConfigError, match=r"scores\.1"):
        cache.get_or_compute_json("item-scores", {"task": "arc"}, lambda: {"scores": [0.5, float("nan")]})
    assert _entry_dirs(cache) == [] and _tmp_children(cache) == []


# -- unwritable storage -----------------------------------------------------------------


def test_uncreatable_root_raises_cache_error_with_path(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    root = blocker / "cache"
    build = CountingBuild()
    with pytest.raises(CacheError, match="JUNKDNA_CACHE") as info:
        ArtifactCache(root).get_or_build("model", {"n": 1}, build)
    assert str(root) in str(info.value)
    assert build.calls == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_root_raises_cache_error_with_path(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    root.mkdir()
    root.chmod(0o555)
    try:
        with pytest.raises(CacheError, match="JUNKDNA_CACHE") as info:
            ArtifactCache(root).get_or_build("model", {"n": 1}, CountingBuild())
        assert str(root) in str(info.value)
    finally:
        root.chmod(0o755)


def test_disk_full_during_build_raises_cache_error_and_leaves_nothing(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)

    def fills_disk(directory: Path) -> None:
        (directory / "weights.bin").write_bytes(b"part")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(directory / "weights.bin"))

    with pytest.raises(CacheError, match="--jd-cache") as info:
        cache.get_or_build("model", {"n": 1}, fills_disk)
    assert str(tmp_path) in str(info.value)
    assert isinstance(info.value.__cause__, OSError) and info.value.__cause__.errno == errno.ENOSPC
    assert _entry_dirs(cache) == [] and _tmp_children(cache) == []


def test_unrelated_os_error_from_build_is_not_wrapped(tmp_path: Path) -> None:
    def missing_input(directory: Path) -> None:
        raise FileNotFoundError(errno.ENOENT, "no such model file", "/nowhere/model.gguf")

    with pytest.raises(FileNotFoundError) as info:
        ArtifactCache(tmp_path).get_or_build("model", {"n": 1}, missing_input)
    assert not isinstance(info.value, CacheError)


# -- inspection and clearing --------------------------------------------------------------


def test_entries_size_and_clear(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)
    assert cache.entries() == [] and cache.size_bytes() == 0 and cache.clear() == 0
    model_a = cache.get_or_build("model", {"n": 1}, CountingBuild(), description="first")
    model_b = cache.get_or_build("model", {"n": 2}, CountingBuild(), description="second")
    cache.get_or_compute_json("item-scores", {"task": "arc"}, lambda: [1, 0, 1])
    entries = cache.entries()
    assert [(e.kind, e.description) for e in entries] == [("item-scores", ""), ("model", "first"), ("model", "second")]
    assert {e.path for e in entries if e.kind == "model"} == {model_a, model_b}
    for entry in entries:
        on_disk = sum(p.stat().st_size for p in entry.path.rglob("*") if p.is_file())
        assert entry.size_bytes == on_disk > 0
        assert entry.key == entry.path.name and entry.created.tzinfo is not None
    assert cache.size_bytes() == sum(e.size_bytes for e in entries)  # lock files are empty
    assert cache.clear("model") == 2
    assert [e.kind for e in cache.entries()] == ["item-scores"]
    assert not model_a.exists() and not model_b.exists()
    assert cache.clear() == 1
    assert cache.entries() == [] and cache.size_bytes() == 0
    build = CountingBuild()
    cache.get_or_build("model", {"n": 1}, build)
    assert build.calls == 1
