"""Cold versus warm run of the smoke benchmark, measured in one go on this machine.

    python benchmarks/perf/warm_cold.py [-k EXPR] [-n WORKERS] [--keep-model]

The cold run starts from an empty artifact cache (with --keep-model, the
converted dense model is copied in first, so only compression and scoring are
cold); the warm run repeats the same command on the cache the cold run left.
Prints both wall times and the warm/cold ratio, and checks that both runs wrote
identical claim statistics.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from junkdna_core.cache import ArtifactCache

REPO = Path(__file__).resolve().parents[2]


def run(cache: Path, results: Path, args: argparse.Namespace) -> float:
    command = [sys.executable, "-m", "pytest", str(REPO / "benchmarks"), "--jd-budget", "smoke", "-q",
               "-p", "no:cacheprovider", "--jd-cache", str(cache), "--jd-results", str(results)]
    if args.k:
        command += ["-k", args.k]
    if args.workers > 1:
        command += ["-n", str(args.workers), "--dist", "loadgroup"]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):  # 1 = some claims do not hold: a result, not a failure of the run
        sys.exit(f"benchmark run failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    print(done.stdout.strip().splitlines()[-1], file=sys.stderr)
    return seconds


def statistics(results: Path) -> list[str]:
    (record,) = sorted(results.glob("run-*.json"))
    return sorted(json.dumps({k: r[k] for k in ("test", "statistic", "low", "high", "pvalue", "holds")})
                  for r in json.loads(record.read_text())["records"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-k", default=None, help="pytest -k expression (default: the whole benchmark directory)")
    parser.add_argument("-n", dest="workers", type=int, default=2, help="xdist workers (default 2)")
    parser.add_argument("--keep-model", action="store_true", help="copy the converted dense model into the cold cache")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jd-warm-cold-") as tmp:
        cache, cold_results, warm_results = Path(tmp, "cache"), Path(tmp, "cold"), Path(tmp, "warm")
        if args.keep_model:
            for entry in ArtifactCache().entries():
                if entry.kind in ("model", "tokenizer"):
                    shutil.copytree(entry.path, cache / entry.path.relative_to(ArtifactCache().root))
        cold = run(cache, cold_results, args)
        warm = run(cache, warm_results, args)
        same = statistics(cold_results) == statistics(warm_results)
    print(f"cold {cold:.1f} s, warm {warm:.1f} s, warm/cold {warm / cold:.3f}; identical statistics: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
