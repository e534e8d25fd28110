"""Bytes per compressed-model artifact, before (format v1) and after (v2), and what they project to at 7B-70B.

    python benchmarks/perf/artifact_bytes.py [--model smollm2] [--methods NAMES] [--threads 1]
                                             [--out jd-results/perf-artifact-bytes.json]

Compresses --model with every built-in method at its middle level (scale.py's: 50% sparsity, 4:8,
4 bits group 64, rank fraction 0.5; calibrated methods on the default 32 x 256 calibration tokens),
then writes each result twice in one process: in the artifact format v1 (``masks.npz`` of packed
masks plus every changed weight dense in the model's dtype, what junkdna stored before) and in v2
(:mod:`junkdna_core.study.artifact_format`). Prints bytes of each and their ratio, bits per target
weight, and the time to load each onto the dense model as a ratio v2/v1 measured in the same run
(the machine may be shared: read ratios, not seconds).

Then projects, for Llama-2-7B, -13B and Llama-2-70B shapes (published configs, counted on a weightless
model): the weights in bfloat16, each method's artifact at its middle level in v1 and v2 (from the
v2 layout's per-weight cost, which the script first checks against the SmolLM2 measurement), a
whole full-budget sweep of every built-in method, and each method's peak memory from the growth
scale.py measured at 135M, 360M and 1.17B parameters (README "Scale" table; float32, whole model in
memory, a straight line through the three points).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from scale import MIDDLE_LEVEL, SIZES, _llama, builtin_methods, parameter_count

GB = 10**9
# Peak resident GiB per method measured by scale.py (README "Scale" table, float32, one thread).
MEASURED_PEAK_GIB = {
    "gptq": (1.19, 2.38, 6.52), "lowrank": (1.50, 3.00, 8.75), "magnitude": (1.07, 2.20, 6.36),
    "nm": (1.10, 2.32, 6.37), "random": (1.49, 2.06, 5.76), "rtn": (1.50, 3.53, 8.56),
    "sparsegpt": (1.28, 2.51, 7.44), "wanda": (1.23, 2.53, 6.99),
}
MEASURED_SIZES = ("135m", "360m", "1.1b")
PROJECTED = {  # published shapes; vocabulary 32000
    "7B": _llama(4096, 11008, 32, 32, 32, 4096, 10000.0, False) | {"vocab_size": 32000},
    "13B": _llama(5120, 13824, 40, 40, 40, 4096, 10000.0, False) | {"vocab_size": 32000},
    "70B": _llama(8192, 28672, 80, 64, 8, 4096, 10000.0, False) | {"vocab_size": 32000},
}


def target_shapes(config: dict[str, Any]) -> list[tuple[int, int]]:
    """The (out, in) shapes of a Llama config's block linears (the compression targets)."""
    h, i = config["hidden_size"], config["intermediate_size"]
    kv = h // config["num_attention_heads"] * config["num_key_value_heads"]
    block = [(h, h), (kv, h), (kv, h), (h, h), (i, h), (i, h), (h, i)]
    return block * config["num_hidden_layers"]


def layer_bytes(form: str, shape: tuple[int, int], dtype_bytes: int, *, sparsity: float = 0.5, bits: int = 4,
                group: int = 64, rank_fraction: float = 0.5) -> float:
    """The v2 bytes of one layer stored in ``form`` (the layout of artifact_format)."""
    rows, cols = shape
    n = rows * cols
    mask = rows * math.ceil(cols / 8)
    if form == "bitmask":
        return mask
    if form == "sparse-bitmask":
        return min(mask + (n - round(sparsity * n)) * dtype_bytes, n * dtype_bytes)
    if form == "pack-quantized":
        groups = cols // group
        return rows * math.ceil(cols * bits / 32) * 4 + rows * groups * 4 + math.ceil(rows * bits / 32) * groups * 4
    if form == "low-rank":
        r = max(1, round(rank_fraction * min(shape)))
        return min(r * (rows + cols) * 4, n * dtype_bytes)
    raise ValueError(form)


def v1_layer_bytes(form: str, shape: tuple[int, int], dtype_bytes: int) -> float:
    """The v1 bytes of one layer: a packed mask for pruning, plus the dense weight when values changed."""
    n = shape[0] * shape[1]
    mask = math.ceil(n / 8)
    return {"bitmask": mask, "sparse-bitmask": mask + n * dtype_bytes}.get(form, n * dtype_bytes)


