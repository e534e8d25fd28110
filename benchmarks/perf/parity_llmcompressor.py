"""Parity of our SparseGPT, Wanda and GPTQ with llm-compressor's, on SmolLM2-135M and ARC-Easy.

    python benchmarks/perf/parity_llmcompressor.py [--items 300] [--venv DIR] [--tolerance 0.03]

Both sides compress the same float32 SmolLM2 folder (the one ``load_model("smollm2")`` reads from
the artifact cache) with the same calibration tokens (``calibration_batch``, 32 x 256, seed 0):
SparseGPT and Wanda at 50% unstructured sparsity, GPTQ at 4 bits with groups of 64 input columns.
Settings matched on both sides: every linear inside the decoder layers (not the tied head),
block size 128, damping 0.01 x mean Hessian diagonal, no activation ordering, asymmetric min-max
grids (our default). Two differences stay: llm-compressor fits each GPTQ group's grid on the
original weights before the sweep, ours when the sweep reaches the group (on the updated
weights, as the GPTQ reference does); and ours passes each block once, compressing q/k/v, o,
gate/up and down in turn on the outputs of the ones already compressed ("true sequential"),
where llm-compressor takes every linear's statistics from one pass over the dense block.

llm-compressor runs in its own virtual environment (it pins an older transformers), created at
``--venv`` when missing (``python -m venv``, then this torch version, then
``llmcompressor==--llmcompressor-version``), through ``_llmcompressor_side.py``. Its runs overlap
with ours (one torch thread each) unless ``--no-overlap``. Both sides' models are then scored
here with the same scorer on the same ARC-Easy validation items (``--items`` four-option items
sampled with seed 0; cloze prompts, log-likelihood), and on held-out perplexity.

Printed per method: our and their acc / acc_norm and |diff|, the share of items where both
pick the same option, sparsity, compression seconds, the relative weight difference
||W_ours - W_theirs|| / ||W_theirs|| (mean over layers) and, for pruning, the share of their
pruned weights that we prune too; then a line ``<method>/llmcompressor <ratio>`` per method: our
compression's CPU time over theirs (each process's own, so the other jobs of a shared machine and
the overlap of the two runs do not enter it; wall time beside it). Exits 1 when any |acc diff| exceeds ``--tolerance``. A JSON
summary goes to ``--out``.
"""

from __future__ import annotations

import argparse
import copy
import importlib.metadata
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import platformdirs
import torch
from safetensors.torch import load_file
from torch import nn

from junkdna_core.compress.masks import measure_sparsity
from junkdna_core.compress.registry import get_method
from junkdna_core.compress.runner import compress_model
from junkdna_core.compress.targets import find_targets
from junkdna_core.data.items import ItemSet, sample_items
from junkdna_core.data.prompts import render_cloze
from junkdna_core.data.tasks import load_task
from junkdna_core.data.texts import heldout_texts
from junkdna_core.models.loading import LoadedModel, load_model
from junkdna_core.scoring.engine import multiple_choice_predictions, perplexity, score_continuations
from junkdna_core.storage.cache import ArtifactCache
from junkdna_core.study.artifacts import Calibration, calibration_batch

logger = logging.getLogger("parity_llmcompressor")

METHODS = ("sparsegpt", "wanda", "gptq")
SIDE_SCRIPT = Path(__file__).with_name("_llmcompressor_side.py")
LLMCOMPRESSOR_VERSION = "0.14.0.1"
METRICS = ("acc", "acc_norm")


@dataclass
class Evaluation:
    """One model's scores: accuracy per metric, the option picked per item, held-out perplexity."""

    accuracy: dict[str, float]
    picks: dict[str, list[int]]
    perplexity: float | None


@dataclass
class Workload:
    """What every model is scored on."""

    items: ItemSet
    texts: list[str]
    max_length: int
    batch_size: int

    def evaluate(self, model: nn.Module, tokenizer) -> Evaluation:
        """Accuracy on the items (acc and acc_norm) and perplexity on the texts (None without texts)."""
        requests = [render_cloze("arc_easy", item) for item in self.items]
        scores = score_continuations(model, tokenizer, requests, batch_size=self.batch_size, progress=False)
        picks = multiple_choice_predictions(scores)
        gold = [item.gold for item in self.items]
        accuracy = {m: sum(p == g for p, g in zip(picks[m], gold)) / len(gold) for m in METRICS}
        ppl = (perplexity(model, tokenizer, self.texts, max_length=self.max_length, progress=False)
               if self.texts else None)
        return Evaluation(accuracy, {m: picks[m] for m in METRICS}, ppl)


