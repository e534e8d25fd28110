"""How compression and scoring cost grow with model size, on random-weight Llama models of published sizes.

    python benchmarks/perf/scale.py [--sizes 135m,360m,1.1b] [--methods NAMES] [--items 24] [--threads N]
                                    [--max-gib 22] [--out jd-results/perf-scale.json]

Each size is a published Llama-family config (hub id in SIZES; no weights are
downloaded) loaded with random weights through ``random:<dir>``. The suite pairs
random causal models with the SmolLM2 tokenizer, so vocab_size is 49152 at every
size (TinyLlama's own vocabulary has 32000 tokens). Every method is measured at
its middle level: 50% sparsity for pruning (4:8 for N:M), 4 bits (group 64) for
quantization, rank fraction 0.5 for low rank; calibrated methods get the
default calibration batch (32 x 256 tokens). Per size, a scoring run times
``score_level`` on --items ARC-Easy items of setting2's options-4 level (all four
options).

Every measurement runs in its own child process, so its peak resident memory
(ru_maxrss) is its own. Before anything runs, each size's peak is projected
from its parameter count; a projection over --max-gib stops the script, and each
child's address space (which runs 0.5-2 GiB above its resident memory) is capped
at --max-gib, so an underestimate fails that measurement instead of exhausting
the machine's memory. Prints a Markdown table (size, params, method, seconds,
peak GiB) and the growth of time against the smallest size (seconds ratio /
parameter ratio: 1 = linear in parameters); everything goes to --out as JSON.
The SmolLM2 tokenizer is extracted once into the default artifact cache
($JUNKDNA_CACHE or the user cache dir).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VOCAB_SIZE = 49152  # the SmolLM2 tokenizer's: random causal models are paired with it (junkdna_core.models.loading)
_LLAMA = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_act": "silu",
          "rms_norm_eps": 1e-5, "vocab_size": VOCAB_SIZE}


@dataclass(frozen=True)
class ModelSize:
    """A model size to measure: the published config it copies (hub id) and the config itself."""

    source: str
    config: dict[str, Any]


def _llama(hidden: int, intermediate: int, layers: int, heads: int, kv_heads: int, positions: int,
           rope_theta: float, tied: bool) -> dict[str, Any]:
    return {**_LLAMA, "hidden_size": hidden, "intermediate_size": intermediate, "num_hidden_layers": layers,
            "num_attention_heads": heads, "num_key_value_heads": kv_heads, "max_position_embeddings": positions,
            "rope_theta": rope_theta, "tie_word_embeddings": tied}


SIZES: dict[str, ModelSize] = {
    "tiny": ModelSize("none (a few blocks, for tests)", _llama(64, 128, 2, 4, 2, 2048, 10000.0, True)),
    "135m": ModelSize("HuggingFaceTB/SmolLM2-135M", _llama(576, 1536, 30, 9, 3, 8192, 100000.0, True)),
    "360m": ModelSize("HuggingFaceTB/SmolLM2-360M", _llama(960, 2560, 32, 15, 5, 8192, 100000.0, True)),
    "1.1b": ModelSize("TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T",
                      _llama(2048, 5632, 22, 32, 4, 2048, 10000.0, False)),
}
DEFAULT_SIZES = ("135m", "360m", "1.1b")
MIDDLE_LEVEL = {"pruning": 0.5, "quantization": 4, "lowrank": 0.5}
SCORED_SETTING, SCORED_LEVEL = "setting2", "options-4"
# Projected peak: interpreter and libraries, plus the float32 weights three times over (the model, a
# replacement of every target weight for quantization and low rank, and per-layer temporaries).
BASE_GIB = 1.5
WEIGHT_COPIES = 3
GIB = 2**30


def parameter_count(config: dict[str, Any]) -> int:
    """The parameter count of a causal LM with ``config``, from a weightless (meta device) instance."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.for_model(**config))
    return sum(p.numel() for p in model.parameters())


