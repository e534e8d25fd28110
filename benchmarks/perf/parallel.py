"""Parallel speed of the claim benchmarks: one xdist worker against several, and a warm rerun.

    python benchmarks/perf/parallel.py [-k setting2] [--budget smoke] [--model smollm2] [--methods NAMES]
                                       [--items N] [--workers 2] [--warm-runs 3]

The dense model is prepared once in the default artifact cache ($JUNKDNA_CACHE
or the user cache dir; converted there if it is not yet) and copied into each
run's fresh cache, so model conversion is never timed. Then, in order: ``-n 1``
on a fresh cache (cold), ``-n WORKERS`` on another fresh cache (cold), and
``-n WORKERS`` again on that cache, WARM_RUNS times (warm). The plugin caps
torch's threads per worker to cores / workers, so the runs compare the same
cores used two ways. Prints every wall time, the ratios nWORKERS/n1 (target
<= 1) and median warm / cold (target <= 0.1; a warm run takes seconds, so one
sample is at the mercy of the machine), whether every run wrote identical
records (exit 1 if not) and any cache entry a warm run had to build.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from _claim_runs import run_benchmark, run_records, seed_cache

from junkdna_core.models.loading import load_model
from junkdna_core.storage.cache import ArtifactCache


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-k", default="setting2", help="pytest -k expression (default setting2)")
    parser.add_argument("--budget", default="smoke", help="--jd-budget (default smoke)")
    parser.add_argument("--model", default="smollm2", help="--jd-model (default smollm2)")
    parser.add_argument("--methods", default=None, help="--jd-methods (default: the budget's)")
    parser.add_argument("--items", type=int, default=None, help="--jd-items (default: the budget's)")
    parser.add_argument("--workers", type=int, default=2, help="xdist workers of the parallel runs (default 2)")
    parser.add_argument("--warm-runs", type=int, default=3, help="warm reruns, their median is compared (default 3)")
    args = parser.parse_args()
    if args.warm_runs < 1:
        parser.error(f"--warm-runs must be at least 1; got {args.warm_runs}")
    if args.workers < 2:
        parser.error(f"--workers must be at least 2 to compare with one worker; got {args.workers}")
    pytest_args = ["-k", args.k, "--jd-budget", args.budget, "--jd-model", args.model]
    pytest_args += ["--jd-methods", args.methods] if args.methods else []
    pytest_args += ["--jd-items", str(args.items)] if args.items else []

    prepared = ArtifactCache()
    load_model(args.model, device="cpu", cache=prepared)  # builds the converted model entry once, untimed
    with tempfile.TemporaryDirectory(prefix="jd-parallel-") as tmp:
        serial_cache, parallel_cache = Path(tmp, "serial-cache"), Path(tmp, "parallel-cache")
        seed_cache(prepared, serial_cache)
        seed_cache(prepared, parallel_cache)
        serial = run_benchmark(serial_cache, Path(tmp, "serial"), pytest_args, 1)
        cold = run_benchmark(parallel_cache, Path(tmp, "cold"), pytest_args, args.workers)
        before = {(e.kind, e.key) for e in ArtifactCache(parallel_cache).entries()}
        names = [f"warm{i}" for i in range(args.warm_runs)]
        warm = [run_benchmark(parallel_cache, Path(tmp, name), pytest_args, args.workers) for name in names]
        built = sorted(kind for kind, _ in {(e.kind, e.key) for e in ArtifactCache(parallel_cache).entries()} - before)
        records = [run_records(Path(tmp, name)) for name in ("serial", "cold", *names)]
    same = all(r == records[0] for r in records)
    n, median = args.workers, statistics.median(warm)
    print(f"-n 1 cold {serial:.1f} s, -n {n} cold {cold:.1f} s, -n {n} warm {' / '.join(f'{w:.1f}' for w in warm)} s; "
          f"n{n}/n1 {cold / serial:.3f} (target <= 1), median warm/cold {median / cold:.3f} (target <= 0.1); "
          f"identical records: {same}; cache entries the warm runs built: {built or 'none'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
