"""The cache cap: least recently used evictable entries go first, entries in use and JSON results are kept,
uses are recorded without touching manifests, and a capped cache prunes itself after each build."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from junkdna_core.cli import main
from junkdna_core.config.errors import ConfigError
from junkdna_core.storage.cache import MANIFEST_NAME, ArtifactCache

SIZE = 10_000

# A child process that holds one entry (by name) under use() until told to stop. argv: root, name, ready, stop
HOLDER = r"""
import sys, time
from pathlib import Path
from junkdna_core.storage.cache import ArtifactCache

root, name, ready, stop = sys.argv[1:]
def build(directory):
    (directory / "weights.bin").write_bytes(b"x" * 10_000)
with ArtifactCache(root).use("compressed", {"name": name}, build):
    Path(ready).touch()
    while not Path(stop).exists():
        time.sleep(0.02)
"""


def _build(directory: Path) -> None:
    (directory / "weights.bin").write_bytes(b"x" * SIZE)


def _use(cache: ArtifactCache, name: str) -> Path:
    with cache.use("compressed", {"name": name}, _build) as path:
        assert (path / "weights.bin").stat().st_size == SIZE
        return path


def _aged(path: Path, seconds_ago: float) -> None:
    """Pretend the entry at ``path`` was last used ``seconds_ago``."""
    stamp = time.time() - seconds_ago
    os.utime(path, (stamp, stamp))


def test_use_builds_once_records_each_use_and_never_rewrites_the_manifest(tmp_path):
    cache = ArtifactCache(tmp_path)
    calls = []

    def build(directory):
        calls.append(1)
        _build(directory)

    with cache.use("compressed", {"name": "a"}, build) as first:
        manifest = (first / MANIFEST_NAME).read_bytes()
    _aged(first, 3600)
    before = cache.entries()[0].accessed
    with cache.use("compressed", {"name": "a"}, build) as second:
        assert second == first
    (entry,) = cache.entries()
    assert calls == [1] and entry.evictable
    assert (entry.accessed - before).total_seconds() > 3000  # the second use moved the access time to now
    assert (first / MANIFEST_NAME).read_bytes() == manifest


def test_prune_evicts_least_recently_used_evictable_entries_first_and_keeps_results(tmp_path):
    cache = ArtifactCache(tmp_path)
    paths = {name: _use(cache, name) for name in "abcd"}
    scores = cache.get_or_compute_json("choice-scores", {"level": 1}, lambda: [[0.5] * 100])
    model = cache.get_or_build("model", {"name": "dense"}, _build)
    for age, name in enumerate("cabd"):  # d was used last, c longest ago
        _aged(paths[name], 100 - age)
    entry_bytes = max(e.size_bytes for e in cache.entries() if e.kind == "compressed")
    report = cache.prune(cache.size_bytes() - entry_bytes - 1)  # one entry is not enough: two must go
    assert [e.key for e in report.evicted] == [paths["c"].name, paths["a"].name]
    assert report.within_limit and report.freed_bytes == 2 * report.evicted[0].size_bytes
    assert not paths["c"].exists() and not paths["a"].exists() and paths["b"].exists() and paths["d"].exists()
    assert model.exists() and cache.get_or_compute_json("choice-scores", {"level": 1}, list) == scores
    everything = cache.prune(0)  # results and bare get_or_build entries are never evicted
    assert {e.key for e in everything.evicted} == {paths["b"].name, paths["d"].name}
    assert not everything.within_limit and {e.kind for e in cache.entries()} == {"choice-scores", "model"}


def test_a_capped_cache_prunes_after_each_build_but_never_the_entry_just_built(tmp_path):
    unlimited = ArtifactCache(tmp_path)
    first = _use(unlimited, "a")
    entry_bytes = unlimited.size_bytes()
    _aged(first, 60)
    capped = ArtifactCache(tmp_path, max_bytes=entry_bytes + entry_bytes // 2)
    second = _use(capped, "b")
    assert not first.exists() and second.exists()
    tiny = ArtifactCache(tmp_path, max_bytes=1)  # smaller than one entry: the new one stays until it is unused
    third = _use(tiny, "c")
    assert third.exists() and not second.exists()


def test_an_entry_another_process_reads_is_never_evicted(tmp_path):
    root = tmp_path / "cache"
    ready, stop = tmp_path / "ready", tmp_path / "stop"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(root), "held", str(ready), str(stop)],
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and holder.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ready.exists(), holder.stderr.read() if holder.stderr else ""
        cache = ArtifactCache(root)
        free = _use(cache, "free")
        held = cache.entry_dir("compressed", cache.key("compressed", {"name": "held"}))
        _aged(held, 200)  # the held entry is the least recently used: first in line, but in use
        _aged(free, 100)
        report = cache.prune(0)
        assert [e.key for e in report.in_use] == [held.name] and [e.key for e in report.evicted] == [free.name]
        assert held.exists() and not free.exists()
    finally:
        stop.touch()
        holder.communicate(timeout=60)
    assert holder.returncode == 0
    assert [e.key for e in ArtifactCache(root).prune(0).evicted] == [held.name]  # released: now it goes


def test_bad_caps_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="bytes >= 0"):
        ArtifactCache(tmp_path, max_bytes=-1)
    with pytest.raises(ConfigError, match="bytes >= 0"):
        ArtifactCache(tmp_path).prune(1.5)  # type: ignore[arg-type]


def test_cli_prune_reports_what_it_evicted(tmp_path, capsys):
    cache = ArtifactCache(tmp_path)
    old, new = _use(cache, "old"), _use(cache, "new")
    _aged(old, 100)
    keep = cache.size_bytes() - 1
    assert main(["cache", "prune", "--max-gb", str(keep / 1e9), "--cache", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"evicted compressed {old.name[:16]}" in out and "evicted 1 entries" in out
    assert not old.exists() and new.exists()
    cache.get_or_compute_json("scores", {"x": 1}, lambda: list(range(1000)))
    assert main(["cache", "prune", "--max-gb", "0", "--cache", str(tmp_path)]) == 1  # scores are kept
    assert "the cap is not reached" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["cache", "prune"], "needs --max-gb"),
    (["cache", "list", "--max-gb", "3"], "goes with `junkdna cache prune`"),
    (["cache", "prune", "--max-gb", "1", "--kind", "scores"], "no --kind"),
])
def test_cli_prune_misuse_is_an_error_naming_the_fix(tmp_path, capsys, argv, message):
    assert main([*argv, "--cache", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["-1", "lots", "nan"])
def test_cli_rejects_bad_sizes_before_anything_runs(tmp_path, capsys, bad):
    with pytest.raises(SystemExit) as info:
        main(["cache", "prune", "--max-gb", bad, "--cache", str(tmp_path)])
    assert info.value.code == 2 and "size in GB" in capsys.readouterr().err


def test_pytest_option_caps_the_cache_of_a_run(pytester: pytest.Pytester, tmp_path):
    pytester.makepyfile(test_cap="""
        def test_cap(jd_cache, jd_session):
            assert jd_session.cache_max_bytes == 2_500_000_000
            assert jd_cache.max_bytes == 2_500_000_000
    """)
    result = pytester.runpytest_subprocess("--jd-cache-max-gb", "2.5", "--jd-cache", str(tmp_path / "c"),
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    bad = pytester.runpytest_subprocess("--jd-cache-max-gb", "-3", "-p", "no:cacheprovider")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR and "size in GB" in bad.stderr.str()


def test_entries_report_evictability_and_access(tmp_path):
    cache = ArtifactCache(tmp_path)
    _use(cache, "a")
    cache.get_or_compute_json("scores", {"x": 1}, lambda: 1)
    by_kind = {e.kind: e for e in cache.entries()}
    assert by_kind["compressed"].evictable and not by_kind["scores"].evictable
    manifest = json.loads((by_kind["compressed"].path / MANIFEST_NAME).read_text())
    assert manifest["evictable"] is True
