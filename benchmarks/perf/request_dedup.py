"""How much scoring work request sharing saves: the levels' request lists, and the ones actually scored.

    python benchmarks/perf/request_dedup.py [--budget smoke] [--items N] [--seed 0]

For every level of the evaluated settings (the budget's items, the SmolLM2 tokenizer) it plans the
level's requests (:func:`junkdna_core.scoring.levels.level_requests`) and counts the tokens the
decoder runs for them (each context once with the token tree of its continuations, as the scorer
packs them). A request list is scored once per model however many levels ask for it (the
``request-scores`` cache), so the work per model is the sum over distinct lists. Printed: each
level's list, its tokens and whether an earlier level already asked for it, then the tokens every
level would run on its own, the tokens scored, and the saving against both that and sharing lists
within one setting only (scorer version 2 shared the option counts of setting 2). The figures are per model (the dense
model and every compressed one see the same lists), and independent of the machine: the scorer's
time is close to proportional to the tokens it runs.
"""

from __future__ import annotations

import argparse
import sys

from junkdna_core.config.budgets import BUDGETS
from junkdna_core.data.settings import SETTINGS
from junkdna_core.models.readers import _smollm2_tokenizer
from junkdna_core.scoring.engine import _encode_requests, default_inputs
from junkdna_core.scoring.levels import level_requests, requests_digest, setting_items
from junkdna_core.scoring.packing import pack
from junkdna_core.storage.cache import ArtifactCache


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", choices=sorted(BUDGETS), default="smoke")
    parser.add_argument("--items", type=int, default=None, help="items per level (default: the budget's)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cache = ArtifactCache()
    tokenizer = _smollm2_tokenizer(cache)
    inputs = default_inputs(tokenizer)
    count = args.items or BUDGETS[args.budget].items
    seen: dict[str, str] = {}
    within: set[tuple[str, str]] = set()  # (setting, list): sharing inside one setting only, as scorer version 2
    requested = scored = per_setting = 0
    print("| setting | level | list | tokens | scored by |\n|---|---|---|---:|---|")
    for name, setting in SETTINGS.items():
        if setting.learning != "none":
            continue
        items = setting_items(setting, count, args.seed, cache=cache)
        for level in setting.levels:
            plan = level_requests(level, items[level.task].items, seed=args.seed)
            encoded, _ = _encode_requests(tokenizer, plan.flat_requests, None, inputs)
            tokens = sum(len(pack(r.context, r.continuations)) for r in encoded)
            digest = requests_digest(plan.flat_requests)
            requested += tokens
            first = seen.setdefault(digest, f"{name}/{level.name}")
            scored += tokens if first == f"{name}/{level.name}" else 0
            per_setting += tokens if (name, digest) not in within else 0
            within.add((name, digest))
            print(f"| {name} | {level.name} | {digest[:10]} | {tokens} | {first} |")
    print(f"\n{args.budget} budget, {count} items per level, per model: levels ask for {requested} tokens, "
          f"{scored} are scored: saving {1 - scored / requested:.1%} against scoring every level on its own, "
          f"{1 - scored / per_setting:.1%} against sharing lists within a setting only ({per_setting} tokens)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
