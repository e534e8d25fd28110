"""Several machines: pytest-split's groups partition the benchmark suite, and two groups run at once over one
cache give the records of the unsplit run, with every compressed model built once.

The groups here are two concurrent processes on this machine sharing a cache directory, the way two
Slurm array tasks share a cache on a network file system (docs/cluster.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("pytest_split", reason="pytest-split is in the test extra: pip install -e .[test]")

from junkdna_core.storage.cache import ArtifactCache

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SMALL_RUN = ["-k", "setting2", "--jd-model", "random:tiny-llama", "--jd-methods", "magnitude,random",
             "--jd-items", "6", "--jd-sparsities", "0.2,0.4,0.6", "--jd-device", "cpu",
             "-p", "no:cacheprovider", "-p", "no:randomly"]
# Logs every compressed model a process builds, to one file shared by all the processes of a test.
BUILD_LOG_PLUGIN = """
import os

def pytest_configure(config):
    from junkdna_core.study import artifacts

    real = artifacts.compress_model

    def compress_model(model, method, **kwargs):
        with open(os.environ["JD_BUILD_LOG"], "a") as handle:
            handle.write(f"{os.getpid()} {method!r}\\n")
        return real(model, method, **kwargs)

    artifacts.compress_model = compress_model
"""


def _collected(*args: str) -> list[str]:
    result = subprocess.run([sys.executable, "-m", "pytest", str(BENCHMARKS), "--collect-only", "-q",
                             "-p", "no:cacheprovider", *args], check=False, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return [line for line in result.stdout.splitlines() if "::" in line]


def test_two_groups_partition_the_benchmark_suite(tmp_path):
    everything = _collected()
    assert len(everything) > 10
    groups = [_collected("--splits", "2", "--group", str(k)) for k in (1, 2)]
    assert all(groups) and sorted(groups[0] + groups[1]) == sorted(everything)
    assert not set(groups[0]) & set(groups[1])
    durations = tmp_path / "durations.json"  # with durations stored by an earlier run, the split still partitions
    durations.write_text(json.dumps({test: 1.0 + i % 7 for i, test in enumerate(everything)}))
    weighted = [_collected("--splits", "2", "--group", str(k), "--durations-path", str(durations)) for k in (1, 2)]
    assert sorted(weighted[0] + weighted[1]) == sorted(everything) and not set(weighted[0]) & set(weighted[1])


def _start(workdir: Path, cache: Path, results: Path, *args: str) -> subprocess.Popen:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "jd_build_log.py").write_text(BUILD_LOG_PLUGIN)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(workdir), os.environ.get("PYTHONPATH", "")]),
           "JD_BUILD_LOG": str(workdir.parent / "builds.log"), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "pytest", str(BENCHMARKS), *SMALL_RUN, "--jd-cache", str(cache),
                             "--jd-results", str(results), "-p", "jd_build_log", *args], cwd=workdir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _records(results: Path) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True)
                  for path in sorted(results.glob("run-*.json")) for r in json.loads(path.read_text())["records"])


def _builds(log: Path) -> Counter:
    return Counter(line.split(" ", 1)[1] for line in log.read_text().splitlines()) if log.exists() else Counter()


def test_two_concurrent_groups_over_one_cache_equal_the_unsplit_run(tmp_path):
    unsplit = _start(tmp_path / "unsplit", tmp_path / "cache-unsplit", tmp_path / "results-unsplit")
    output, _ = unsplit.communicate(timeout=1800)
    assert unsplit.returncode in (0, 1), output[-3000:]  # 1: a claim may fail on a random model; it is recorded
    unsplit_builds = _builds(tmp_path / "builds.log")
    (tmp_path / "builds.log").unlink()

    shared, results = tmp_path / "cache-shared", tmp_path / "results-split"
    groups = [_start(tmp_path / f"group{k}", shared, results, "--splits", "2", "--group", str(k)) for k in (1, 2)]
    outputs = [proc.communicate(timeout=1800)[0] for proc in groups]
    assert [proc.returncode for proc in groups] != [5, 5], outputs  # neither group was empty
    assert all(proc.returncode in (0, 1) for proc in groups), [out[-3000:] for out in outputs]
    assert len(list(results.glob("run-*.json"))) == 2  # one record per group, merged by directory
    assert _records(results) == _records(tmp_path / "results-unsplit")
    split_builds = _builds(tmp_path / "builds.log")
    assert split_builds == unsplit_builds and set(split_builds.values()) == {1}  # each model built once, overall
    compressed = [e for e in ArtifactCache(shared).entries() if e.kind == "compressed"]
    assert len(compressed) == sum(split_builds.values())
    unsplit_keys = {(e.kind, e.key) for e in ArtifactCache(tmp_path / "cache-unsplit").entries()}
    assert {(e.kind, e.key) for e in ArtifactCache(shared).entries()} == unsplit_keys