def _write_v1(dense, compressed, report, out: Path) -> None:
    """Format v1 (ARTIFACT_VERSION 1), kept here as the reference the new format is measured against."""
    import numpy as np
    import torch
    from safetensors.torch import save_file

    from junkdna_core.compress.targets import find_targets

    dense_modules = dict(dense.named_modules())
    packed, changed = {}, {}
    for target in find_targets(compressed):
        new, old = target.module.weight.detach(), dense_modules[target.name].weight.detach()
        mask = report.masks.get(target.name)
        if mask is not None:
            packed[target.name] = np.packbits(mask.numpy().reshape(-1))
            if torch.equal(new, old * mask):
                continue
        if not torch.equal(new, old):
            changed[target.name] = new.contiguous()
    np.savez(out / "masks.npz", **packed)
    save_file(changed, str(out / "weights.safetensors"))


def _load_v1(dense, path: Path):
    import numpy as np
    import torch
    from safetensors.torch import load_file

    model = copy.deepcopy(dense)
    weights = load_file(str(path / "weights.safetensors"))
    with torch.no_grad(), np.load(path / "masks.npz") as masks:
        for name in sorted(set(weights) | set(masks.files)):
            weight = model.get_submodule(name).weight
            if name in weights:
                weight.copy_(weights[name])
            if name in masks.files:
                count = weight.numel()
                weight.mul_(torch.from_numpy(np.unpackbits(masks[name], count=count).astype(bool)).view_as(weight))
    return model


def _bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def _timed(function, *args) -> tuple[Any, float]:
    start = time.perf_counter()
    value = function(*args)
    return value, time.perf_counter() - start


