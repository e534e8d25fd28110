"""The user-facing options, defined once and shared by the pytest plugin and the CLI.

Each option's parser rejects a bad value at parse time with a message saying
what was given and what is allowed (argparse turns it into a usage error before
any compute). The option groups take an ``addoption`` callable and a prefix, so
pytest gets ``--jd-model`` and the CLI gets ``--model`` from one definition
(the pytest-benchmark pattern). Help texts about budgets are generated from
:data:`~junkdna_core.config.budgets.BUDGETS`.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from junkdna_core.compress.registry import check_method_name
from junkdna_core.config.budgets import BUDGETS, budgets_help, get_budget
from junkdna_core.config.errors import ConfigError
from junkdna_core.config.method_specs import MethodSpec, parse_method_specs
from junkdna_core.config.parsing import (
    BOS_POLICIES,
    DEVICE_MAP_POLICIES,
    DTYPES,
    WEIGHTS_SHARE,
    parse_bos_policy,
    parse_budget,
    parse_device,
    parse_device_map,
    parse_directory,
    parse_dtype,
    parse_gigabytes,
    parse_max_memory,
    parse_positive_int,
    parse_seed,
    parse_sparsities,
    parse_threshold,
)
from junkdna_core.data.settings import ANSWER_METRICS, get_setting
from junkdna_core.models.specs import DEFAULT_MODEL, spec_kind
from junkdna_core.results.compare import DEFAULT_TOLERANCE, parse_tolerance


def type_error(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """Wrap a parser so a ConfigError becomes argparse's usage error (shown before any run)."""

    def wrapped(text: str) -> Any:
        try:
            return parse(text)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc

    wrapped.__name__ = parse.__name__
    return wrapped


def parse_method_names(text: str) -> tuple[MethodSpec, ...]:
    """Comma-separated method specs (``magnitude[scope=global],nm[m=4]``), each naming a registered method.

    Torch-free (the xdist controller parses it too): the names are checked against
    package metadata, the options only for their syntax; the method's parameter
    dataclass types and checks them when the session resolves the specs.
    """
    with _naming_the_list(text):
        specs = parse_method_specs(text)
        for spec in specs:
            check_method_name(spec.name)
    return specs


def parse_model_specs(text: str) -> tuple[str, ...]:
    """Comma-separated model specs (``smollm2,random:tiny-llama``), each naming something loadable, none twice."""
    specs = tuple(p.strip() for p in str(text).split(",") if p.strip())
    if not specs:
        raise ConfigError(f"expected a comma-separated list of model specs such as smollm2,random:tiny-llama; "
                          f"got {text!r}")
    sources: dict[str, str] = {}
    with _naming_the_list(text):
        for spec in specs:
            kind = spec_kind(spec)  # the one place a listed spec is checked (the models layer's check, torch-free)
            source = str(Path(spec).expanduser().resolve()) if kind == "folder" else spec
            if source in sources:
                raise ConfigError(f"model list {text!r} names {sources[source]!r} twice"
                                  + (f" (as {spec!r})" if spec != sources[source] else ""))
            sources[source] = spec
    return specs


def parse_setting_names(text: str) -> tuple[str, ...]:
    """Comma-separated setting names, each known (``setting1`` .. ``setting6``)."""
    names = tuple(p.strip() for p in str(text).split(",") if p.strip())
    if not names:
        raise ConfigError(f"expected a comma-separated list of settings such as setting2,setting3; got {text!r}")
    with _naming_the_list(text):
        for name in names:
            get_setting(name)
    return names


def parse_metric_names(text: str) -> tuple[str, ...]:
    """Comma-separated answer metrics recorded beside the likelihood (``em``, ``f1``), or ``none``."""
    names = tuple(dict.fromkeys(p.strip().lower() for p in str(text).split(",") if p.strip()))
    if names == ("none",):
        return ()
    unknown = [name for name in names if name not in ANSWER_METRICS]
    if not names or unknown:
        raise ConfigError(f"expected none or a comma-separated list of {', '.join(ANSWER_METRICS)}; got {text!r}")
    return names


