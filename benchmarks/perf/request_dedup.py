"""How much scoring work request sharing saves: the levels' request lists, and the ones actually scored.

    python benchmarks/perf/request_dedup.py [--budget smoke] [--items N] [--seed 0] [--chat-template] [--time]

For every level of the evaluated settings (the budget's items, the SmolLM2 tokenizer) it plans the
level's requests (:func:`junkdna_core.scoring.levels.level_requests`) and counts the tokens the
decoder runs for them as the scorer lays them out (:func:`~junkdna_core.scoring.engine.forward_work`,
one sequence per forward, so no padding is counted). A request list is scored once per model however
many levels ask for it (the ``request-scores`` cache), and the passage-fraction levels of a setting are one
list (:func:`~junkdna_core.scoring.levels.scored_together`), in which an item's leading sentences run once;
so the work per model is the sum over distinct lists. Printed: each level's list, the tokens it would run
on its own, and the level that first asked for its list; then the tokens every level would run
on its own, the tokens scored, and the saving against both that and sharing nothing across levels but
within one setting's option counts (scorer version 2). The figures are per model (the dense model and
every compressed one see the same lists), and independent of the machine: the scorer's time is close to
proportional to the tokens it runs. ``--chat-template`` renders every prompt with SmolLM2's chat template
(``--jd-chat-template``), whose preamble each list's requests then all start with.

With ``--time`` it also scores, on the embedded SmolLM2 at one torch thread, every list that several
levels share both ways in the same run (each level's requests on their own, then the joint list) and
prints the time ratio, the largest log-likelihood difference and how many choices differ.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from junkdna_core.config.budgets import BUDGETS
from junkdna_core.data.settings import SETTINGS
from junkdna_core.models.conventions import InputFormat, input_format, tokenizer_conventions
from junkdna_core.models.loading import LoadedModel, load_model
from junkdna_core.models.readers import _smollm2_tokenizer
from junkdna_core.scoring.engine import forward_work, multiple_choice_predictions, score_continuations
from junkdna_core.scoring.levels import level_requests, requests_digest, scored_together, setting_items
from junkdna_core.storage.cache import ArtifactCache


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", choices=sorted(BUDGETS), default="smoke")
    parser.add_argument("--items", type=int, default=None, help="items per level (default: the budget's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chat-template", action="store_true", help="render prompts with the chat template")
    parser.add_argument("--time", action="store_true",
                        help="also time each joint list against its levels scored on their own, on SmolLM2")
    args = parser.parse_args()
    cache = ArtifactCache()
    tokenizer = _smollm2_tokenizer(cache)
    inputs = input_format(tokenizer_conventions(tokenizer), chat_template=args.chat_template)
    count = args.items or BUDGETS[args.budget].items
    seen: dict[str, str] = {}
    within: set[tuple[str, str]] = set()  # (setting, list): sharing inside one setting only, as scorer version 2
    requested = scored = per_setting = 0
    joint_lists: list[tuple[str, list[list], int]] = []  # (setting, each level's requests, tokens together)

    def tokens(requests: list) -> int:
        return forward_work(tokenizer, requests, batch_size=1, inputs=inputs).decoder_positions

    print("| setting | level | list | tokens | scored by |\n|---|---|---|---:|---|")
    for name, setting in SETTINGS.items():
        if setting.learning != "none":
            continue
        items = setting_items(setting, count, args.seed, cache=cache)
        for level in setting.levels:
            together = scored_together(setting, level)
            plans = {lv.name: level_requests(lv, items[lv.task].items, seed=args.seed) for lv in together}
            own = plans[level.name].flat_requests
            joint = [r for lv in together for r in plans[lv.name].flat_requests]
            alone, digest, own_digest = tokens(own), requests_digest(joint), requests_digest(own)
            requested += alone
            first = seen.setdefault(digest, f"{name}/{level.name}")
            if first == f"{name}/{level.name}":
                joint_tokens = tokens(joint)
                scored += joint_tokens
                if len(together) > 1:
                    joint_lists.append((name, [plans[lv.name].flat_requests for lv in together], joint_tokens))
            per_setting += alone if (name, own_digest) not in within else 0
            within.add((name, own_digest))
            print(f"| {name} | {level.name} | {digest[:10]} | {alone} | {first} |")
    print(f"\n{args.budget} budget, {count} items per level, per model: levels ask for {requested} tokens, "
          f"{scored} are scored: saving {1 - scored / requested:.1%} against scoring every level on its own, "
          f"{1 - scored / per_setting:.1%} against sharing lists within a setting only ({per_setting} tokens)")
    if args.time:
        torch.set_num_threads(1)
        loaded = load_model("smollm2", device="cpu", cache=cache)
        for name, lists, together in joint_lists:
            time_joint_list(loaded, name, lists, together, tokens, inputs)
    return 0


def time_joint_list(loaded: LoadedModel, name: str, lists: list[list], together: int, tokens,
                    inputs: InputFormat) -> None:
    """Score the levels' request lists on their own, then as one list, on the loaded model (SmolLM2 at one
    thread); print the time ratio, the largest log-likelihood difference and the choices that differ."""
    joint = [request for requests in lists for request in requests]
    score_continuations(loaded.model, loaded.tokenizer, joint[:8], progress=False, inputs=inputs)  # warm-up
    start = time.perf_counter()
    alone = [row for requests in lists for row in score_continuations(loaded.model, loaded.tokenizer, requests,
                                                                      progress=False, inputs=inputs)]
    apart = time.perf_counter() - start
    start = time.perf_counter()
    shared = score_continuations(loaded.model, loaded.tokenizer, joint, progress=False, inputs=inputs)
    at_once = time.perf_counter() - start
    gap = max(abs(a.loglik - b.loglik) for x, y in zip(alone, shared) for a, b in zip(x, y))
    choices = multiple_choice_predictions(alone), multiple_choice_predictions(shared)
    differ = sum(a != b for metric in choices[0] for a, b in zip(choices[0][metric], choices[1][metric]))
    apart_tokens = sum(tokens(requests) for requests in lists)
    print(f"\n{name}, {len(lists)} levels as one list, SmolLM2 at one thread: {apart:.1f} s on their own, "
          f"{at_once:.1f} s together (ratio {at_once / apart:.2f}; tokens {apart_tokens} -> {together}, "
          f"{together / apart_tokens:.2f}); largest log-likelihood difference {gap:.1e}, {differ} of "
          f"{len(joint) * len(choices[0])} choices (acc, acc_norm, acc_tok) differ")


if __name__ == "__main__":
    sys.exit(main())
