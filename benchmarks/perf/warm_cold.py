"""Cold versus warm run of the smoke benchmark, measured in one go on this machine.

    python benchmarks/perf/warm_cold.py [-k EXPR] [-n WORKERS] [--keep-model]

The cold run starts from an empty artifact cache (with --keep-model, the
converted dense model is copied in first, so only compression and scoring are
cold); the warm run repeats the same command on the cache the cold run left.
Prints both wall times and the warm/cold ratio, and checks that both runs wrote
identical claim records.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _claim_runs import run_benchmark, run_records, seed_cache

from junkdna_core.storage.cache import ArtifactCache


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-k", default=None, help="pytest -k expression (default: the whole benchmark directory)")
    parser.add_argument("-n", dest="workers", type=int, default=2, help="xdist workers (default 2)")
    parser.add_argument("--keep-model", action="store_true", help="copy the converted dense model into the cold cache")
    args = parser.parse_args()
    pytest_args = ["--jd-budget", "smoke", *(["-k", args.k] if args.k else [])]
    workers = args.workers if args.workers > 1 else None
    with tempfile.TemporaryDirectory(prefix="jd-warm-cold-") as tmp:
        cache, cold_results, warm_results = Path(tmp, "cache"), Path(tmp, "cold"), Path(tmp, "warm")
        if args.keep_model:
            seed_cache(ArtifactCache(), cache)
        cold = run_benchmark(cache, cold_results, pytest_args, workers)
        warm = run_benchmark(cache, warm_results, pytest_args, workers)
        same = run_records(cold_results) == run_records(warm_results)
    print(f"cold {cold:.1f} s, warm {warm:.1f} s, warm/cold {warm / cold:.3f}; identical records: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
