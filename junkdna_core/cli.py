"""The ``junkdna`` command line: methods, dense baselines, model checks, the cache, the leaderboard."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from junkdna_core import __version__
from junkdna_core.config.budgets import BUDGETS
from junkdna_core.config.errors import ConfigError, JunkdnaError
from junkdna_core.config.parsing import (
    format_size,
    parse_budget,
    parse_directory,
    parse_export_format,
    parse_finite,
    parse_method_option,
    parse_seed,
)
from junkdna_core.models.specs import DEFAULT_MODEL
from junkdna_core.options import (
    add_cache_limit_option,
    add_cache_option,
    add_compare_options,
    add_device_options,
    add_input_options,
    add_items_option,
    add_metric_option,
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


def cmd_cache(args: argparse.Namespace) -> int:
    """List, size, clear or prune the artifact cache."""
    from junkdna_core.storage.cache import ArtifactCache

    cache = ArtifactCache(args.cache)
    if args.action == "clear":
        removed = cache.clear(args.kind)
        print(f"removed {removed} entries from {cache.root}")
        return 0
    if args.action == "prune":
        return _prune(cache, args)
    if args.max_gb is not None:
        raise ConfigError(f"--max-gb goes with `junkdna cache prune`, not `junkdna cache {args.action}`")
    entries = [e for e in cache.entries() if args.kind is None or e.kind == args.kind]
    if args.action == "list":
        for e in entries:
            used = e.accessed.strftime("%Y-%m-%d %H:%M")
            print(f"{e.kind:12} {e.key[:16]}  {format_size(e.size_bytes):>10}  used {used}  {e.description}")
    total = sum(e.size_bytes for e in entries)
    print(f"{len(entries)} entries, {format_size(total)} in {cache.root}")
    return 0


def _prune(cache, args: argparse.Namespace) -> int:
    """``junkdna cache prune --max-gb N``: evict least recently used compressed models down to the cap."""
    if args.max_gb is None:
        raise ConfigError("`junkdna cache prune` needs --max-gb N: the size in GB (10^9 bytes) to keep the cache under")
    if args.kind is not None:
        raise ConfigError("`junkdna cache prune` evicts compressed models only; it takes no --kind")
    report = cache.prune(args.max_gb)
    for e in report.evicted:
        print(f"evicted {e.kind} {e.key[:16]}  {format_size(e.size_bytes):>10}  used {e.accessed:%Y-%m-%d %H:%M}  "
              f"{e.description}")
    print(f"evicted {len(report.evicted)} entries ({format_size(report.freed_bytes)}); {cache.root} now holds "
          f"{format_size(report.size_bytes)}, cap {args.max_gb / 1e9:g} GB")
    if report.in_use:
        print(f"kept {len(report.in_use)} compressed models that another process is building or reading")
    if not report.within_limit:
        print("the cap is not reached: what remains is in use, or entries that are never evicted (per-item scores, "
              "converted models); `junkdna cache clear --kind KIND` removes those")
        return 1
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write one compressed model (built into the cache if needed) to a folder transformers and vLLM load."""
    from junkdna_core.compress.registry import get_method
    from junkdna_core.models.conventions import input_format
    from junkdna_core.models.loading import load_model
    from junkdna_core.storage.cache import ArtifactCache
    from junkdna_core.study.artifacts import calibration_batch
    from junkdna_core.study.model_export import export_compressed

    method = get_method(args.method).at_level(args.level, **dict(args.option))
    cache = ArtifactCache(args.cache)
    dense = load_model(args.model, device=args.device, dtype=args.dtype, cache=cache, device_map=args.device_map,
                       max_memory=args.max_memory)
    inputs = input_format(dense.conventions, bos=args.bos)
    calibration = (calibration_batch(dense.tokenizer, seed=args.seed, inputs=inputs) if method.needs_calibration
                   else None)
    report = export_compressed(dense, method, args.out, cache=cache, calibration=calibration,
                               export_format=args.format)
    print(f"wrote {dense.name} {method!r} to {report.out} as {report.format} ({report.reason})")
    for name in report.files:
        print(f"    {name}")
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
    from junkdna_core.models.conventions import input_format
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
        dense = load_model(spec, device=args.device, dtype=args.dtype, cache=cache, device_map=args.device_map,
                           max_memory=args.max_memory)
        inputs = input_format(dense.conventions, bos=args.bos, chat_template=args.chat_template)
        chat = f", chat template {inputs.chat_template}" if inputs.chat_template else ""
        print(("\n" if number else "") + f"{label} ({dense.fingerprint}), budget {budget.name}, {budget.items} items, "
              f"seed {args.seed}, bos {inputs.bos}: prefix {list(inputs.prefix_tokens)}{chat}")
        print("| setting | level | task | metric | items | dense | 95% CI | chance |")
        print("|---|---|---|---|---:|---:|---|---:|")
        for name in names:
            setting = SETTINGS[name]
            for level in setting.levels:
                scores = cached_level_scores(cache, dense_key(dense.fingerprint),
                                             lambda dense=dense: (dense.model, dense.tokenizer),
                                             setting, level, items[name][level.task], inputs=inputs, seed=args.seed,
                                             metrics=args.metric)
                chance = f"{level.chance:.3f}" if level.chance is not None else "-"
                for metric, values in {level.metric: scores.scores, **scores.extra}.items():
                    ci = bootstrap_ci(values, seed=args.seed)
                    print(f"| {name} | {level.name} | {level.task} | {metric} | {len(values)} | "
                          f"{math.fsum(values) / len(values):.3f} | [{ci.low:.3f}, {ci.high:.3f}] | "
                          f"{chance if metric == level.metric else '-'} |", flush=True)
        del dense  # one model in memory at a time
    return 0


