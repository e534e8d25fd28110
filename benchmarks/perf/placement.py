"""What a model split by accelerate's device map costs, against the same model on one device, in one process.

    python benchmarks/perf/placement.py [--model SPEC] [--items N] [--fraction F] [--threads T]

Loads the model twice on the CPU: on one device, and with ``--jd-max-memory
cpu=<F x its weights>`` so that the device map puts what does not fit on disk
(the path a model larger than its GPUs takes, host RAM standing in for the GPU
here). Scores the 4-option ARC-Easy level of setting 2 on both, checks the
scores are identical, and prints the load and scoring times with their ratios.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from junkdna_core.data.settings import get_setting
from junkdna_core.models.loading import LoadedModel, load_model
from junkdna_core.scoring.levels import score_level, setting_items
from junkdna_core.storage.cache import ArtifactCache


def _timed(action):
    start = time.perf_counter()
    value = action()
    return value, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2", help="model spec (default: the embedded SmolLM2)")
    parser.add_argument("--items", type=int, default=40, help="ARC-Easy items scored (default 40)")
    parser.add_argument("--fraction", type=float, default=0.5, help="host budget as a share of the weights")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--out", type=Path, default=None, help="also write the measurements as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cache = ArtifactCache()
    setting = get_setting("setting2")
    level = setting.levels[-1]
    items = setting_items(setting, args.items, 0, cache=cache)[level.task].items

    def read(**options: object) -> LoadedModel:
        loaded = load_model(args.model, device="cpu", dtype="float32", cache=cache, **options)
        _ = loaded.model  # a model whose files were fingerprinted before is read on first use
        return loaded

    single, single_load = _timed(read)
    budget = int(args.fraction * single.placement.weights_bytes)
    split, split_load = _timed(lambda: read(max_memory={"cpu": budget}))
    expected, single_score = _timed(lambda: score_level(single.model, single.tokenizer, level, items, progress=False))
    got, split_score = _timed(lambda: score_level(split.model, split.tokenizer, level, items, progress=False))
    placement = split.placement
    same = got == expected
    row = {"model": single.name, "weights_bytes": single.placement.weights_bytes, "budget_bytes": budget,
           "device_map": placement.device_map, "items": len(items), "threads": args.threads,
           "load_seconds": {"single": single_load, "split": split_load},
           "score_seconds": {"single": single_score, "split": split_score}, "identical_scores": same}
    print(f"{single.name}: {single.placement.weights_bytes / 2**20:.1f} MiB of weights, host budget "
          f"{budget / 2**20:.1f} MiB -> {sorted(set(placement.device_map.values()))} "
          f"({sum(d == 'disk' for d in placement.device_map.values())} of {len(placement.device_map)} top modules "
          f"on disk)")
    print(f"load:  single {single_load:.2f} s, split {split_load:.2f} s, split/single {split_load / single_load:.2f}")
    print(f"score: single {single_score:.2f} s, split {split_score:.2f} s, split/single "
          f"{split_score / single_score:.2f} ({len(items)} items, {args.threads} thread(s)); identical: {same}")
    if args.out:
        args.out.write_text(json.dumps(row, indent=1))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
