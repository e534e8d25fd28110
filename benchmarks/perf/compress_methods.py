"""Time every compression method on one model and measure held-out perplexity.

    python benchmarks/perf/compress_methods.py [--model smollm2] [--sparsity 0.5] [--bits 4]

Each method compresses a fresh copy of the dense model at the same setting
(pruning at --sparsity, quantization at --bits with --group-size, low rank at
--rank-fraction). Times are printed in seconds and as a ratio to magnitude
pruning measured in the same run; perplexity is on held-out texts that ship
offline, next to the dense model's. A JSON copy goes to --out.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time
from pathlib import Path

import torch

from junkdna_core.compress.registry import available_methods, get_method
from junkdna_core.compress.runner import compress_model
from junkdna_core.data.texts import heldout_texts
from junkdna_core.models.loading import load_model
from junkdna_core.scoring.engine import perplexity
from junkdna_core.storage.cache import ArtifactCache
from junkdna_core.study.artifacts import calibration_batch


def level_for(name: str, args: argparse.Namespace) -> tuple[float, dict]:
    cls = get_method(name)
    if cls.family == "quantization":
        return args.bits, {"group_size": args.group_size}
    if cls.family == "lowrank":
        return args.rank_fraction, {}
    return args.sparsity, ({"m": 8} if name == "nm" else {})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--methods", default=",".join(available_methods()))
    parser.add_argument("--sparsity", type=float, default=0.5)
    parser.add_argument("--bits", type=int, default=4)
    parser.add_argument("--group-size", type=int, default=64)
    parser.add_argument("--rank-fraction", type=float, default=0.5)
    parser.add_argument("--calibration", default="32x256", help="SAMPLESxTOKENS")
    parser.add_argument("--heldout", type=int, default=64, help="number of held-out texts")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", type=Path, default=Path("jd-results/perf-compress.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    cache = ArtifactCache()
    dense = load_model(args.model, cache=cache)
    samples, tokens = (int(v) for v in args.calibration.lower().split("x"))
    calibration = calibration_batch(dense.tokenizer, samples=samples, tokens=tokens, seed=0)
    texts, texts_fingerprint = heldout_texts(args.heldout, seed=0)

    def ppl(model: torch.nn.Module) -> float:
        return perplexity(model, dense.tokenizer, texts, max_length=args.max_length, progress=False)

    start = time.perf_counter()
    rows = [{"method": "dense", "setting": "-", "seconds": 0.0, "sparsity": 0.0, "perplexity": ppl(dense.model)}]
    print(f"dense perplexity {rows[0]['perplexity']:.3f} ({time.perf_counter() - start:.0f} s to evaluate)",
          file=sys.stderr)
    for name in [m.strip() for m in args.methods.split(",") if m.strip()]:
        level, options = level_for(name, args)
        method = get_method(name).at_level(level, **options)
        model = copy.deepcopy(dense.model)
        report = compress_model(model, method, calibration=calibration.input_ids, progress=False)
        rows.append({
            "method": name,
            "setting": repr(method),
            "seconds": report.seconds,
            "sparsity": report.sparsity.overall,
            "perplexity": ppl(model),
        })
        print(f"{name}: {report.seconds:.1f} s, perplexity {rows[-1]['perplexity']:.3f}", file=sys.stderr)
        del model

    reference = next((r["seconds"] for r in rows if r["method"] == "magnitude"), None)
    print(f"\n{dense.name} ({dense.fingerprint[:12]}), {args.threads} torch threads, {platform.processor() or 'cpu'}")
    print(f"held-out: {len(texts)} texts, <= {args.max_length} tokens each; calibration {args.calibration}")
    print("| method | setting | compress s | x magnitude | sparsity | perplexity | x dense |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        ratio = f"{r['seconds'] / reference:.1f}" if reference and r["method"] != "dense" else "-"
        print(f"| {r['method']} | {r['setting']} | {r['seconds']:.1f} | {ratio} | {r['sparsity']:.3f} "
              f"| {r['perplexity']:.2f} | {r['perplexity'] / rows[0]['perplexity']:.2f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "model": dense.name, "fingerprint": dense.fingerprint, "threads": args.threads,
        "heldout_fingerprint": texts_fingerprint, "calibration": calibration.fingerprint, "rows": rows,
    }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
