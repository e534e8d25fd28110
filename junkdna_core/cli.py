"""The ``junkdna`` command line: methods, dense baselines, the cache, the leaderboard."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from junkdna_core import __version__
from junkdna_core.config.budgets import BUDGETS
from junkdna_core.config.errors import JunkdnaError
from junkdna_core.config.parsing import parse_budget, parse_device, parse_dtype, parse_seed
from junkdna_core.models.specs import DEFAULT_MODEL
from junkdna_core.options import (
    add_cache_option,
    add_compare_options,
    add_items_option,
    parse_model_specs,
    parse_setting_names,
    type_error,
)
from junkdna_core.results.compare import compare_runs, render_comparison
from junkdna_core.results.leaderboard import parse_formats


def cmd_methods(args: argparse.Namespace) -> int:
    """Print every registered compression method with its parameters and default levels; broken ones with why."""
    from junkdna_core.compress.registry import scan_methods
    from junkdna_core.compress.variants import describe_params

    for entry in scan_methods():
        cls = entry.cls
        if cls is None:
            print(f"{entry.name}  (broken: cannot be used)  {entry.target}")
            print(f"    error: {entry.error}")
            continue
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        calib = "calibrated" if cls.needs_calibration else "data-free"
        print(f"{entry.name}  ({cls.family}, {calib}, version {cls.version})  {doc}")
        print(f"    params: {describe_params(cls.params_type)}")
        for budget in BUDGETS.values():
            levels = ", ".join(f"{v:g}" for v in cls.default_levels(budget))
            print(f"    {budget.name} {cls.level_name}: {levels}")
    return 0


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover


def cmd_cache(args: argparse.Namespace) -> int:
    """List, size or clear the artifact cache."""
    from junkdna_core.storage.cache import ArtifactCache

    cache = ArtifactCache(args.cache)
    if args.action == "clear":
        removed = cache.clear(args.kind)
        print(f"removed {removed} entries from {cache.root}")
        return 0
    entries = [e for e in cache.entries() if args.kind is None or e.kind == args.kind]
    if args.action == "list":
        for e in entries:
            print(f"{e.kind:12} {e.key[:16]}  {_human(e.size_bytes):>10}  {e.created}  {e.description}")
    total = sum(e.size_bytes for e in entries)
    print(f"{len(entries)} entries, {_human(total)} in {cache.root}")
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """Export the newest claim records of the given runs as tables and plots."""
    from junkdna_core.results.export import export_leaderboard

    written = export_leaderboard(args.inputs, args.out, args.formats)
    print(f"wrote {len(written)} files to {args.out}")
    for path in written:
        print(f"    {path}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Compare a run's claim records with a baseline's; exit 1 on a regression."""
    comparison = compare_runs(args.baseline, args.current, tolerance=args.tolerance, strict=args.strict)
    print(render_comparison(comparison), end="")
    return comparison.exit_code


