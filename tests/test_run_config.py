"""What a run is configured with: method specs and their options, model lists, seeds, the group order."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from junkdna_core.compress.registry import check_method_name, get_method
from junkdna_core.compress.variants import MethodVariant, check_distinct, resolve_variant
from junkdna_core.config.budgets import get_budget
from junkdna_core.config.checks import offset_seeds
from junkdna_core.config.errors import CacheError, CompressionError, ConfigError, MethodError
from junkdna_core.config.method_specs import MethodSpec, parse_method_specs
from junkdna_core.models.specs import model_labels
from junkdna_core.options import parse_model_specs
from junkdna_core.pytest_plugin.ids import group_name, method_id
from junkdna_core.pytest_plugin.session import JunkdnaSession
from junkdna_core.pytest_plugin.timing import (
    base_nodeid,
    durations_file,
    merged_durations,
    order_by_duration,
    read_durations,
)
from junkdna_core.study.failures import FailedCompressions, compression_error, naming_failures


def test_method_specs_split_at_commas_outside_brackets():
    specs = parse_method_specs(" magnitude[scope=global], nm[m=4],wanda , gptq[group_size=128, symmetric=true]")
    assert specs == (MethodSpec("magnitude", (("scope", "global"),)), MethodSpec("nm", (("m", "4"),)),
                     MethodSpec("wanda"), MethodSpec("gptq", (("group_size", "128"), ("symmetric", "true"))))
    assert [s.text for s in specs] == ["magnitude[scope=global]", "nm[m=4]", "wanda",
                                       "gptq[group_size=128,symmetric=true]"]


@pytest.mark.parametrize(("text", "message"), [
    ("magnitude[scope=global", "unclosed '['"),
    ("magnitude]", "unmatched ']'"),
    ("nm[m=[4]]", "nested '['"),
    ("nm[m=4]x", "must end with its ']'"),
    ("nm[m]", "'m' in method spec 'nm[m]' is not KEY=VALUE"),
    ("nm[4=m]", "is not KEY=VALUE"),
    ("nm[m=4,m=8]", "sets option 'm' twice"),
    ("[m=4]", "does not start with a method name"),
    ("nm[m=4],nm[m=4]", "names 'nm[m=4]' twice"),
    (" , ", "expected a comma-separated list of methods"),
])
def test_bad_method_spec_syntax_says_what_is_wrong(text, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_method_specs(text)


def test_option_values_are_typed_by_the_parameter_dataclass():
    variant = resolve_variant("gptq[symmetric=yes,group_size=none,percdamp=0.05]")
    assert variant.options == (("group_size", None), ("symmetric", True), ("percdamp", 0.05))  # field order
    assert variant.label == "gptq[group_size=none,symmetric=true,percdamp=0.05]"
    assert resolve_variant(variant.spec) == variant
    configured = variant.at_level(4)
    assert (configured.params.bits, configured.params.group_size, configured.params.symmetric) == (4, None, True)
    assert resolve_variant("magnitude[scope=global]").at_level(0.5).params.scope == "global"


@pytest.mark.parametrize(("spec", "fragments"), [
    ("magnitude[scope=blob]", ["magnitude[scope=blob]", "takes 'row' | 'layer' | 'global'", "'blob'"]),
    ("magnitude[scop=global]", ["has no option 'scop'", "its options are scope: 'row' | 'layer' | 'global'"]),
    ("gptq[blocksize=1.5]", ["blocksize", "takes int", "'1.5'"]),
    ("gptq[symmetric=maybe]", ["symmetric", "takes bool", "'maybe'"]),
    ("gptq[zz=1]", ["group_size: int | None", "symmetric: bool", "percdamp: float", "blocksize: int"]),
    ("magnitude[sparsity=0.5]", ["sparsity is the level magnitude is swept over", "--jd-sparsities"]),
    ("rtn[bits=4]", ["bits is the level rtn is swept over"]),
])
def test_a_bad_option_names_the_spec_and_lists_the_allowed_options_and_types(spec, fragments):
    with pytest.raises(ConfigError) as error:
        resolve_variant(spec)
    for fragment in fragments:
        assert fragment in str(error.value)


def test_option_values_the_dataclass_rejects_fail_at_the_level_that_cannot_be_reached():
    variant = resolve_variant("nm[m=3]")
    with pytest.raises(ConfigError, match=r"nm\[m=3\]: at sparsity 0.25: .*M=3"):
        variant.check_levels(get_budget("smoke").nm_sparsities)
    resolve_variant("nm[m=4]").check_levels(get_budget("smoke").nm_sparsities)


def test_the_same_method_twice_needs_different_options():
    check_distinct([resolve_variant("magnitude"), resolve_variant("magnitude[scope=global]"),
                    resolve_variant("magnitude[scope=row]")])
    with pytest.raises(ConfigError, match="configure the same method"):
        check_distinct([resolve_variant("magnitude"), resolve_variant("magnitude[scope=layer]")])
    copy = type("Copy", (get_method("magnitude"),), {})  # another class that calls itself magnitude
    with pytest.raises(ConfigError, match="both called 'magnitude'"):
        check_distinct([resolve_variant("magnitude"), MethodVariant(copy, "plugin.module:Copy")])


def test_the_run_seed_reaches_a_seed_parameter_unless_set():
    assert resolve_variant("random").at_level(0.5, run_seed=7).params.seed == 7
    assert resolve_variant("random[seed=3]").at_level(0.5, run_seed=7).params.seed == 3
    assert resolve_variant("random").at_level(0.5, run_seed=7, seed=1).params.seed == 1  # set in code
    assert resolve_variant("magnitude").at_level(0.5, run_seed=7).params.as_dict() == {"sparsity": 0.5,
                                                                                       "scope": "layer"}
    with pytest.raises(ConfigError, match="set by the method spec and again in code"):
        resolve_variant("random[seed=3]").at_level(0.5, seed=3)


def test_ids_and_groups_are_selectable_with_k():
    assert method_id("magnitude[scope=global]") == "magnitude[scope:global]"
    assert method_id("gptq[group_size=128,symmetric=true]") == "gptq[group_size:128+symmetric:true]"
    assert group_name("finetune", "setting1", "nm[m=4]") == "finetune-setting1-nm(m:4)"
    assert "]" not in group_name("nm[m=4]") and "@" not in group_name("x@y")


def test_check_method_name_needs_no_import(tmp_path):
    check_method_name("magnitude")
    check_method_name("junkdna_core.compress.magnitude:Magnitude")
    for bad, message in (("magnitdue", "Did you mean magnitude"), ("no_such_module_x:Y", "no module named"),
                         (".x:Y", "expected package.module:ClassName")):
        with pytest.raises(ConfigError, match=message):
            check_method_name(bad)


def test_model_lists_are_checked_and_labels_are_distinct(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name / "llama").mkdir(parents=True)
    a, b = str(tmp_path / "a" / "llama"), str(tmp_path / "b" / "llama")
    assert parse_model_specs(f"smollm2, random:tiny-llama,{a},{b}") == ("smollm2", "random:tiny-llama", a, b)
    labels = model_labels(("smollm2", "random:tiny-llama", a, b, "org1/llama", "org2/llama"))
    assert labels[:2] == ("smollm2", "random-tiny-llama")
    assert labels[2].endswith("a-llama") and labels[3].endswith("b-llama")
    assert labels[4:] == ("org1-llama", "org2-llama")
    assert len(set(model_labels(("x/m", "x-m")))) == 2
    with pytest.raises(ConfigError, match=r"in 'smollm2,\./missing': model spec '\./missing' is not a model folder; a spec is 'smollm2'"):
        parse_model_specs("smollm2,./missing")
    with pytest.raises(ConfigError, match="names 'smollm2' twice"):
        parse_model_specs("smollm2,smollm2")
    with pytest.raises(ConfigError, match="twice"):
        parse_model_specs(f"{a},{a}/")


def test_fine_tuning_seeds_follow_the_run_seed_and_items_size_its_test_sets():
    budget = get_budget("smoke")
    assert budget.finetune.seeded(0) == budget.finetune
    assert budget.finetune.seeded(10).seeds == (10, 11)
    assert budget.finetune.seeded(2**32 - 1).seeds == (2**32 - 1, 0)
    with pytest.raises(ConfigError, match="< 2\\*\\*32"):
        budget.finetune.seeded(2**32)
    assert budget.overridden(items=9).finetune.test_items == 9
    assert budget.overridden(items=None) is budget


def test_items_and_random_seeds_override_the_budget_together_and_mask_seeds_follow_the_run_seed():
    budget = get_budget("full").overridden(items=9, random_seeds=2)
    assert (budget.items, budget.finetune.test_items, budget.random_seeds) == (9, 9, 2)
    assert get_budget("full").overridden(random_seeds=5).finetune == get_budget("full").finetune
    assert offset_seeds(7, range(budget.random_seeds)) == (7, 8)
    assert JunkdnaSession.random_mask_seeds(SimpleNamespace(seed=2**32 - 1, budget=budget)) == (2**32 - 1, 0)
    assert offset_seeds(2**32 - 1, range(3)) == (2**32 - 1, 0, 1)  # one limit: 2**32, as fine-tuning seeds wrap
    with pytest.raises(ConfigError, match="< 2\\*\\*32"):
        offset_seeds(2**32, range(1))


def _item(nodeid, group=None):
    marks = [SimpleNamespace(args=(group,), kwargs={})] if group else []
    return SimpleNamespace(nodeid=nodeid, iter_markers=lambda name, marks=marks: iter(marks))


def test_groups_and_their_tests_are_ordered_longest_first_by_stored_durations_else_by_size():
    items = [_item("t::a[1]", "g1"), _item("t::b", None), _item("t::a[2]", "g2"), _item("t::a[3]", "g2"),
             _item("t::a[4]", "g1"), _item("t::a[5]", "g3")]
    by_size = [i.nodeid for i in order_by_duration(items, {})]
    assert by_size == ["t::a[1]", "t::a[4]", "t::a[2]", "t::a[3]", "t::b", "t::a[5]"]  # ties keep collection order
    timed = [i.nodeid for i in order_by_duration(items, {"t::a[5]": 100.0, "t::a[1]": 1.0, "t::a[4]": 1.0,
                                                          "t::a[2]": 5.0, "t::a[3]": 7.0})]
    # t::b counts as the median, 5; within a group the longest test goes first, ties keep collection order
    assert timed == ["t::a[5]", "t::a[3]", "t::a[2]", "t::b", "t::a[1]", "t::a[4]"]
    assert base_nodeid("t::x[a]@g1") == "t::x[a]" and base_nodeid("t::x[a@b]") == "t::x[a@b]"
    assert merged_durations({"smoke": {"x": 1.0, "y": 2.0}}, "smoke", {"y": 3.0}) == {"smoke": {"x": 1.0, "y": 3.0}}


def test_a_durations_file_is_read_as_pytest_split_writes_it(tmp_path):
    assert durations_file("", "smoke", tmp_path) is None
    assert durations_file("benchmarks/durations/{budget}.json", "full", tmp_path) == \
        tmp_path / "benchmarks/durations/full.json"
    assert durations_file("/abs/{budget}.json", "smoke", tmp_path) == Path("/abs/smoke.json")
    assert read_durations(tmp_path / "missing.json") == {}
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"benchmarks/test_monotonic.py::test_monotonic[setting2-magnitude-smollm2]": 57.5}))
    assert read_durations(good) == {"benchmarks/test_monotonic.py::test_monotonic[setting2-magnitude-smollm2]": 57.5}
    for text in ("{not json", json.dumps(["a", 1]), json.dumps({"t": -1}), json.dumps({"t": "5"}),
                 json.dumps({"t": True})):
        bad = tmp_path / "bad.json"
        bad.write_text(text)
        with pytest.raises(ConfigError, match=f"durations file {bad}.*fix it or delete it"):
            read_durations(bad)


def test_a_failed_compression_is_remembered_and_named_once():
    failures = FailedCompressions()
    method = resolve_variant("magnitude").at_level(0.5)
    with pytest.raises(CompressionError) as first, failures.remembering("fp", [method]):
        raise compression_error("tiny", "fp", method, RuntimeError("mask of the wrong shape"))
    assert str(first.value).startswith("compression of magnitude at sparsity 0.5 (Magnitude(sparsity=0.5")
    assert str(first.value).endswith("on tiny failed: RuntimeError: mask of the wrong shape")
    ran = []
    with pytest.raises(CompressionError) as again, failures.remembering("fp", [method]):
        ran.append(True)
    assert not ran and again.value.earlier and again.value.key == first.value.key
    assert str(again.value) == ("compression of magnitude at sparsity 0.5 failed earlier in this session: "
                                "RuntimeError: mask of the wrong shape")
    with failures.remembering("other-model", [method]):
        ran.append(True)
    assert ran == [True]


def test_a_missed_level_stays_a_method_error_named_and_remembered_once():
    failures = FailedCompressions()
    method = resolve_variant("magnitude").at_level(0.5)
    missed = "method 'magnitude' at sparsity=0.5 missed its level: expected 0.5 of each row, measured 0.1"
    with (pytest.raises(MethodError) as first, failures.remembering("fp", [method]),
          naming_failures("tiny", "fp", method)):
        raise MethodError(missed)
    assert isinstance(first.value, CompressionError) and first.value.key is not None
    assert str(first.value).endswith(f"on tiny failed: MethodError: {missed}")
    with pytest.raises(MethodError) as again, failures.remembering("fp", [method]):
        pass
    assert again.value.earlier and str(again.value).endswith(f"failed earlier in this session: MethodError: {missed}")
    with pytest.raises(CacheError, match="disk full"), naming_failures("tiny", "fp", method):
        raise CacheError("disk full")  # the storage's fault: not named as the method's