def configured(name: str, args: argparse.Namespace):
    """Our method at the compared setting."""
    if name == "gptq":
        return get_method(name).at_level(args.bits, group_size=args.group_size)
    return get_method(name).at_level(args.sparsity)


def ensure_venv(venv: Path, version: str) -> Path:
    """The python of llm-compressor's venv, created and filled when missing."""
    python = venv / "bin" / "python"
    if python.is_file():
        return python
    logger.warning("creating llm-compressor venv at %s", venv)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    torch_version = torch.__version__.split("+")[0]  # torch first, so pip keeps this machine's build
    subprocess.run([str(python), "-m", "pip", "install", f"torch=={torch_version}"], check=True)
    subprocess.run([str(python), "-m", "pip", "install", f"llmcompressor=={version}"], check=True)
    return python


def run_theirs(python: Path, folder: Path, ids_path: Path, work: Path, args: argparse.Namespace) -> dict[str, dict]:
    """Run llm-compressor once per method (sequentially); each method's weights path and metadata."""
    results = {}
    for name in args.methods:
        out, meta, log = work / f"{name}.safetensors", work / f"{name}.json", work / f"{name}.log"
        command = [str(python), str(SIDE_SCRIPT), "--model", str(folder), "--calibration", str(ids_path),
                   "--method", name, "--sparsity", str(args.sparsity), "--bits", str(args.bits),
                   "--group-size", str(args.group_size), "--threads", str(args.threads),
                   "--out", str(out), "--meta", str(meta)]
        with log.open("w") as handle:
            done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"llm-compressor {name} failed (exit {done.returncode}); see {log}")
        results[name] = {"weights": out, **json.loads(meta.read_text())}
        logger.info("llm-compressor %s done in %.0f s", name, results[name]["seconds"])
    return results


def load_theirs(dense: nn.Module, path: Path, names: list[str]) -> nn.Module:
    """A copy of ``dense`` with llm-compressor's weights for every target linear."""
    weights = load_file(str(path))
    expected = {f"{n}.weight" for n in names}
    if set(weights) != expected:
        missing, extra = sorted(expected - set(weights)), sorted(set(weights) - expected)
        raise RuntimeError(f"{path} does not hold exactly the target weights: missing {missing[:3]}, extra {extra[:3]}")
    model = copy.deepcopy(dense)
    with torch.no_grad():
        for key, tensor in weights.items():
            model.get_parameter(key).copy_(tensor)
    return model


def weight_agreement(ours: nn.Module, theirs: nn.Module, names: list[str]) -> dict[str, float]:
    """Relative weight difference per layer (mean and max) and the share of their zeros that are ours too."""
    relative, shared_zeros, their_zeros = [], 0, 0
    for name in names:
        w_ours = ours.get_submodule(name).weight.detach()
        w_theirs = theirs.get_submodule(name).weight.detach()
        relative.append(float(torch.linalg.norm(w_ours - w_theirs) / torch.linalg.norm(w_theirs)))
        shared_zeros += int(((w_ours == 0) & (w_theirs == 0)).sum())
        their_zeros += int((w_theirs == 0).sum())
    return {
        "relative_weight_diff_mean": sum(relative) / len(relative),
        "relative_weight_diff_max": max(relative),
        "shared_zero_fraction": shared_zeros / their_zeros if their_zeros else None,
    }


def same_picks(a: Evaluation, b: Evaluation) -> dict[str, float]:
    """Share of items where both models pick the same option, per metric."""
    return {m: sum(x == y for x, y in zip(a.picks[m], b.picks[m])) / len(a.picks[m]) for m in METRICS}