def cmd_check_model(args: argparse.Namespace) -> int:
    """Load a model and check that the suite scores it right; exit 1 when a check fails."""
    import json

    from junkdna_core.data.settings import SETTINGS
    from junkdna_core.models.loading import load_model
    from junkdna_core.scoring.model_checks import check_model
    from junkdna_core.storage.cache import ArtifactCache

    cache = ArtifactCache(args.cache)
    loaded = load_model(args.spec, device=args.device, dtype=args.dtype, cache=cache, device_map=args.device_map,
                        max_memory=args.max_memory)
    settings = args.settings or [s for s, setting in SETTINGS.items() if setting.learning == "none"]
    items = args.budget.overridden(items=args.items).items
    report = check_model(loaded, bos=args.bos, chat_template=args.chat_template, settings=settings, items=items,
                         seed=args.seed, cache=cache)
    print(report.render(), end="")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.describe(), indent=2) + "\n")
    return 0 if report.passed else 1


def _add_items_arguments(parser: argparse.ArgumentParser, settings_help: str) -> None:
    """The arguments choosing which items of which settings are scored, on which device, in which dtype, and how
    texts are fed to the model (--bos, --chat-template, as --jd-bos and --jd-chat-template)."""
    parser.add_argument("--budget", type=type_error(parse_budget), default="smoke", metavar="NAME")
    add_items_option(parser.add_argument)
    parser.add_argument("--settings", type=type_error(parse_setting_names), default=None, metavar="NAMES",
                        help=settings_help)
    parser.add_argument("--seed", type=type_error(parse_seed), default=0, metavar="N")
    add_device_options(parser.add_argument)
    add_input_options(parser.add_argument)
    add_cache_option(parser.add_argument)


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

    cache = sub.add_parser("cache", help="list, size, clear or prune the artifact cache")
    cache.add_argument("action", nargs="?", choices=("list", "size", "clear", "prune"), default="list",
                       help="list (default), size, clear, or prune --max-gb N (evict least recently used "
                            "compressed models until the cache holds at most N GB)")
    cache.add_argument("--kind", default=None, help="only entries of this kind (e.g. model, compressed, scores)")
    add_cache_option(cache.add_argument)
    add_cache_limit_option(cache.add_argument)
    cache.set_defaults(func=cmd_cache)

    baseline = sub.add_parser("baseline", help="score dense models on every difficulty level (with chance)")
    baseline.add_argument("--model", type=type_error(parse_model_specs), default=(DEFAULT_MODEL,), metavar="SPECS",
                          help="comma-separated model specs, as --jd-model (one table each)")
    add_metric_option(baseline.add_argument)
    _add_items_arguments(baseline, "comma-separated settings (default: every evaluated setting)")
    baseline.set_defaults(func=cmd_baseline)

    check = sub.add_parser("check-model", help="check that the suite scores a model right: its tokenizer's "
                                                "conventions, packed and batched scoring, prompt lengths")
    check.add_argument("spec", metavar="SPEC", help="model spec, as --jd-model")
    check.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the report as JSON")
    _add_items_arguments(check, "comma-separated settings whose prompts must fit the model (default: every "
                                "evaluated setting; the budget's or --items items per level)")
    check.set_defaults(func=cmd_check_model)

    export = sub.add_parser("export", help="write one compressed model to a folder that transformers (and vLLM, "
                                           "for compressed-tensors formats) can load")
    export.add_argument("--model", default="smollm2", metavar="SPEC", help="model spec, as --jd-model")
    export.add_argument("--method", required=True, metavar="NAME", help="compression method (see `junkdna methods`)")
    export.add_argument("--level", required=True, type=type_error(parse_finite), metavar="X",
                        help="its level: a sparsity, a bit width or a rank fraction")
    export.add_argument("--option", type=type_error(parse_method_option), action="append", default=[],
                        metavar="NAME=VALUE", help="a method parameter, e.g. group_size=128 (repeatable)")
    export.add_argument("--seed", type=type_error(parse_seed), default=0, metavar="N",
                        help="calibration seed, as --jd-seed (the same seed finds the run's cached model)")
    add_device_options(export.add_argument)
    # calibration samples start as the run's did (--bos): the same cached model; they are no prompts
    add_input_options(export.add_argument, chat_template=False)
    add_cache_option(export.add_argument)
    export.add_argument("--out", type=type_error(parse_directory), required=True, metavar="DIR",
                        help="a new or empty folder")
    export.add_argument("--format", type=type_error(parse_export_format), default="auto", metavar="FORMAT",
                        help="auto (default: compressed-tensors pack-quantized when the model is quantized on one "
                             "scheme, else dense), dense (a plain safetensors folder) or compressed-tensors")
    export.set_defaults(func=cmd_export)

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
