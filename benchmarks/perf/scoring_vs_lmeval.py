"""Multiple-choice scoring throughput against lm-evaluation-harness, on the same model and items.

    python benchmarks/perf/scoring_vs_lmeval.py [--items 500] [--batch-size 8] [--threads 1] [--bos auto]

Both scorers get SmolLM2-135M (the float32 folder ``load_model("smollm2")`` reads from the
artifact cache) and the first ``--items`` ARC-Easy validation questions with four options, in
lm-eval's arc_easy format ("Question: {{question}}\\nAnswer:", choices " {{choice}}"). lm-eval
reads them from a local JSONL task written to a temporary directory, with the hub offline.
Each scorer is timed from the items to the per-item log-likelihoods (model loading, lm-eval's task
indexing and a warm-up on the first batch of items excluded), in one process with the same torch
thread count: ours, then lm-eval, then ours again (its time is the mean of the two, which brackets
a change of the machine's load during lm-eval's longer run). Both wall-clock and CPU time are
taken: at one thread they agree on an idle machine, and on a shared one the CPU-time ratio is the
steadier figure. ``--bos`` decides the context prefix on both sides (lm-eval's ``add_bos_token``:
auto = None, always = True, never = False). Printed and written to ``--out`` as JSON: items/s of
each and the ratios, acc and acc_norm of each, the number of items whose chosen option differs,
and the largest log-likelihood difference.

Needs the optional extra: ``pip install -e ".[lmeval]"``.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # read before huggingface_hub is imported
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import argparse
import contextlib
import importlib.metadata
import json
import logging
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from junkdna_core.config.parsing import BOS_POLICIES
from junkdna_core.data.items import MultipleChoiceItem
from junkdna_core.data.prompts import render_cloze
from junkdna_core.data.tasks import load_task
from junkdna_core.models.conventions import input_format
from junkdna_core.models.loading import LoadedModel, load_model
from junkdna_core.scoring.engine import decoder_and_head, forward_work, score_continuations
from junkdna_core.storage.cache import ArtifactCache

TASK_NAME = "junkdna_arc_easy_local"
TASK_YAML = """\
task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    validation: {data}
output_type: multiple_choice
validation_split: validation
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_target: gold
doc_to_choice: choices
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


LMEVAL_BOS = {"auto": None, "always": True, "never": False}  # --bos as lm-eval's add_bos_token


@dataclass(frozen=True)
class Run:
    """One scorer's outcome: wall-clock and CPU seconds and, per item, the log-likelihood of each option."""

    seconds: float
    cpu_seconds: float
    logliks: list[list[float]]


@contextlib.contextmanager
def timed() -> Iterator[dict[str, float]]:
    """Wall-clock (``wall``) and CPU (``cpu``) seconds of a ``with`` block, filled in when it ends."""
    times: dict[str, float] = {}
    wall, cpu = time.perf_counter(), time.process_time()
    yield times
    times.update(wall=time.perf_counter() - wall, cpu=time.process_time() - cpu)


def four_option_items(count: int) -> list[MultipleChoiceItem]:
    """The first ``count`` ARC-Easy validation items that have exactly four options."""
    items = [item for item in load_task("arc_easy", "validation") if len(item.choices) == 4]
    if count > len(items):
        raise SystemExit(f"--items {count} exceeds the {len(items)} four-option ARC-Easy validation items")
    return items[:count]


def choices_of(logliks: list[list[float]], items: list[MultipleChoiceItem]) -> dict[str, list[int]]:
    """Argmax option per item under acc (log-likelihood) and acc_norm (per character), first on ties."""
    def argmax(values: list[float]) -> int:
        return max(range(len(values)), key=values.__getitem__)

    return {
        "acc": [argmax(row) for row in logliks],
        "acc_norm": [
            argmax([ll / len(choice) for ll, choice in zip(row, item.choices)])
            for row, item in zip(logliks, items)
        ],
    }