def compare_method(name: str, dense: LoadedModel, work: Workload, calibration: Calibration, theirs: dict,
                   names: list[str], args: argparse.Namespace) -> dict:
    """Compress with our method, load their weights, score both; one row of the summary."""
    ours_model = copy.deepcopy(dense.model)
    cpu = time.process_time()
    report = compress_model(ours_model, configured(name, args), calibration=calibration.input_ids, progress=False)
    cpu = time.process_time() - cpu
    logger.info("ours %s done in %.0f s", name, report.seconds)
    ours_eval = work.evaluate(ours_model, dense.tokenizer)
    theirs_model = load_theirs(dense.model, theirs["weights"], names)
    theirs_eval = work.evaluate(theirs_model, dense.tokenizer)
    row = {
        "method": name,
        "setting": report.method,
        "ours": {"seconds": report.seconds, "cpu_seconds": cpu, "sparsity": report.sparsity.overall,
                 "measured": report.measured, **ours_eval.accuracy,
                 "perplexity": ours_eval.perplexity},
        "theirs": {"seconds": theirs["seconds"], "cpu_seconds": theirs["cpu_seconds"], "sparsity": measure_sparsity(theirs_model, names).overall,
                   **theirs_eval.accuracy, "perplexity": theirs_eval.perplexity, "recipe": theirs["recipe"],
                   "max_change_outside_compressed": theirs["max_change_outside_compressed"],
                   "max_fake_quant_gap": theirs["max_fake_quant_gap"]},
        "abs_diff": {m: abs(ours_eval.accuracy[m] - theirs_eval.accuracy[m]) for m in METRICS},
        "same_pick": same_picks(ours_eval, theirs_eval),
        "time_ratio": {"cpu": cpu / theirs["cpu_seconds"], "wall": report.seconds / theirs["seconds"]},
        **weight_agreement(ours_model, theirs_model, names),
    }
    if theirs["max_change_outside_compressed"] != 0:
        raise RuntimeError(f"llm-compressor {name} changed tensors outside the target linears; see its log")
    return row