@contextlib.contextmanager
def _naming_the_list(text: str) -> Iterator[None]:
    """Re-raise a ConfigError about one element of a list with the whole list given, if it does not name it."""
    try:
        yield
    except ConfigError as exc:
        if repr(text) in str(exc):
            raise
        raise ConfigError(f"in {text!r}: {exc}") from None


def add_run_options(addoption: Callable[..., Any], prefix: str = "") -> None:
    """Register the options that choose what a run measures: model, methods, levels, budget, seed."""
    addoption(f"--{prefix}model", type=type_error(parse_model_specs), default=(DEFAULT_MODEL,), metavar="SPECS",
              help="comma-separated models, each measured by every claim benchmark: smollm2 (embedded default), "
                   "minilm, random:<config>, a local folder or a hub id")
    addoption(f"--{prefix}methods", type=type_error(parse_method_names), default=None, metavar="SPECS",
              help="comma-separated compression methods, each NAME or NAME[KEY=VALUE,...] with options of its "
                   "parameters, e.g. 'magnitude[scope=global],nm[m=4]' (see `junkdna methods`); default: the "
                   "budget's (" + budgets_help("methods", ",".join) + ")")
    addoption(f"--{prefix}sparsities", type=type_error(parse_sparsities), default=None, metavar="LIST",
              help="comma-separated sparsities in [0, 1) for pruning methods; default: the budget's ("
                   + budgets_help("sparsities") + "; N:M " + budgets_help("nm_sparsities") + ")")
    addoption(f"--{prefix}budget", type=type_error(parse_budget), default=get_budget("smoke"), metavar="NAME",
              help="; ".join(f"{b.name}: {b.description}" for b in BUDGETS.values()))
    addoption(f"--{prefix}seed", type=type_error(parse_seed), default=0, metavar="N",
              help="seed of every random choice, a whole number < 2**32: item samples, calibration data, a "
                   "method's seed parameter (random pruning) unless its spec sets one, the random control's masks "
                   "(it, +1, ...), fine-tuning data splits and training seeds (offset by it), the claims' bootstrap")
    add_device_options(addoption, prefix)


def add_device_options(addoption: Callable[..., Any], prefix: str = "") -> None:
    """Register the options that say where a model runs: devices, dtype, device map, memory budgets."""
    addoption(f"--{prefix}device", type=type_error(parse_device), default="auto", metavar="DEV",
              help="auto (every CUDA device, else the CPU), cpu, mps, cuda, cuda:N, or a list such as cuda:0,cuda:2; "
                   "with N devices, pytest-xdist worker k runs on device k mod N, a run without xdist on the first")
    addoption(f"--{prefix}dtype", type=type_error(parse_dtype), default="auto", metavar="DTYPE",
              help=f"{', '.join(DTYPES)} (default auto: bfloat16 on CUDA devices that support it, float16 on older "
                   "ones, float32 on the CPU; models that are fine-tuned stay float32)")
    addoption(f"--{prefix}device-map", type=type_error(parse_device_map), default="auto", metavar="WHEN",
              help=f"{', '.join(DEVICE_MAP_POLICIES)}: spread a model over the worker's devices, the host and disk "
                   "with accelerate's device map; auto (default): only when its weights do not fit the device")
    addoption(f"--{prefix}max-memory", type=type_error(parse_max_memory), default=None, metavar="DEV=SIZE,...",
              help="memory model weights may take per device, e.g. cuda:0=20GiB,cpu=64GiB "
                   f"(default: {WEIGHTS_SHARE * 100:.0f}%% of the memory free on each device)")


