"""Timed runs of the claim benchmarks in a child pytest, shared by warm_cold.py and parallel.py.

A run gets its own artifact cache and results directory; :func:`seed_cache`
copies the converted dense model and tokenizer into a fresh cache first, so
model conversion is never part of a timed run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from junkdna_core.storage.cache import ArtifactCache

REPO = Path(__file__).resolve().parents[2]
# Cache entries that hold the dense model itself, not anything a benchmark run computes.
MODEL_KINDS = ("model", "tokenizer")


def seed_cache(source: ArtifactCache, target: Path) -> None:
    """Copy the entries of ``source`` that hold converted models and tokenizers into the cache at ``target``."""
    for entry in source.entries():
        if entry.kind in MODEL_KINDS:
            shutil.copytree(entry.path, target / entry.path.relative_to(source.root))


def run_benchmark(cache: Path, results: Path, pytest_args: Sequence[str], workers: int | None) -> float:
    """Wall seconds of ``pytest benchmarks`` on ``cache`` and ``results`` with ``pytest_args``.

    ``workers``: the xdist worker count (``-n``, with ``--dist loadgroup``), or
    None to run without xdist. Exits with the run's output if pytest crashed
    (exit code 1, some claims do not hold, is a result, not a crash).
    """
    command = [sys.executable, "-m", "pytest", str(REPO / "benchmarks"), "-q", "-p", "no:cacheprovider",
               "--jd-cache", str(cache), "--jd-results", str(results), *pytest_args]
    if workers is not None:
        command += ["-n", str(workers), "--dist", "loadgroup"]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):
        sys.exit(f"benchmark run failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    print(done.stdout.strip().splitlines()[-1], file=sys.stderr)
    return seconds


def run_records(results: Path) -> list[str]:
    """The claim records of the one run record in ``results``, as sorted canonical JSON (to compare runs)."""
    (record,) = sorted(results.glob("run-*.json"))
    return sorted(json.dumps(r, sort_keys=True) for r in json.loads(record.read_text())["claims"])