def measure(model_spec: str, methods: list[str], threads: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Compress, write v1 and v2, load both; one row per method."""
    import torch

    from junkdna_core.compress.registry import get_method
    from junkdna_core.compress.runner import compress_model
    from junkdna_core.compress.targets import find_targets
    from junkdna_core.models.loading import load_model
    from junkdna_core.study.artifact_format import load_compressed, read_layers, save_compressed
    from junkdna_core.study.artifacts import calibration_batch

    torch.set_num_threads(threads)
    dense = load_model(model_spec, device="cpu")
    shapes = [tuple(t.weight().shape) for t in find_targets(dense.model)]
    weights = sum(r * c for r, c in shapes)
    dtype_bytes = next(dense.model.parameters()).element_size()
    info = {"model": dense.name, "fingerprint": dense.fingerprint, "target_weights": weights,
            "dtype_bytes": dtype_bytes, "dense_target_bytes": weights * dtype_bytes}
    rows = []
    for name in methods:
        cls = get_method(name)
        method = cls.at_level(MIDDLE_LEVEL[cls.family])
        calibration = calibration_batch(dense.tokenizer).input_ids if method.needs_calibration else None
        compressed = copy.deepcopy(dense.model)
        report = compress_model(compressed, method, calibration=calibration, progress=False)
        with tempfile.TemporaryDirectory() as tmp:
            v1, v2 = Path(tmp, "v1"), Path(tmp, "v2")
            v1.mkdir()
            v2.mkdir()
            _write_v1(dense.model, compressed, report, v1)
            save_compressed(dense.model, compressed, report, v2)
            forms = sorted({layer.form for layer in read_layers(v2)[0].values()})
            _, v1_seconds = _timed(_load_v1, dense.model, v1)
            loaded, v2_seconds = _timed(load_compressed, dense.model, v2)
            exact = all(torch.equal(a, b) for a, b in zip(
                (t.weight() for t in find_targets(loaded)), (t.weight() for t in find_targets(compressed))))
            row = {"method": name, "setting": repr(method), "forms": forms, "v1_bytes": _bytes(v1),
                   "v2_bytes": _bytes(v2), "v1_load_seconds": v1_seconds, "v2_load_seconds": v2_seconds,
                   "reloads_exactly": exact}
        row["form"] = next((f for f in forms if f != "dense"), "dense")  # low rank: dense where factors are larger
        row["v2_predicted_bytes"] = sum(layer_bytes(row["form"], s, dtype_bytes) for s in shapes)
        rows.append(row)
        print(f"measured {name}: v1 {row['v1_bytes']} B, v2 {row['v2_bytes']} B", file=sys.stderr, flush=True)
    return rows, info


def _line(params: list[float], peaks: tuple[float, ...]) -> tuple[float, float]:
    """Least-squares intercept and slope of peak GiB against parameters."""
    mean_x, mean_y = sum(params) / len(params), sum(peaks) / len(peaks)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(params, peaks)) / sum((x - mean_x) ** 2 for x in params)
    return mean_y - slope * mean_x, slope


def project(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Weights, artifact bytes (v1, v2) and peak memory per method at 7B, 13B and 70B."""
    from junkdna_core.compress.registry import get_method
    from junkdna_core.config.budgets import BUDGETS

    measured_params = [parameter_count(SIZES[s].config) for s in MEASURED_SIZES]
    forms = {row["method"]: row["form"] for row in rows}
    out: dict[str, Any] = {}
    for size, config in PROJECTED.items():
        params, shapes = parameter_count(config), target_shapes(config)
        entry: dict[str, Any] = {"params": params, "bf16_weights_bytes": params * 2, "methods": {}}
        sweep_v1 = sweep_v2 = 0.0
        for name, form in forms.items():
            cls = get_method(name)
            v1 = sum(v1_layer_bytes(form, s, 2) for s in shapes)
            v2 = sum(layer_bytes(form, s, 2) for s in shapes)
            intercept, slope = _line(measured_params, MEASURED_PEAK_GIB[name])
            entry["methods"][name] = {"v1_bytes": v1, "v2_bytes": v2,
                                      "fp32_peak_gib": intercept + slope * params}
            for level in cls.default_levels(BUDGETS["full"]):
                if level == 0:
                    continue
                keyword = {"pruning": "sparsity", "quantization": "bits", "lowrank": "rank_fraction"}[cls.family]
                value = int(level) if cls.family == "quantization" else level
                sweep_v1 += sum(v1_layer_bytes(form, s, 2) for s in shapes)
                sweep_v2 += sum(layer_bytes(form, s, 2, **{keyword: value}) for s in shapes)
        entry["full_sweep_v1_bytes"], entry["full_sweep_v2_bytes"] = sweep_v1, sweep_v2
        out[size] = entry
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2", help="model spec, as --jd-model (default smollm2)")
    parser.add_argument("--methods", default=None, help="comma-separated methods (default: every built-in one)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("jd-results/perf-artifact-bytes.json"))
    args = parser.parse_args()
    methods = args.methods.split(",") if args.methods else builtin_methods()
    rows, info = measure(args.model, methods, args.threads)
    print(f"\n{info['model']}: {info['target_weights'] / 1e6:.1f}M target weights, "
          f"{info['dense_target_bytes'] / 2**20:.1f} MiB dense ({info['dtype_bytes']} bytes each)\n")
    print("| method | stored as | v1 bytes | v2 bytes | v2/v1 | bits/weight v2 | load time v2/v1 | exact |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['method']} | {', '.join(r['forms'])} | {r['v1_bytes']:,} | {r['v2_bytes']:,} | "
              f"{r['v2_bytes'] / r['v1_bytes']:.3f} | {8 * r['v2_bytes'] / info['target_weights']:.2f} | "
              f"{r['v2_load_seconds'] / r['v1_load_seconds']:.2f} | {r['reloads_exactly']} |")
    worst = max(abs(r["v2_bytes"] / r["v2_predicted_bytes"] - 1) for r in rows)
    print(f"\nthe layout's per-weight cost predicts every measured v2 artifact within {100 * worst:.2f}% "
          "(the rest is the safetensors header)")
    projection = project(rows) if args.model == "smollm2" else {}
    if projection:
        print("\n| model | params | bf16 weights | method | artifact v1 | artifact v2 | fp32 peak (projected) |")
        print("|---|---:|---:|---|---:|---:|---:|")
        for size, entry in projection.items():
            for name, m in entry["methods"].items():
                print(f"| {size} | {entry['params'] / 1e9:.2f}B | {entry['bf16_weights_bytes'] / GB:.1f} GB | {name} "
                      f"| {m['v1_bytes'] / GB:.2f} GB | {m['v2_bytes'] / GB:.2f} GB | {m['fp32_peak_gib']:.0f} GiB |")
        print("\n| model | full-budget sweep of every built-in method, v1 | v2 | v2/v1 |")
        print("|---|---:|---:|---:|")
        for size, entry in projection.items():
            print(f"| {size} | {entry['full_sweep_v1_bytes'] / GB:.0f} GB | {entry['full_sweep_v2_bytes'] / GB:.0f} GB "
                  f"| {entry['full_sweep_v2_bytes'] / entry['full_sweep_v1_bytes']:.3f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"model": info, "rows": rows, "projection": projection}, indent=1))
    return 0 if all(r["reloads_exactly"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
