"""What the claims' bootstraps cost on a full-budget-sized study, as ratios to the difficulty claim.

A warm rerun of the benchmarks only reads cached scores, so the claims' statistics are most of its time. Planted
studies of the full budget's shape (500 items, ten strengths with the dense one, 3 and 5 levels, 3 random masks)
go through each claim; the script prints seconds per claim (median of ``--repeats``) and each claim's time over
the difficulty claim's, measured in the same process (the difficulty claim's paired slope bootstrap is the
suite's reference cost). Run: ``python benchmarks/perf/claims_cost.py [--items N] [--repeats R]``.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))  # planted studies are a test helper

from planted import planted_study

from junkdna_core.data.settings import get_setting
from junkdna_core.results import claims

STRENGTHS = tuple(i / 10 for i in range(10))
SETTINGS = {"setting2": (0.3, 0.6, 1.0), "setting5": (0.2, 0.3, 0.5, 0.7, 1.0)}


def _seconds(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _study(setting: str, method: str, items: int, *, scale: float = 1.0, seed: int = 0, family: str = "pruning"):
    rates = [min(r * scale, 1.2) for r in SETTINGS[setting]]
    return planted_study(get_setting(setting), rates, strengths=STRENGTHS, items=items, method=method, family=family,
                         draw_seed=seed, params={"seed": seed} if method == "random" else None)


def measure(setting: str, items: int, repeats: int) -> dict[str, float]:
    """Median seconds of each claim on planted studies of one setting."""
    magnitude = _study(setting, "magnitude", items)
    randoms = [_study(setting, "random", items, seed=seed) for seed in range(3)]
    flatter = _study(setting, "lowrank", items, scale=0.3, family="lowrank")  # a flatter curve of another family
    runs = {
        "difficulty": functools.partial(claims.difficulty, magnitude),
        "monotonic": functools.partial(claims.monotonic, magnitude),
        "quantization": functools.partial(claims.quantization, magnitude, flatter),
        "random (3 masks)": functools.partial(claims.random_control, magnitude, randoms),
    }
    return {name: _seconds(run, repeats) for name, run in runs.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    for setting in SETTINGS:
        seconds = measure(setting, args.items, args.repeats)
        for name, value in seconds.items():
            print(f"{setting} {name}: {value:.3f} s, {value / seconds['difficulty']:.2f} x difficulty")


if __name__ == "__main__":
    main()
