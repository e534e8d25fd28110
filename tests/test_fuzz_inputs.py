"""Fuzzing every user-facing input: bad values are a ConfigError or a usage error, never a traceback.

Option parsers return a value of their documented type or raise ConfigError naming the text given;
method parameters give a configured method or ConfigError; the ``junkdna`` command line turns every
bad argument into an argparse usage error; setting definitions reject bad data in ``__post_init__``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import itertools
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from junkdna_core import cli, options
from junkdna_core.compress.base import CompressionMethod
from junkdna_core.compress.registry import available_methods
from junkdna_core.config import parsing
from junkdna_core.config.budgets import BUDGETS
from junkdna_core.config.checks import SEED_LIMIT
from junkdna_core.config.errors import ConfigError
from junkdna_core.config.thresholds import PAPER_THRESHOLDS
from junkdna_core.data.settings import ANSWER_METRICS, SETTINGS, TRANSFORMS, Format, Level, Metric, Setting
from junkdna_core.results.compare import parse_tolerance
from junkdna_core.results.leaderboard import FORMATS, parse_formats

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
METHODS = tuple(available_methods())

# Text that looks like each option's values: valid words, numbers and separators mixed with noise.
NUMBERS = st.one_of(st.integers().map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                    st.sampled_from(["1e400", "-0", "1_000", "0x10", "٣", "²", "", " ", "nan", "+7", "2**70",
                                     str(2**64), str(2**64 - 1), "9" * 5000]))
WORDS = st.sampled_from([*METHODS, *SETTINGS, *PAPER_THRESHOLDS, *FORMATS, *BUDGETS, *ANSWER_METRICS, "none",
                         "auto", "cpu", "cuda", "cuda:0", "cuda:²", "cuda:٣", "mps", "float32", "bfloat16", "FLOAT16", "~",
                         "/", ".", "..", "\x00", "a" * 300, ":", "::", ".x:y", "x:", "=", "monotonic=",
                         "monotonic=0.9", " , ", ",,", "cuda:1", "never", "always", "20GiB", "1.5gb", "cpu=1GiB",
                         "cuda:0=20GiB", "0=512MiB"])
# ``module:Class`` specs import modules; fuzzing them would import arbitrary code, so the list
# parsers get no ':' from the noise (the syntax errors are covered by examples below).
NOISE = st.text(alphabet=st.characters(blacklist_characters=":", blacklist_categories=("Cs",)), max_size=40)
TOKENS = st.one_of(WORDS, NUMBERS, NOISE)
LISTS = st.lists(TOKENS, max_size=5).flatmap(
    lambda parts: st.sampled_from([",", ", ", " ,"]).map(lambda sep: sep.join(parts)))
TEXT = st.one_of(TOKENS, LISTS, st.text(max_size=60))
# Method specs with options: names, brackets, separators and values in any arrangement.
SPEC_TEXT = st.lists(st.one_of(st.sampled_from([*METHODS, "[", "]", ",", "=", "scope", "m", "global", "4", " "]),
                               NUMBERS, NOISE), max_size=8).map("".join)
LIST_TEXT = st.one_of(st.lists(st.one_of(st.sampled_from([*METHODS, *SETTINGS]), NUMBERS, NOISE), max_size=5)
                      .map(",".join), NOISE)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _levels_ok(value: Any) -> bool:
    return (isinstance(value, tuple) and len(value) > 0 and all(isinstance(v, float) and math.isfinite(v)
                                                               for v in value)
            and all(a < b for a, b in itertools.pairwise(value)))


def _device_ok(value: Any) -> bool:
    """One device, or a list of distinct CUDA devices, in canonical form."""
    if re.fullmatch(r"auto|cpu|mps|cuda|cuda:[0-9]+(,cuda:[0-9]+)*", value, re.ASCII) is None:
        return False
    parts = value.split(",")
    return len(set(parts)) == len(parts)


def _directory_ok(value: Any) -> bool:
    return isinstance(value, Path) and value.is_absolute() and (value.is_dir() or not value.exists())


# parser, strategy of its text, what a returned value must satisfy
PARSERS: dict[str, tuple[Callable[[str], Any], st.SearchStrategy[str], Callable[[Any], bool]]] = {
    "budget": (parsing.parse_budget, TEXT, lambda v: v.name in BUDGETS),
    "levels": (parsing.parse_levels, TEXT, _levels_ok),
    "sparsities": (parsing.parse_sparsities, TEXT, lambda v: _levels_ok(v) and all(0 <= x < 1 for x in v)
                   and sum(x > 0 for x in v) >= parsing.MIN_SWEPT_LEVELS),
    "method_names": (options.parse_method_names, LIST_TEXT,
                     lambda v: isinstance(v, tuple) and v and all(spec.name in METHODS for spec in v)),
    "method_specs": (options.parse_method_names, SPEC_TEXT,
                     lambda v: isinstance(v, tuple) and v and all(spec.name in METHODS for spec in v)),
    "setting_names": (options.parse_setting_names, LIST_TEXT,
                      lambda v: isinstance(v, tuple) and v and all(n in SETTINGS for n in v)),
    "metric_names": (options.parse_metric_names, LIST_TEXT,
                     lambda v: isinstance(v, tuple) and set(v) <= set(ANSWER_METRICS) and len(set(v)) == len(v)),
    "positive_int": (parsing.parse_positive_int, TEXT, lambda v: _is_int(v) and v >= 1),
    "seed": (parsing.parse_seed, TEXT, lambda v: _is_int(v) and 0 <= v < SEED_LIMIT),
    "device": (parsing.parse_device, TEXT, lambda v: _device_ok(v)),
    "dtype": (parsing.parse_dtype, TEXT, lambda v: v in ("auto", "float32", "float16", "bfloat16")),
    "device_map": (parsing.parse_device_map, TEXT, lambda v: v in ("auto", "never", "always")),
    "size": (parsing.parse_size, TEXT, lambda v: _is_int(v) and v >= 1),
    "max_memory": (parsing.parse_max_memory, TEXT,
                   lambda v: isinstance(v, dict) and v and all(re.fullmatch(r"cpu|cuda:[0-9]+", k) and _is_int(b)
                                                               and b >= 1 for k, b in v.items())),
    "threshold": (parsing.parse_threshold, TEXT,
                  lambda v: v[0] in PAPER_THRESHOLDS and isinstance(v[1], float) and math.isfinite(v[1])),
    "directory": (parsing.parse_directory, TEXT, _directory_ok),
    "tolerance": (parse_tolerance, TEXT, lambda v: isinstance(v, float) and math.isfinite(v) and v >= 0),
    "formats": (parse_formats, TEXT, lambda v: isinstance(v, tuple) and v and set(v) <= set(FORMATS)),
}


def _check_parser(parse: Callable[[str], Any], valid: Callable[[Any], bool], text: str) -> None:
    try:
        value = parse(text)
    except ConfigError as exc:
        assert repr(text) in str(exc), f"message {str(exc)!r} does not name the text given"
    else:
        assert valid(value), f"{parse.__name__}({text!r}) returned {value!r}"


@pytest.mark.parametrize("name", list(PARSERS))
@FUZZ
@given(data=st.data())
def test_option_parsers_return_a_valid_value_or_name_the_bad_text(name, data):
    parse, strategy, valid = PARSERS[name]
    _check_parser(parse, valid, data.draw(strategy, label="text"))


@pytest.mark.parametrize("text", [":", "::", ":Magnitude", ".x:y", "..junkdna_core:X", "magnitude,:x"])
def test_malformed_module_class_specs_are_config_errors(text):
    _check_parser(options.parse_method_names, lambda v: False, text)


def test_an_existing_file_is_not_a_directory(tmp_path):
    existing = tmp_path / "run.json"
    existing.write_text("{}")
    with pytest.raises(ConfigError, match="not a directory"):
        parsing.parse_directory(str(existing))
    assert parsing.parse_directory(str(tmp_path / "new")) == tmp_path / "new"


# ---------------------------------------------------------------- method parameters

VALUES = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                   st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
                   st.sampled_from([0, 1, 2, 4, 8, 32, 64, 128, 0.0, 0.25, 0.5, 0.75, 0.999, 1.0, "row",
                                    "layer", "global", 10**400]),
                   st.lists(st.integers(), max_size=2))


def _check_configured(method: CompressionMethod, cls: type[CompressionMethod]) -> None:
    assert isinstance(method, cls)
    assert math.isfinite(method.level)
    json.dumps(method.describe(), allow_nan=False)  # every valid configuration is a cache key


@pytest.mark.parametrize("name", METHODS)
@FUZZ
@given(data=st.data())
def test_method_levels_and_options_give_a_method_or_a_config_error(name, data):
    cls = available_methods()[name]
    fields = [f.name for f in dataclasses.fields(cls.params_type) if f.name != cls.level_name]
    other = st.text(max_size=6).filter(lambda key: key != "level")  # `level` is at_level's own argument
    names = data.draw(st.lists(st.one_of(st.sampled_from(fields or ["m"]), other), max_size=3, unique=True),
                      label="options")
    kwargs = {key: data.draw(VALUES, label=key) for key in names}
    level = data.draw(VALUES, label="level")
    try:
        method = cls.at_level(level, **kwargs)
    except ConfigError:
        return
    _check_configured(method, cls)


@pytest.mark.parametrize("name", METHODS)
@FUZZ
@given(data=st.data())
def test_method_parameter_dataclasses_accept_valid_values_only(name, data):
    cls = available_methods()[name]
    kwargs = {f.name: data.draw(VALUES, label=f.name) for f in dataclasses.fields(cls.params_type)}
    try:
        params = cls.params_type(**kwargs)
    except ConfigError:
        return
    _check_configured(cls(params), cls)


EDGE_VALUES = (None, True, math.nan, math.inf, -1, 0, 0.5, 2, 10**400, "4", [2])


def _configure(cls: type[CompressionMethod], field: str, value: Any) -> None:
    """``cls.at_level`` with ``field`` (the level or an option) set to ``value``; a ConfigError is fine."""
    level = cls.default_levels(BUDGETS["smoke"])[-1]
    try:
        method = cls.at_level(value) if field == cls.level_name else cls.at_level(level, **{field: value})
    except ConfigError:
        return
    _check_configured(method, cls)


@pytest.mark.parametrize("name", METHODS)
def test_edge_values_of_every_method_parameter(name):
    cls = available_methods()[name]
    for field in [cls.level_name, *(f.name for f in dataclasses.fields(cls.params_type))]:
        for value in EDGE_VALUES:
            if field == "m" and value == 10**400:
                continue  # test_a_huge_m_is_a_config_error
            _configure(cls, field, value)


@pytest.mark.parametrize("name", [n for n in METHODS if "m" in {f.name for f in dataclasses.fields(
    available_methods()[n].params_type)}])
def test_a_huge_m_is_a_config_error(name):
    _configure(available_methods()[name], "m", 10**400)


# ---------------------------------------------------------------- the command line

SUBCOMMANDS = {
    "baseline": ["--model", "--budget", "--items", "--settings", "--seed", "--device", "--dtype", "--device-map",
                 "--max-memory", "--cache"],
    "leaderboard": ["--out", "--formats"],
    "compare": ["--tolerance", "--strict"],
    "cache": ["--kind", "--cache", "list", "size", "clear"],
}
COMMANDS = ("baseline", "leaderboard", "compare", "cache")


def _arguments(command: str) -> st.SearchStrategy[list[str]]:
    token = st.one_of(st.sampled_from(SUBCOMMANDS[command]), TOKENS, st.sampled_from(["-", "--", "-x", "--nope"]))
    return st.lists(token, max_size=8).map(lambda rest: [command, *rest])


def _parsed_ok(args: Any) -> bool:
    """What argparse handed to a command is validated: a usage error would have been raised otherwise."""
    if args.command == "baseline":
        return (args.budget.name in BUDGETS and _is_int(args.seed) and args.seed >= 0
                and (args.items is None or (_is_int(args.items) and args.items >= 1))
                and (args.settings is None or set(args.settings) <= set(SETTINGS))
                and args.dtype in ("auto", "float32", "float16", "bfloat16") and _device_ok(args.device)
                and (args.cache is None or isinstance(args.cache, Path)))
    if args.command == "compare":
        return isinstance(args.tolerance, float) and math.isfinite(args.tolerance) and args.tolerance >= 0
    return True


@pytest.mark.parametrize("command", COMMANDS)
@FUZZ
@given(data=st.data())
def test_the_command_line_turns_bad_arguments_into_usage_errors(command, data):
    argv = data.draw(_arguments(command), label="argv")
    received = []

    def run(args):
        received.append(args)
        return 0

    stdout, stderr = io.StringIO(), io.StringIO()
    # the commands themselves are stubbed: nothing loads a model, reads or clears a cache, or writes files
    stubs = [mock.patch.object(cli, f"cmd_{name}", run) for name in COMMANDS]
    with contextlib.ExitStack() as stack:
        for stub in stubs:
            stack.enter_context(stub)
        stack.enter_context(contextlib.redirect_stdout(stdout))
        stack.enter_context(contextlib.redirect_stderr(stderr))
        try:
            code = cli.main(argv)
        except SystemExit as exc:
            code = exc.code
            if code == 0:  # --help / --version (or an abbreviation of them)
                assert stdout.getvalue()
                return
            assert code == 2
            assert "usage: junkdna" in stderr.getvalue() and "error:" in stderr.getvalue()
            return
    assert code == 0 and len(received) == 1
    assert _parsed_ok(received[0]), vars(received[0])


# ---------------------------------------------------------------- setting definitions

GOOD_LEVEL = {"name": "options-2", "task": "arc_easy", "difficulty": 1.0, "format": "cloze", "metric": "acc",
              "transform": {"options": 2}, "chance": 0.5, "split": "validation"}
BAD_LEVEL_VALUES = {
    "name": st.one_of(st.just(""), st.just("  "), st.none(), st.integers()),
    "task": st.one_of(st.just(""), st.none(), st.floats()),
    "difficulty": st.one_of(st.just(math.nan), st.just(math.inf), st.just(-math.inf), st.none(), st.text(),
                            st.booleans()),
    "format": st.one_of(st.text().filter(lambda t: t not in get_args(Format)), st.just("generate")),
    "metric": st.one_of(st.text().filter(lambda t: t not in get_args(Metric)), st.sampled_from(ANSWER_METRICS),
                        st.none()),
    "transform": st.one_of(
        st.dictionaries(st.text().filter(lambda k: k not in TRANSFORMS), st.integers(), min_size=1),
        st.fixed_dictionaries({"options": st.one_of(st.integers(max_value=1), st.floats(), st.text(), st.none())}),
        st.fixed_dictionaries({"shots": st.one_of(st.integers(max_value=-1), st.floats(), st.booleans())}),
        st.fixed_dictionaries({"closed_book": st.one_of(st.integers(), st.text(), st.none())}),
        st.fixed_dictionaries({"context_fraction": st.one_of(st.floats().filter(lambda f: not 0 < f <= 1),
                                                             st.text(), st.booleans())}),
        st.lists(st.integers()),
        st.text(),
    ),
    "chance": st.one_of(st.floats().filter(lambda f: not 0 <= f < 1), st.text(min_size=1), st.booleans()),
    "split": st.one_of(st.just(""), st.integers()),
}


def test_a_good_level_is_accepted():
    assert Level(**GOOD_LEVEL).describe()["transform"] == {"options": 2}


@pytest.mark.parametrize("field", list(BAD_LEVEL_VALUES))
@FUZZ
@given(data=st.data())
def test_a_level_with_one_bad_field_is_a_config_error(field, data):
    value = data.draw(BAD_LEVEL_VALUES[field], label=field)
    with pytest.raises(ConfigError, match=re.escape(field)):
        Level(**{**GOOD_LEVEL, field: value})


@FUZZ
@given(difficulty=st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False)))
@example(difficulty=10**400)  # beyond float range: math.isfinite would overflow
def test_a_level_takes_any_finite_difficulty(difficulty):
    assert Level(**{**GOOD_LEVEL, "difficulty": difficulty}).difficulty == difficulty


def _level(name: str, difficulty: float) -> Level:
    return Level(**{**GOOD_LEVEL, "name": name, "difficulty": difficulty})


GOOD_SETTING = {"id": "settingX", "title": "t", "paper": "p", "levels": (_level("a", 1.0), _level("b", 2.0)),
                "difficulty_source": "rank", "paper_choice": "c", "substitution": "s", "version": 1}


@pytest.mark.parametrize("change, message", [
    ({"levels": (_level("a", 1.0), _level("a", 2.0))}, "repeat"),
    ({"levels": (_level("a", 1.0),)}, "at least 2"),
    ({"levels": ()}, "at least 2"),
    ({"levels": [_level("a", 1.0), _level("b", 2.0)]}, "tuple of Level"),
    ({"levels": (_level("a", 1.0), "b")}, "tuple of Level"),
    ({"levels": (_level("a", 2.0), _level("b", 1.0))}, "must increase"),
    ({"levels": (_level("a", 1.0), _level("b", 1.0))}, "must increase"),
    ({"difficulty_source": "vibes"}, "difficulty_source"),
    ({"learning": "reinforcement"}, "learning"),
    ({"version": 0}, "version"),
    ({"version": "1"}, "version"),
    ({"version": True}, "version"),
    ({"id": ""}, "setting id"),
])
def test_a_bad_setting_is_a_config_error(change, message):
    Setting(**GOOD_SETTING)
    with pytest.raises(ConfigError, match=message):
        Setting(**{**GOOD_SETTING, **change})


def test_human_gap_levels_need_no_difficulty_order():
    levels = (_level("a", 0.0), _level("b", 0.0))
    assert Setting(**{**GOOD_SETTING, "levels": levels, "difficulty_source": "human_gap"}).levels == levels


def test_the_shipped_settings_pass_their_own_validation():
    for setting in SETTINGS.values():
        assert Setting(**{f.name: getattr(setting, f.name) for f in dataclasses.fields(Setting)}) == setting