def add_input_options(addoption: Callable[..., Any], prefix: str = "", *, chat_template: bool = True) -> None:
    """Register the options that decide how texts are fed to the model: its BOS token, its chat template (unless
    ``chat_template`` is False: for commands that feed no prompts)."""
    addoption(f"--{prefix}bos", type=type_error(parse_bos_policy), default="auto", metavar="|".join(BOS_POLICIES),
              help="the token every scoring context, calibration sample, perplexity text and fine-tuning input "
                   "starts with: auto (the BOS token exactly when the model's tokenizer adds it by default), "
                   "always (the BOS token), never (no special token); default: auto")
    if not chat_template:
        return
    addoption(f"--{prefix}chat-template", action="store_true", default=False,
              help="render every prompt through the model's chat template (one user turn, then the assistant's "
                   "turn), as lm-evaluation-harness's --apply_chat_template; off by default")


def add_items_option(addoption: Callable[..., Any], prefix: str = "") -> None:
    """Register the option that overrides the budget's number of items per difficulty level."""
    addoption(f"--{prefix}items", type=type_error(parse_positive_int), default=None, metavar="N",
              help=f"items scored per difficulty level, and test items per level of fine-tuning (default: the "
                   f"budget's: {budgets_help('items')})")


def add_random_seeds_option(addoption: Callable[..., Any], prefix: str = "") -> None:
    """Register the option that sets how many random masks the random control averages."""
    addoption(f"--{prefix}random-seeds", type=type_error(parse_positive_int), default=None, metavar="N",
              help="random masks (seeds --jd-seed, +1, ...) the random control averages, their spread inside its "
                   f"interval (default: the budget's: {budgets_help('random_seeds')})")


def add_metric_option(addoption: Callable[..., Any], prefix: str = "") -> None:
    """Register the option that records answer metrics beside the likelihood on generative levels."""
    addoption(f"--{prefix}metric", type=type_error(parse_metric_names), default=(), metavar="NAMES",
              help="answer metrics of the greedy answer recorded beside the gold-answer likelihood on the levels "
                   f"with generative items (settings 3 and 6): {', '.join(ANSWER_METRICS)} or none (default: none)")


def add_threshold_option(addoption: Callable[..., Any], prefix: str = "") -> None:
    """Register the option that overrides a claim's threshold (default: the paper's)."""
    addoption(f"--{prefix}threshold", type=type_error(parse_threshold), action="append", default=[],
              metavar="CLAIM=VALUE",
              help="override a claim threshold, e.g. monotonic=0.9 (repeatable); defaults are the paper's")


def add_cache_option(addoption: Callable[..., Any], prefix: str = "") -> None:
    """Register the option that chooses the artifact cache directory."""
    addoption(f"--{prefix}cache", type=type_error(parse_directory), default=None, metavar="DIR",
              help="artifact cache directory (default: $JUNKDNA_CACHE or the user cache dir)")


def add_cache_limit_option(addoption: Callable[..., Any], prefix: str = "") -> None:
    """Register the option that caps the artifact cache's size (least recently used compressed models go first)."""
    addoption(f"--{prefix}max-gb", type=type_error(parse_gigabytes), default=None, metavar="GB",
              help="keep the artifact cache under GB gigabytes (10^9 bytes; a unit as in 500GiB also works) by "
                   "evicting the least recently used compressed models that no process is reading (in a run: after "
                   "each compressed model is built); per-item scores and other results are kept (default: no cap)")


def add_results_option(addoption: Callable[..., Any], prefix: str = "") -> None:
    """Register the option that chooses where run records are written."""
    addoption(f"--{prefix}results", type=type_error(parse_directory), default=None, metavar="DIR",
              help="where run records are written (default: ./jd-results)")


def add_compare_options(addoption: Callable[..., Any], prefix: str = "") -> None:
    """Register the options of a comparison (tolerance, strict), for the CLI and the pytest plugin."""
    addoption(f"--{prefix}tolerance", type=type_error(parse_tolerance), default=DEFAULT_TOLERANCE, metavar="X",
              help="absolute change allowed for statistics without an interval and for hard-task retention "
                   f"(default: {DEFAULT_TOLERANCE})")
    addoption(f"--{prefix}strict", action="store_true", default=False,
              help="also fail when a baseline record is missing from the current run or cannot be compared")
