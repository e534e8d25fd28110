"""Time every compression method on one model, against one forward pass, and measure held-out perplexity.

    python benchmarks/perf/compress_methods.py [--model smollm2] [--sparsity 0.5] [--bits 4] [--threads 1]

Each method compresses a fresh copy of the dense model at the same setting
(pruning at --sparsity, quantization at --bits with --group-size, low rank at
--rank-fraction). Times are printed in seconds, as a ratio to magnitude pruning
and, for every calibrated method, as a line ``<method>/forward <ratio>``: its
compression time over one full-model forward pass (logits included, batches of
--batch-size) over the same calibration tokens, timed just before and just after
the method in the same run (the mean of the two). The ratio is of the process's
CPU time (time.process_time), which other jobs on a shared machine do not
inflate the way they inflate wall time; the wall-time ratio is printed beside it. Targets: wanda <= 1.5, sparsegpt and gptq <= 3. Perplexity
is on held-out texts that ship offline (--heldout 0 skips it), next to the
dense model's. A JSON copy goes to --out.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
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


@torch.inference_mode()
def forward_seconds(model: torch.nn.Module, input_ids: torch.Tensor, batch_size: int) -> tuple[float, float]:
    """Wall and CPU seconds of one full forward pass of ``model`` over ``input_ids`` in batches of ``batch_size``."""
    device = next(model.parameters()).device
    wall, cpu = time.perf_counter(), time.process_time()
    for first in range(0, input_ids.shape[0], batch_size):
        model(input_ids=input_ids[first : first + batch_size].to(device), use_cache=False)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--methods", default=",".join(available_methods()))
    parser.add_argument("--sparsity", type=float, default=0.5)
    parser.add_argument("--bits", type=int, default=4)
    parser.add_argument("--group-size", type=int, default=64)
    parser.add_argument("--rank-fraction", type=float, default=0.5)
    parser.add_argument("--calibration", default="32x256", help="SAMPLESxTOKENS")
    parser.add_argument("--heldout", type=int, default=64, help="number of held-out texts (0: no perplexity)")
    parser.add_argument("--batch-size", type=int, default=8, help="calibration batch size, also of the forward pass")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", type=Path, default=Path("jd-results/perf-compress.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    cache = ArtifactCache()
    dense = load_model(args.model, cache=cache)
    samples, tokens = (int(v) for v in args.calibration.lower().split("x"))
    calibration = calibration_batch(dense.tokenizer, samples=samples, tokens=tokens, seed=0)
    texts, texts_fingerprint = heldout_texts(args.heldout, seed=0) if args.heldout else ([], None)

    def ppl(model: torch.nn.Module) -> float | None:
        if not texts:
            return None
        return perplexity(model, dense.tokenizer, texts, max_length=args.max_length, progress=False)

    start = time.perf_counter()
    rows = [{"method": "dense", "setting": "-", "seconds": 0.0, "sparsity": 0.0, "perplexity": ppl(dense.model)}]
    print(f"dense evaluated in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    forwards = [forward_seconds(dense.model, calibration.input_ids, args.batch_size)]
    for name in [m.strip() for m in args.methods.split(",") if m.strip()]:
        level, options = level_for(name, args)
        method = get_method(name).at_level(level, **options)
        model = copy.deepcopy(dense.model)
        cpu = time.process_time()
        report = compress_model(model, method, calibration=calibration.input_ids, batch_size=args.batch_size,
                                progress=False)
        cpu = time.process_time() - cpu
        row = {"method": name, "setting": repr(method), "seconds": report.seconds, "cpu_seconds": cpu,
               "sparsity": report.sparsity.overall, "measured": report.measured, "perplexity": ppl(model)}
        if method.needs_calibration:
            forwards.append(forward_seconds(dense.model, calibration.input_ids, args.batch_size))
            row["forward_seconds"] = (forwards[-2][0] + forwards[-1][0]) / 2
            row["forward_cpu_seconds"] = (forwards[-2][1] + forwards[-1][1]) / 2
            row["forward_ratio"] = cpu / row["forward_cpu_seconds"]
            row["forward_ratio_wall"] = report.seconds / row["forward_seconds"]
        rows.append(row)
        print(f"{name}: {report.seconds:.1f} s" + (f", {row['forward_ratio']:.2f} x forward" if "forward_ratio" in row
                                                    else ""), file=sys.stderr)
        del model

    reference = next((r["seconds"] for r in rows if r["method"] == "magnitude"), None)
    print(f"\n{dense.name} ({dense.fingerprint[:12]}), {args.threads} torch threads, {platform.processor() or 'cpu'}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"held-out: {len(texts)} texts, <= {args.max_length} tokens each; calibration {args.calibration}, "
          f"one forward {min(f[0] for f in forwards):.1f}-{max(f[0] for f in forwards):.1f} s wall, "
          f"{min(f[1] for f in forwards):.1f}-{max(f[1] for f in forwards):.1f} s CPU")
    print("| method | setting | compress s | x magnitude | x forward (CPU / wall) | sparsity | perplexity | x dense |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        ratio = f"{r['seconds'] / reference:.1f}" if reference and r["method"] != "dense" else "-"
        forward = f"{r['forward_ratio']:.2f} / {r['forward_ratio_wall']:.2f}" if "forward_ratio" in r else "-"
        quality = ("- | -" if r["perplexity"] is None else
                   f"{r['perplexity']:.2f} | {r['perplexity'] / rows[0]['perplexity']:.2f}")
        print(f"| {r['method']} | {r['setting']} | {r['seconds']:.1f} | {ratio} | {forward} | {r['sparsity']:.3f} "
              f"| {quality} |")
    print()
    for r in rows:
        if "forward_ratio" in r:
            print(f"{r['method']}/forward {r['forward_ratio']:.2f} (wall {r['forward_ratio_wall']:.2f})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "model": dense.name, "fingerprint": dense.fingerprint, "threads": args.threads,
        "heldout_fingerprint": texts_fingerprint, "calibration": calibration.fingerprint,
        "load_average": os.getloadavg(), "forward_seconds": forwards, "rows": rows,
    }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
