"""llm-compressor's side of ``parity_llmcompressor.py``: run one of its methods, save the weights.

    <llmcompressor venv>/bin/python _llmcompressor_side.py --model DIR --calibration ids.pt \\
        --method sparsegpt|wanda|gptq --out weights.safetensors --meta meta.json

Runs inside llm-compressor's own virtual environment (it pins an older transformers), never
imports ``junkdna_core``. Loads the float32 model folder, runs ``oneshot`` with the given
pre-tokenized calibration ids (a ``(samples, tokens)`` long tensor saved with ``torch.save``;
no hub, no shuffling, one sample per forward), and saves the weight of every compressed linear
(GPTQ: the dequantized float32 weight) under its module name plus ``.weight``. ``--meta`` gets
the wall-clock and CPU seconds of ``oneshot``, the recipe and versions, and two checks: the largest
change of any tensor that is not a compressed weight (should be 0), and for GPTQ the largest
difference between the saved weight and llm-compressor's fake-quantization of it (0 when the
saved weight lies on the grid it stores).
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # read before huggingface_hub is imported
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import argparse
import importlib.metadata
import json
import sys
import time
from pathlib import Path

import torch
from datasets import Dataset
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer

IGNORE = ["re:.*lm_head"]  # a plain "lm_head" does not stop the pruning modifiers (they match "lm_head.")


def recipe_for(method: str, sparsity: float, bits: int, group_size: int):
    """The llm-compressor modifier for ``method``, configured like junkdna's defaults."""
    if method == "sparsegpt":
        from llmcompressor.modifiers.pruning import SparseGPTModifier

        return SparseGPTModifier(sparsity=sparsity, mask_structure="0:0", block_size=128, dampening_frac=0.01,
                                 targets=["Linear"], ignore=IGNORE)
    if method == "wanda":
        from llmcompressor.modifiers.pruning import WandaPruningModifier

        return WandaPruningModifier(sparsity=sparsity, mask_structure="0:0", targets=["Linear"], ignore=IGNORE)
    from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme
    from llmcompressor.modifiers.gptq import GPTQModifier

    weights = QuantizationArgs(num_bits=bits, type="int", symmetric=False, strategy="group", group_size=group_size,
                               observer="minmax")
    scheme = QuantizationScheme(targets=["Linear"], weights=weights)
    return GPTQModifier(config_groups={"group_0": scheme}, ignore=IGNORE, actorder=None, block_size=128,
                        dampening_frac=0.01)


def calibration_dataset(path: Path) -> Dataset:
    """The saved ``(samples, tokens)`` ids as a pre-tokenized Dataset with a full attention mask."""
    ids = torch.load(path)
    if ids.dim() != 2:
        raise SystemExit(f"{path} must hold a (samples, tokens) tensor; got shape {tuple(ids.shape)}")
    rows = ids.tolist()
    return Dataset.from_dict({"input_ids": rows, "attention_mask": [[1] * len(row) for row in rows]})


def compressed_linears(model: torch.nn.Module) -> dict[str, torch.nn.Linear]:
    """Every linear inside the decoder layers, by module name (the modules the recipe targets)."""
    return {name: module for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and ".layers." in name}


def fake_quant_gap(linears: dict[str, torch.nn.Linear]) -> float | None:
    """Largest |weight - fake_quantize(weight)| over the quantized linears; None when none is quantized."""
    from compressed_tensors.quantization.lifecycle.forward import fake_quantize

    gaps = []
    for module in linears.values():
        scheme = getattr(module, "quantization_scheme", None)
        if scheme is None or scheme.weights is None:
            continue
        zero = getattr(module, "weight_zero_point", None)
        again = fake_quantize(module.weight, module.weight_scale, zero, scheme.weights)
        gaps.append(float((again - module.weight).abs().max()))
    return max(gaps) if gaps else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="float32 model folder")
    parser.add_argument("--calibration", type=Path, required=True, help="torch.save'd (samples, tokens) ids")
    parser.add_argument("--method", choices=("sparsegpt", "wanda", "gptq"), required=True)
    parser.add_argument("--sparsity", type=float, default=0.5)
    parser.add_argument("--bits", type=int, default=4)
    parser.add_argument("--group-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True, help="safetensors file for the weights")
    parser.add_argument("--meta", type=Path, required=True, help="JSON file for timing and checks")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from llmcompressor import oneshot

    dataset = calibration_dataset(args.calibration)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    before = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
    recipe = recipe_for(args.method, args.sparsity, args.bits, args.group_size)
    samples, tokens = len(dataset), len(dataset[0]["input_ids"])
    start, cpu = time.perf_counter(), time.process_time()
    oneshot(model=model, processor=tokenizer, dataset=dataset, recipe=recipe, num_calibration_samples=samples,
            max_seq_length=tokens, shuffle_calibration_samples=False, batch_size=1, pipeline="sequential")
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu

    linears = compressed_linears(model)
    weights = {f"{name}.weight": module.weight.detach().to(torch.float32).contiguous()
               for name, module in linears.items()}
    after = model.state_dict()
    untouched = [float((after[name] - tensor).abs().max()) for name, tensor in before.items()
                 if name not in weights and name in after and tensor.is_floating_point()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(args.out))
    args.meta.write_text(json.dumps({
        "method": args.method,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "recipe": repr(recipe),
        "calibration": [samples, tokens],
        "threads": torch.get_num_threads(),
        "layers": len(weights),
        "max_change_outside_compressed": max(untouched, default=0.0),
        "max_fake_quant_gap": fake_quant_gap(linears) if args.method == "gptq" else None,
        "versions": {pkg: importlib.metadata.version(pkg)
                     for pkg in ("llmcompressor", "compressed-tensors", "transformers", "torch")},
    }, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