def projected_gib(params: int) -> float:
    """The projected peak resident memory of one measurement on a model of ``params`` float32 parameters."""
    return BASE_GIB + WEIGHT_COPIES * params * 4 / GIB


def builtin_methods() -> list[str]:
    """The methods registered by junkdna itself (not by plugins), by name."""
    from junkdna_core.compress.registry import available_methods

    return [name for name, cls in available_methods().items() if cls.__module__.startswith("junkdna_core.")]


# --- one measurement, in a child process ---------------------------------------------------


def _peak_address_space_kib() -> int:
    """This process's peak virtual memory (VmPeak, KiB): what the --max-gib cap applies to."""
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"^VmPeak:\s+(\d+) kB", status, re.MULTILINE).group(1))


def _measure(job: dict[str, Any]) -> dict[str, Any]:
    """Run one job (compress with a method, or score) on the model of ``job['config_dir']``."""
    limit = int(job["max_gib"] * GIB)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import torch

    from junkdna_core.compress.registry import get_method
    from junkdna_core.compress.runner import compress_model
    from junkdna_core.data.settings import get_setting
    from junkdna_core.models.loading import load_model
    from junkdna_core.scoring.levels import score_level, setting_items
    from junkdna_core.study.artifacts import calibration_batch

    torch.set_num_threads(job["threads"])
    start = time.perf_counter()
    dense = load_model(f"random:{job['config_dir']}", device="cpu")
    out: dict[str, Any] = {"load_seconds": time.perf_counter() - start,
                           "params": sum(p.numel() for p in dense.model.parameters())}
    if job["method"] is not None:
        cls = get_method(job["method"])
        method = cls.at_level(MIDDLE_LEVEL[cls.family])
        calibration = calibration_batch(dense.tokenizer).input_ids if method.needs_calibration else None
        report = compress_model(dense.model, method, calibration=calibration, progress=False)
        out.update(setting=repr(method), seconds=report.seconds, sparsity=report.sparsity.overall)
    else:
        setting = get_setting(SCORED_SETTING)
        (items,) = setting_items(setting, job["items"], 0).values()
        start = time.perf_counter()
        score_level(dense.model, dense.tokenizer, setting.level(SCORED_LEVEL), items.items, progress=False)
        seconds = time.perf_counter() - start
        out.update(setting=f"{SCORED_SETTING} {SCORED_LEVEL}", seconds=seconds, items=len(items.items),
                   items_per_second=len(items.items) / seconds)
    return {**out, "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "peak_address_space_kib": _peak_address_space_kib(), "threads": torch.get_num_threads()}


def _run_child(job: dict[str, Any]) -> dict[str, Any]:
    """``_measure(job)`` in a fresh process with its threads capped; an ``error`` entry if it failed."""
    threads = str(job["threads"])
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    done = subprocess.run([sys.executable, __file__, "--job", json.dumps(job)], capture_output=True, text=True,
                          env=env, check=False)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit code {done.returncode}"]
        print(done.stderr[-3000:], file=sys.stderr)
        return {"error": lines[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the sweep -----------------------------------------------------------------------------


def _cost(row: dict[str, Any]) -> float:
    """Seconds of a measurement, per item for scoring."""
    return row["seconds"] / row.get("items", 1)


def growth(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per method (and ``scoring``), each larger size's time against the smallest size measured.

    Scoring is compared per item. ``per_param`` is the seconds ratio divided by
    the parameter ratio: 1 means time grows in proportion to parameters.
    """
    out = []
    for what in dict.fromkeys(r["method"] for r in rows):
        measured = sorted((r for r in rows if r["method"] == what and "error" not in r), key=lambda r: r["params"])
        if not measured:
            continue
        base = measured[0]
        for row in measured[1:]:
            params, seconds = row["params"] / base["params"], _cost(row) / _cost(base)
            out.append({"method": what, "size": row["size"], "base": base["size"], "params_ratio": params,
                        "seconds_ratio": seconds, "per_param": seconds / params})
    return out


def _markdown(rows: list[dict[str, Any]], ratios: list[dict[str, Any]]) -> str:
    lines = ["| size | params | method | setting | seconds | peak GiB | items/s |", "|---|---:|---|---|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['size']} | - | {r['method']} | failed: {r['error']} | - | - | - |")
            continue
        rate = f"{r['items_per_second']:.2f}" if "items_per_second" in r else "-"
        lines.append(f"| {r['size']} | {r['params'] / 1e6:.1f}M | {r['method']} | {r['setting']} | "
                     f"{r['seconds']:.2f} | {r['peak_rss_kib'] / 2**20:.2f} | {rate} |")
    if ratios:
        lines += ["", "| method | size / base | params x | seconds x | seconds x / params x |",
                  "|---|---|---:|---:|---:|"]
        lines += [f"| {g['method']} | {g['size']} / {g['base']} | {g['params_ratio']:.2f} | {g['seconds_ratio']:.2f} "
                  f"| {g['per_param']:.2f} |" for g in ratios]
    return "\n".join(lines)


def _names(text: str, known: list[str], what: str, parser: argparse.ArgumentParser) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        parser.error(f"--{what}: unknown {', '.join(unknown) or 'empty list'}; known: {', '.join(known)}")
    return names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=",".join(DEFAULT_SIZES), help=f"comma list of {', '.join(SIZES)}")
    parser.add_argument("--methods", default=None, help="comma list of methods (default: every built-in one)")
    parser.add_argument("--items", type=int, default=24, help="items scored per size (default 24)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads per measurement")
    parser.add_argument("--max-gib", type=float, default=22.0, help="memory limit per measurement (default 22)")
    parser.add_argument("--out", type=Path, default=Path("jd-results/perf-scale.json"))
    parser.add_argument("--job", help=argparse.SUPPRESS)  # internal: run one measurement and print it as JSON
    args = parser.parse_args()
    if args.job:
        print(json.dumps(_measure(json.loads(args.job))))
        return 0
    if args.items < 1 or args.threads < 1:
        parser.error("--items and --threads must be at least 1")
    sizes = _names(args.sizes, list(SIZES), "sizes", parser)
    methods = builtin_methods() if args.methods is None else _names(args.methods, builtin_methods(), "methods", parser)

    params = {name: parameter_count(SIZES[name].config) for name in sizes}
    over = [f"{name} ({params[name] / 1e6:.0f}M parameters): {projected_gib(params[name]):.1f} GiB"
            for name in sizes if projected_gib(params[name]) > args.max_gib]
    if over:
        print(f"projected peak memory over --max-gib {args.max_gib:g}: {'; '.join(over)}. Nothing was run; "
              "drop these sizes or raise --max-gib if the machine has the memory.", file=sys.stderr)
        return 2

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="jd-scale-") as tmp:
        for name in sizes:
            folder = Path(tmp, name)
            folder.mkdir()
            (folder / "config.json").write_text(json.dumps(SIZES[name].config, indent=1))
            for method in [*methods, None]:
                job = {"config_dir": str(folder), "method": method, "items": args.items, "threads": args.threads,
                       "max_gib": args.max_gib}
                row = {"size": name, "method": method or "scoring", **_run_child(job)}
                rows.append(row)
                print(f"{name} {row['method']}: " + (f"failed: {row['error']}" if "error" in row else
                      f"{row['seconds']:.2f} s, peak {row['peak_rss_kib'] / 2**20:.2f} GiB"), file=sys.stderr)
    ratios = growth(rows)
    print(f"random-weight Llama configs, vocab_size {VOCAB_SIZE} (SmolLM2 tokenizer), float32, "
          f"{args.threads} torch threads per measurement")
    print(_markdown(rows, ratios))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "vocab_size": VOCAB_SIZE, "threads": args.threads, "max_gib": args.max_gib,
        "sizes": {n: {"source": SIZES[n].source, "params": params[n], "projected_gib": projected_gib(params[n]),
                      "config": SIZES[n].config} for n in sizes},
        "rows": rows, "growth": ratios,
    }, indent=1))
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