def run_ours(loaded: LoadedModel, items: list[MultipleChoiceItem], batch_size: int, bos: str) -> Run:
    """Score with junkdna_core.scoring.engine (prefix reuse on), timing rendering, tokenising and scoring.

    The first ``batch_size`` items are scored once before the timing starts (warm-up).
    """
    inputs = input_format(loaded.conventions, bos=bos)
    warm_up = [render_cloze("arc_easy", item) for item in items[:batch_size]]
    score_continuations(loaded.model, loaded.tokenizer, warm_up, batch_size=batch_size, progress=False,
                        inputs=inputs)
    with timed() as timer:
        requests = [render_cloze("arc_easy", item) for item in items]
        scores = score_continuations(loaded.model, loaded.tokenizer, requests, batch_size=batch_size,
                                     progress=False, inputs=inputs)
    return Run(timer["wall"], timer["cpu"], [[s.loglik for s in options] for options in scores])


def bracketed(first: Run, second: Run) -> Run:
    """Two runs of the same scorer as one: mean times; the log-likelihoods must agree to the bit."""
    if first.logliks != second.logliks:
        raise SystemExit("two runs of junkdna's scorer on the same items gave different log-likelihoods")
    return Run((first.seconds + second.seconds) / 2, (first.cpu_seconds + second.cpu_seconds) / 2, first.logliks)


def write_task(directory: Path, items: list[MultipleChoiceItem]) -> None:
    """A local lm-eval task over ``items``: a JSONL file and the YAML that reads it."""
    data = directory / "arc_easy.jsonl"
    rows = [{"id": item.id, "question": item.question, "choices": list(item.choices), "gold": item.gold}
            for item in items]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    (directory / f"{TASK_NAME}.yaml").write_text(TASK_YAML.format(name=TASK_NAME, data=json.dumps(str(data))))


def run_lmeval(folder: Path, items: list[MultipleChoiceItem], batch_size: int, bos: str) -> Run:
    """Score with lm-eval's ``hf`` model on the local folder.

    The timing covers ``simple_evaluate`` (reading the local task, building and scoring the requests);
    loading the model, indexing lm-eval's task registry and a warm-up evaluation of the first
    ``batch_size`` items happen before it.
    """
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    lm = HFLM(pretrained=str(folder), dtype="float32", device="cpu", batch_size=batch_size,
              add_bos_token=LMEVAL_BOS[bos])
    with tempfile.TemporaryDirectory(prefix="jd-lmeval-") as tmp:
        write_task(Path(tmp), items)
        tasks = TaskManager(include_path=tmp)
        settings = {"model": lm, "tasks": [TASK_NAME], "task_manager": tasks, "bootstrap_iters": 0,
                    "random_seed": 0, "numpy_random_seed": 0, "torch_random_seed": 0}
        simple_evaluate(**settings, limit=batch_size)
        with timed() as timer:
            output = simple_evaluate(**settings, log_samples=True)
    samples = sorted(output["samples"][TASK_NAME], key=lambda sample: sample["doc_id"])
    if [s["doc"]["id"] for s in samples] != [item.id for item in items]:
        raise SystemExit("lm-eval returned samples for other documents than the items given")
    return Run(timer["wall"], timer["cpu"], [[float(ll) for ll, _greedy in s["filtered_resps"]] for s in samples])


def summarize(name: str, run: Run, items: list[MultipleChoiceItem]) -> dict:
    """Throughput and accuracies of one run."""
    chosen = choices_of(run.logliks, items)
    gold = [item.gold for item in items]
    return {
        "scorer": name,
        "seconds": run.seconds,
        "cpu_seconds": run.cpu_seconds,
        "items_per_s": len(items) / run.seconds,
        **{metric: sum(c == g for c, g in zip(picks, gold)) / len(items) for metric, picks in chosen.items()},
    }


def compare(ours: Run, theirs: Run, items: list[MultipleChoiceItem]) -> dict:
    """Items whose chosen option differs per metric, and the largest per-option log-likelihood gap."""
    a, b = choices_of(ours.logliks, items), choices_of(theirs.logliks, items)
    gaps = [abs(x - y) for row_a, row_b in zip(ours.logliks, theirs.logliks) for x, y in zip(row_a, row_b)]
    return {
        "differing_choices": {metric: sum(x != y for x, y in zip(a[metric], b[metric])) for metric in a},
        "max_abs_loglik_diff": max(gaps),
        "speedup": theirs.seconds / ours.seconds,
        "speedup_cpu": theirs.cpu_seconds / ours.cpu_seconds,
    }