def print_table(dense_eval: Evaluation, rows: list[dict]) -> None:
    """The comparison as a Markdown table, dense first."""
    def ppl(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    print(f"dense: acc {dense_eval.accuracy['acc']:.3f}  acc_norm {dense_eval.accuracy['acc_norm']:.3f}  "
          f"perplexity {ppl(dense_eval.perplexity)}")
    print("| method | acc ours | acc theirs | abs diff | acc_norm ours / theirs | same pick (acc) "
          "| sparsity ours / theirs | seconds ours / theirs | ppl ours / theirs | rel. weight diff | shared zeros |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    time_lines = []
    for r in rows:
        o, t = r["ours"], r["theirs"]
        shared = "-" if r["shared_zero_fraction"] is None else f"{r['shared_zero_fraction']:.3f}"
        print(f"| {r['method']} | {o['acc']:.3f} | {t['acc']:.3f} | {r['abs_diff']['acc']:.3f} "
              f"| {o['acc_norm']:.3f} / {t['acc_norm']:.3f} | {r['same_pick']['acc']:.3f} "
              f"| {o['sparsity']:.3f} / {t['sparsity']:.3f} | {o['seconds']:.0f} / {t['seconds']:.0f} "
              f"| {ppl(o['perplexity'])} / {ppl(t['perplexity'])} | {r['relative_weight_diff_mean']:.4f} "
              f"| {shared} |")
        time_lines.append(f"{r['method']}/llmcompressor {r['time_ratio']['cpu']:.2f} "
                          f"(CPU {o['cpu_seconds']:.0f} / {t['cpu_seconds']:.0f} s; wall {r['time_ratio']['wall']:.2f})")
    print("\ncompression time ours / llm-compressor's (CPU time of each process; target <= 1):")
    print("\n".join(time_lines))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated subset of {METHODS}")
    parser.add_argument("--items", type=int, default=300, help="ARC-Easy validation items with 4 options")
    parser.add_argument("--sparsity", type=float, default=0.5)
    parser.add_argument("--bits", type=int, default=4)
    parser.add_argument("--group-size", type=int, default=64)
    parser.add_argument("--calibration", default="32x256", help="SAMPLESxTOKENS")
    parser.add_argument("--heldout", type=int, default=64, help="held-out texts for perplexity (0: skip)")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--tolerance", type=float, default=0.03, help="largest allowed |acc ours - acc theirs|")
    parser.add_argument("--venv", type=Path, default=platformdirs.user_data_path("junkdna") / "venvs" / "llmcompressor",
                        help="llm-compressor venv, created when missing (kept outside the artifact cache)")
    parser.add_argument("--llmcompressor-version", default=LLMCOMPRESSOR_VERSION)
    parser.add_argument("--overlap", action=argparse.BooleanOptionalAction, default=True,
                        help="run llm-compressor while ours runs (default) or before it")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep calibration ids, their weights and logs here (default: a temporary directory)")
    parser.add_argument("--out", type=Path, default=Path("jd-results/parity-llmcompressor.json"))
    args = parser.parse_args()
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(args.methods) - set(METHODS))
    if unknown or not args.methods:
        parser.error(f"--methods must be a non-empty subset of {METHODS}; got {unknown or 'nothing'}")
    try:
        args.samples, args.tokens = (int(v) for v in args.calibration.lower().split("x"))
    except ValueError:
        parser.error(f"--calibration must look like 32x256; got {args.calibration!r}")
    if min(args.items, args.threads, args.batch_size, args.max_length) < 1 or args.heldout < 0:
        parser.error("--items, --threads, --batch-size and --max-length must be positive, --heldout >= 0")
    for name in args.methods:
        configured(name, args)  # ConfigError for impossible settings, before any compute
    return args


def run(args: argparse.Namespace, work_dir: Path) -> int:
    """Compress and score both sides, print and write the summary; 1 when a difference is too large."""
    python = ensure_venv(args.venv, args.llmcompressor_version)
    dense = load_model("smollm2", device="cpu", cache=ArtifactCache())
    folder = Path(dense.model.name_or_path)
    if not (folder / "config.json").is_file():
        raise SystemExit(f"the loaded SmolLM2 does not name its local folder (got {folder})")
    calibration = calibration_batch(dense.tokenizer, samples=args.samples, tokens=args.tokens, seed=0)
    ids_path = work_dir / "calibration.pt"
    torch.save(calibration.input_ids, ids_path)

    with ThreadPoolExecutor(max_workers=1) as pool:
        theirs: Future = pool.submit(run_theirs, python, folder, ids_path, work_dir, args)
        if not args.overlap:
            theirs.result()
        items = sample_items(load_task("arc_easy", "validation"), args.items, seed=0,
                             keep=lambda it: len(it.choices) == 4)
        texts, texts_fingerprint = heldout_texts(args.heldout, seed=0) if args.heldout else ([], None)
        work = Workload(items, texts, args.max_length, args.batch_size)
        dense_eval = work.evaluate(dense.model, dense.tokenizer)
        logger.info("dense scored: acc %.3f", dense_eval.accuracy["acc"])
        names = [t.name for t in find_targets(dense.model)]
        rows = [compare_method(name, dense, work, calibration, theirs.result()[name], names, args)
                for name in args.methods]

    print_table(dense_eval, rows)
    failed = [r["method"] for r in rows if r["abs_diff"]["acc"] > args.tolerance]
    summary = {
        "model": {"source": dense.source, "folder": str(folder), "fingerprint": dense.fingerprint},
        "items": {"task": "arc_easy", "split": "validation", "count": len(items), "fingerprint": items.fingerprint},
        "heldout": {"texts": len(texts), "max_length": args.max_length, "fingerprint": texts_fingerprint},
        "calibration": {"shape": list(calibration.input_ids.shape), "fingerprint": calibration.fingerprint},
        "threads": args.threads,
        "overlap": args.overlap,
        "load_average": os.getloadavg(),
        "versions": {"torch": torch.__version__, "transformers": importlib.metadata.version("transformers"),
                     "python": platform.python_version(),
                     "llmcompressor_side": theirs.result()[args.methods[0]]["versions"]},
        "dense": {**dense_eval.accuracy, "perplexity": dense_eval.perplexity},
        "rows": rows,
        "tolerance": args.tolerance,
        "failed": failed,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {args.out}")
    if failed:
        print(f"|acc ours - acc theirs| > {args.tolerance} for: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logger.setLevel(logging.INFO)
    torch.set_num_threads(args.threads)
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        return run(args, args.workdir)
    with tempfile.TemporaryDirectory(prefix="jd-parity-") as tmp:
        return run(args, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