def cmd_baseline(args: argparse.Namespace) -> int:
    """Score each dense model on every level of the evaluated settings: what can this model measure?"""
    from junkdna_core.data.settings import SETTINGS
    from junkdna_core.models.loading import load_model
    from junkdna_core.models.specs import model_labels
    from junkdna_core.scoring.levels import cached_level_scores, dense_key, setting_items
    from junkdna_core.stats import bootstrap_ci
    from junkdna_core.storage.cache import ArtifactCache

    cache = ArtifactCache(args.cache)
    names = args.settings or [s for s, setting in SETTINGS.items() if setting.learning == "none"]
    budget = args.budget.overridden(items=args.items)
    items = {name: setting_items(SETTINGS[name], budget.items, args.seed, cache=cache) for name in names}
    for number, (spec, label) in enumerate(zip(args.model, model_labels(args.model))):
        dense = load_model(spec, device=args.device, dtype=args.dtype, cache=cache)
        print(("\n" if number else "") + f"{label} ({dense.fingerprint}), budget {budget.name}, {budget.items} items, "
              f"seed {args.seed}")
        print("| setting | level | task | metric | items | dense | 95% CI | chance |")
        print("|---|---|---|---|---:|---:|---|---:|")
        for name in names:
            setting = SETTINGS[name]
            for level in setting.levels:
                scores = cached_level_scores(cache, dense_key(dense.fingerprint),
                                             lambda dense=dense: (dense.model, dense.tokenizer),
                                             setting, level, items[name][level.task], seed=args.seed)
                ci = bootstrap_ci(scores.scores, seed=args.seed)
                chance = f"{level.chance:.3f}" if level.chance is not None else "-"
                print(f"| {name} | {level.name} | {level.task} | {level.metric} | {len(scores.scores)} | "
                      f"{scores.mean:.3f} | [{ci.low:.3f}, {ci.high:.3f}] | {chance} |", flush=True)
        del dense  # one model in memory at a time
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``junkdna`` command."""
    parser = argparse.ArgumentParser(
        prog="junkdna",
        description="Benchmarks for the Junk DNA Hypothesis. Run the claims with `pytest benchmarks`.",
    )
    parser.add_argument("--version", action="version", version=f"junkdna {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    methods = sub.add_parser("methods", help="list every registered compression method and its parameters")
    methods.set_defaults(func=cmd_methods)

    cache = sub.add_parser("cache", help="list, size or clear the artifact cache")
    cache.add_argument("action", nargs="?", choices=("list", "size", "clear"), default="list")
    cache.add_argument("--kind", default=None, help="only entries of this kind (e.g. model, compressed, scores)")
    add_cache_option(cache.add_argument)
    cache.set_defaults(func=cmd_cache)

    baseline = sub.add_parser("baseline", help="score dense models on every difficulty level (with chance)")
    baseline.add_argument("--model", type=type_error(parse_model_specs), default=(DEFAULT_MODEL,), metavar="SPECS",
                          help="comma-separated model specs, as --jd-model (one table each)")
    baseline.add_argument("--budget", type=type_error(parse_budget), default="smoke", metavar="NAME")
    add_items_option(baseline.add_argument)
    baseline.add_argument("--settings", type=type_error(parse_setting_names), default=None, metavar="NAMES",
                          help="comma-separated settings (default: every evaluated setting)")
    baseline.add_argument("--seed", type=type_error(parse_seed), default=0, metavar="N")
    baseline.add_argument("--device", type=type_error(parse_device), default="auto", metavar="DEV")
    baseline.add_argument("--dtype", type=type_error(parse_dtype), default="float32", metavar="DTYPE")
    add_cache_option(baseline.add_argument)
    baseline.set_defaults(func=cmd_baseline)

    board = sub.add_parser("leaderboard", help="export claim tables, method rankings and plots from run records")
    board.add_argument("inputs", nargs="*", type=Path, metavar="RECORDS_OR_DIRS",
                       help="run records (run-*.json) or directories of them, searched recursively and merged "
                            "(default: ./jd-results)")
    board.add_argument("--out", type=Path, default=Path("jd-results/leaderboard"), metavar="DIR",
                       help="where to write the leaderboard (default: jd-results/leaderboard)")
    board.add_argument("--formats", type=type_error(parse_formats), default="md,csv,json,html,png", metavar="LIST",
                       help="comma-separated subset of md,csv,json,html,png (default: all)")
    board.set_defaults(func=cmd_leaderboard)

    compare = sub.add_parser("compare", help="fail when a claim statistic or hard-task retention got worse than "
                                             "in a baseline run")
    compare.add_argument("baseline", type=Path, metavar="BASELINE",
                         help="run record or directory of them (searched recursively: the runs of several groups)")
    compare.add_argument("current", type=Path, nargs="+", metavar="CURRENT",
                         help="run records or directories of them, merged (e.g. one directory per group or machine)")
    add_compare_options(compare.add_argument)
    compare.set_defaults(func=cmd_compare)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``junkdna`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except JunkdnaError as exc:
        print(f"junkdna: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