def work(loaded: LoadedModel, items: list[MultipleChoiceItem], batch_size: int, bos: str) -> dict:
    """The forward-pass work of each scorer's layout (:func:`forward_work`; lm-eval's is the no-reuse
    layout with every position projected) and their FLOP ratio: the speedup at equal FLOP/s."""
    requests = [render_cloze("arc_easy", item) for item in items]
    inputs = input_format(loaded.conventions, bos=bos)
    decoder, head = decoder_and_head(loaded.model)
    embedding = decoder.get_input_embeddings().weight
    decoder_parameters = sum(p.numel() for p in decoder.parameters()) - embedding.numel()  # a lookup, no matmul
    head_parameters = head.weight.numel()
    ours = forward_work(loaded.tokenizer, requests, batch_size=batch_size, inputs=inputs)
    theirs = forward_work(loaded.tokenizer, requests, batch_size=batch_size, inputs=inputs, reuse_prefix=False,
                          project_all=True)
    flops = {"ours": ours.flops(decoder_parameters, head_parameters),
             "lm_eval": theirs.flops(decoder_parameters, head_parameters)}
    return {"ours": vars(ours), "lm_eval": vars(theirs), "flops": flops, "flop_ratio": flops["lm_eval"] / flops["ours"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--bos", choices=BOS_POLICIES, default="auto",
                        help="the context prefix on both sides (default: auto, the tokenizer's own)")
    parser.add_argument("--out", type=Path, default=Path("jd-results/perf-scoring-vs-lmeval.json"))
    args = parser.parse_args()
    if args.items < 1 or args.batch_size < 1 or args.threads < 1:
        parser.error("--items, --batch-size and --threads must be positive integers")
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)

    items = four_option_items(args.items)
    loaded = load_model("smollm2", device="cpu", cache=ArtifactCache())
    folder = Path(loaded.model.name_or_path)
    if not (folder / "config.json").is_file():
        raise SystemExit(f"the loaded SmolLM2 does not name its local folder (got {folder})")

    before = run_ours(loaded, items, args.batch_size, args.bos)
    theirs = run_lmeval(folder, items, args.batch_size, args.bos)
    ours = bracketed(before, run_ours(loaded, items, args.batch_size, args.bos))
    summary = {
        "task": "arc_easy validation, first items with 4 options",
        "items": len(items),
        "batch_size": args.batch_size,
        "bos": args.bos,
        "inputs": input_format(loaded.conventions, bos=args.bos).describe(),
        "threads": torch.get_num_threads(),
        "model": {"source": loaded.source, "folder": str(folder), "fingerprint": loaded.fingerprint},
        "versions": {"torch": torch.__version__, "transformers": importlib.metadata.version("transformers"),
                     "lm_eval": importlib.metadata.version("lm_eval"), "python": platform.python_version()},
        "load_average": os.getloadavg(),
        "ours": summarize("junkdna", ours, items),
        "lm_eval": summarize("lm-eval", theirs, items),
        **compare(ours, theirs, items),
        "work": work(loaded, items, args.batch_size, args.bos),
    }
    for side in ("ours", "lm_eval"):
        row = summary[side]
        print(f"{row['scorer']:>8}: {row['items_per_s']:7.2f} items/s ({row['seconds']:.1f} s wall, "
              f"{row['cpu_seconds']:.1f} s cpu)  acc {row['acc']:.3f}  acc_norm {row['acc_norm']:.3f}")
    diff = summary["differing_choices"]
    print(f" speedup: {summary['speedup']:.2f}x wall, {summary['speedup_cpu']:.2f}x cpu  "
          f"differing choices: acc {diff['acc']}, acc_norm {diff['acc_norm']}  "
          f"max |dloglik| {summary['max_abs_loglik_diff']:.2e}  (load average {summary['load_average'][0]:.1f})")
    done = summary["work"]
    print(f"    work: decoder positions {done['ours']['decoder_positions']} vs {done['lm_eval']['decoder_positions']}, "
          f"projected {done['ours']['projected_positions']} vs {done['lm_eval']['projected_positions']}; "
          f"FLOP ratio {done['flop_ratio']:.2f} (the speedup at equal FLOP/s); "
          f"ours at {done['flops']['ours'] / ours.cpu_seconds / 1e9:.0f} GFLOP per CPU second")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
