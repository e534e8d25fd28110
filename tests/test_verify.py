"""Verified levels: every compression is measured against what its method declared, before anything is scored."""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest
import torch
from tenpercent_plugin import TenPercent

from junkdna_core import LayerResult, LayerStats, MethodParams, PruningMethod, check_fraction, get_method
from junkdna_core.cli import main
from junkdna_core.compress.base import declared_statistics
from junkdna_core.compress.calibration import catch_block_inputs, collect_stats, run_block
from junkdna_core.compress.lowrank import LowRank
from junkdna_core.compress.quantizer import QuantizationMethod
from junkdna_core.compress.runner import compress_model
from junkdna_core.compress.targets import find_blocks, find_targets
from junkdna_core.compress.verify import max_distinct_per_group, numerical_rank, sparsity_problem
from junkdna_core.config.errors import ConfigError, MethodError

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@dataclass(frozen=True)
class SparsityParams(MethodParams):
    sparsity: float

    def __post_init__(self) -> None:
        check_fraction("sparsity", self.sparsity)




class WrongShape(PruningMethod):
    name: ClassVar[str] = "wrongshape"
    version: ClassVar[str] = "1"
    params_type: ClassVar[type[MethodParams]] = SparsityParams

    def compress(self, weights, stats):
        return {n: LayerResult(mask=torch.ones(w.shape[0], w.shape[1] + 1, dtype=torch.bool)) for n, w in weights.items()}


class Crashes(PruningMethod):
    name: ClassVar[str] = "crashes"
    version: ClassVar[str] = "1"
    params_type: ClassVar[type[MethodParams]] = SparsityParams
    needs_calibration: ClassVar[bool] = True

    def compress(self, weights, stats):
        raise IndexError("index 7 is out of bounds")


class ReadsGramUndeclared(PruningMethod):
    """Declares only input norms but reads the Gram matrix."""

    name: ClassVar[str] = "readsgram"
    version: ClassVar[str] = "1"
    params_type: ClassVar[type[MethodParams]] = SparsityParams
    needs_calibration: ClassVar[bool] = True
    statistics: ClassVar[tuple[str, ...]] = ("input_norms",)

    def compress(self, weights, stats):
        return {n: LayerResult(mask=torch.ones_like(w, dtype=torch.bool) | (stats[n].gram.sum() > 0))
                for n, w in weights.items()}


class NormsUndeclared(PruningMethod):
    """A plugin from before ``statistics`` existed: reads input_norms, declares nothing (gets the Gram)."""

    name: ClassVar[str] = "normsundeclared"
    version: ClassVar[str] = "1"
    params_type: ClassVar[type[MethodParams]] = SparsityParams
    needs_calibration: ClassVar[bool] = True
    sparsity_unit: ClassVar[str] = "row"

    def compress(self, weights, stats):
        wanda = get_method("wanda").at_level(self.params.sparsity)
        return {n: LayerResult(mask=wanda._mask(w, stats[n].input_norms)) for n, w in weights.items()}


@dataclass(frozen=True)
class BitsParams(MethodParams):
    bits: int
    group_size: int | None = 16


class NoRounding(QuantizationMethod):
    """Claims to quantize but returns the weights unchanged."""

    name: ClassVar[str] = "norounding"
    version: ClassVar[str] = "1"
    params_type: ClassVar[type[MethodParams]] = BitsParams

    def compress(self, weights, stats):
        return {n: LayerResult(weight=w.clone()) for n, w in weights.items()}


class FullRank(LowRank):
    name: ClassVar[str] = "fullrank"

    def compress(self, weights, stats):
        return {n: LayerResult(weight=w.clone()) for n, w in weights.items()}


def test_a_method_that_ignores_its_sparsity_fails_naming_method_level_expected_and_measured(tiny_llama):
    with pytest.raises(MethodError) as info:
        compress_model(tiny_llama, TenPercent.at_level(0.5), progress=False)
    message = str(info.value)
    assert message.startswith("method 'tenpercent' at sparsity=0.5 missed its level")
    assert "model.layers.0.self_attn.q_proj 102/1024" in message  # measured: 10% of a 32 x 32 weight
    assert "expected exactly round(0.5 * n) pruned" in message and "per layer model.layers.0.self_attn.q_proj 512" in message


def test_a_wrong_shaped_mask_is_a_method_error_naming_the_method_and_layer(tiny_llama):
    before = copy.deepcopy(tiny_llama.state_dict())
    with pytest.raises(MethodError, match=r"method 'wrongshape' at sparsity=0.5 returned a mask .*expected a bool "
                                          r"tensor of shape \(32, 32\) for layer model.layers.0.self_attn.q_proj"):
        compress_model(tiny_llama, WrongShape.at_level(0.5), progress=False)
    assert all(torch.equal(before[k], v) for k, v in tiny_llama.state_dict().items())  # nothing was enforced


def test_a_crash_inside_a_method_is_a_method_error_naming_it(tiny_llama, calibration_ids):
    with pytest.raises(MethodError, match=r"method 'crashes' at sparsity=0.3 raised IndexError: index 7") as info:
        compress_model(tiny_llama, Crashes.at_level(0.3), calibration=calibration_ids, progress=False)
    assert isinstance(info.value.__cause__, IndexError)


def test_reading_a_gram_that_was_not_declared_says_what_to_declare(tiny_llama, calibration_ids):
    with pytest.raises(MethodError, match=r"hold no Gram matrix.*does not list 'gram'"):
        compress_model(tiny_llama, ReadsGramUndeclared.at_level(0.5), calibration=calibration_ids, progress=False)


def test_an_undeclared_plugin_still_reads_input_norms_and_matches_wanda(tiny_llama, calibration_ids):
    wanda_model = copy.deepcopy(tiny_llama)
    ours = compress_model(tiny_llama, NormsUndeclared.at_level(0.5), calibration=calibration_ids, progress=False)
    class BlockPassWanda(get_method("wanda")):  # the plugin's scheme: every linear on the block's inputs
        calibration_pass = "block"

    wanda = compress_model(wanda_model, BlockPassWanda.at_level(0.5), calibration=calibration_ids, progress=False)
    assert ours.masks.keys() == wanda.masks.keys()
    # norms from the Gram diagonal and from sums of squares agree to rounding: almost every mask entry is equal
    same = sum(int((ours.masks[n] == wanda.masks[n]).sum()) for n in ours.masks)
    assert same / sum(m.numel() for m in ours.masks.values()) > 0.999
    assert ours.measured == wanda.measured == {"unit": "row", "sparsity": 0.5}


def test_quantization_with_more_values_per_group_than_its_bits_allow_fails(tiny_llama):
    # unrounded weights: 16 distinct values in every group of 16 columns, which 3 bits cannot hold
    with pytest.raises(MethodError, match=r"method 'norounding' at bits=3.0 missed its level: expected at most "
                                          r"2\*\*3 = 8 distinct values per group of 16 columns; measured 16 in "
                                          r"model.layers.0.self_attn.q_proj"):
        compress_model(copy.deepcopy(tiny_llama), NoRounding.at_level(3), progress=False)
    report = compress_model(tiny_llama, NoRounding.at_level(4), progress=False)  # 16 values fit 4 bits
    assert report.measured == {"bits": 4, "group_size": 16, "max_distinct_per_group": 16}


def test_low_rank_that_keeps_full_rank_fails(tiny_llama):
    with pytest.raises(MethodError, match=r"method 'fullrank' at rank_fraction=0.25 missed its level: expected rank "
                                          r"at most 8 for model.layers.0.self_attn.q_proj; measured rank 32"):
        compress_model(tiny_llama, FullRank.at_level(0.25), progress=False)


@pytest.mark.parametrize(("name", "level", "options", "measured"), [
    ("magnitude", 0.5, {}, {"unit": "layer", "sparsity": 0.5}),
    ("magnitude", 0.3, {"scope": "global"}, {"unit": "group"}),
    ("random", 0.5, {}, {"unit": "layer", "sparsity": 0.5}),
    ("nm", 0.5, {"m": 4}, {"unit": "layer", "sparsity": 0.5}),
    ("wanda", 0.5, {}, {"unit": "row", "sparsity": 0.5}),
    ("sparsegpt", 0.5, {}, {"unit": "layer", "sparsity": 0.5}),
    ("rtn", 4, {"group_size": 16}, {"bits": 4, "group_size": 16}),
    ("gptq", 3, {"group_size": 32}, {"bits": 3, "group_size": 32}),
    ("lowrank", 0.25, {}, {"rank_fraction": 0.25}),
])
def test_every_builtin_method_reports_what_it_reached(tiny_llama, calibration_ids, name, level, options, measured):
    report = compress_model(tiny_llama, get_method(name).at_level(level, **options), calibration=calibration_ids,
                            progress=False)
    assert measured.items() <= report.measured.items()
    json.dumps(report.measured)  # JSON-ready, as stored in the build report
    if "max_distinct_per_group" in report.measured:
        assert 1 < report.measured["max_distinct_per_group"] <= 2**level


def test_sparsity_problem_counts_ties_and_units():
    mask = torch.ones(2, 4, dtype=torch.bool)
    mask[0, :2] = False
    assert sparsity_problem({"a": mask}, 0.25, units=("layer",)) is None  # 2 of 8 pruned
    assert "per row a 1 of 4" in sparsity_problem({"a": mask}, 0.25, units=("row",))


def test_distinct_values_and_rank_measures():
    w = torch.tensor([[1.0, 1.0, 2.0, 3.0], [0.0, -0.0, 5.0, 5.0]])
    assert max_distinct_per_group(w, 2) == 2 and max_distinct_per_group(w, None) == 3
    low = torch.randn(32, 3) @ torch.randn(3, 16)
    assert numerical_rank(low) == 3 and numerical_rank(torch.randn(32, 16)) == 16


def test_layers_reading_one_input_share_one_statistics_object(tiny_llama, calibration_ids):
    _, blocks = find_blocks(tiny_llama)
    group = [t for t in find_targets(tiny_llama) if t.block == 0]
    batches = catch_block_inputs(tiny_llama, blocks[0], calibration_ids, 4)
    stats = collect_stats(blocks[0], group, batches)
    short = {name.rsplit(".", 1)[-1]: s for name, s in stats.items()}
    assert short["q_proj"] is short["k_proj"] is short["v_proj"]
    assert short["gate_proj"] is short["up_proj"]
    assert short["o_proj"] is not short["q_proj"] and short["down_proj"] is not short["gate_proj"]
    # the shared Gram is the one each layer would get on its own
    alone = collect_stats(blocks[0], [t for t in group if t.name.endswith("k_proj")], batches)
    (k_alone,) = alone.values()
    assert torch.equal(k_alone.gram, short["k_proj"].gram) and k_alone.tokens == short["k_proj"].tokens
    norms = collect_stats(blocks[0], group, batches, frozenset({"input_norms"}))
    for name, s in norms.items():
        assert not s.has_gram
        torch.testing.assert_close(s.input_norms, stats[name].input_norms, rtol=1e-5, atol=1e-6)


def test_layer_stats_is_read_only_and_needs_a_tensor():
    stats = LayerStats(gram=torch.eye(2), tokens=3)
    with pytest.raises(AttributeError, match="read-only"):
        stats.tokens = 4
    with pytest.raises(ValueError, match="needs a gram or squares"):
        LayerStats(tokens=3)


def test_a_study_records_what_each_configuration_reached(tmp_path):
    from junkdna_core.data.settings import get_setting
    from junkdna_core.models.loading import load_model
    from junkdna_core.storage.cache import ArtifactCache
    from junkdna_core.study.sweep import run_study

    cache = ArtifactCache(tmp_path)
    dense = load_model("random:tiny-llama", device="cpu", cache=cache)
    methods = [get_method("wanda").at_level(s) for s in (0.0, 0.5)]
    study = run_study(dense, get_setting("setting2"), methods, cache=cache, items=4, progress=False)
    assert [c["measured"] for c in study.configurations] == [{"dense": True}, {"unit": "row", "sparsity": 0.5}]
    report = json.loads(next(tmp_path.rglob("report.json")).read_text())
    assert report["measured"] == {"unit": "row", "sparsity": 0.5}




def test_a_plugin_that_ignores_its_sparsity_fails_the_benchmark_naming_it_and_is_absent_from_the_leaderboard(
    pytester: pytest.Pytester, tmp_path, monkeypatch
):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    shutil.copy(Path(__file__).with_name("tenpercent_plugin.py"), plugins)
    monkeypatch.setenv("PYTHONPATH", f"{plugins}:{Path(__file__).resolve().parents[1]}")
    results = tmp_path / "results"
    args = [str(BENCHMARKS), "-k", "setting2 and monotonic", "--jd-methods", "magnitude,tenpercent_plugin:TenPercent",
            "--jd-model", "random:tiny-llama", "--jd-sparsities", "0.2,0.4,0.6", "--jd-items", "4",
            "--jd-cache", str(tmp_path / "cache"), "--jd-results", str(results), "-p", "no:cacheprovider"]
    run = pytester.runpytest_subprocess(*args)
    outcomes = run.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == 2, run.stdout.str()  # one test per method
    output = run.stdout.str()
    assert "MethodError: method 'tenpercent' at sparsity=0.2 missed its level" in output
    claims = [c for f in results.glob("run-*.json") for c in json.loads(f.read_text())["claims"]]
    assert {c["method"] for c in claims} == {"magnitude"}
    # nothing compressed by it was kept in the cache
    reports = [json.loads(p.read_text()) for p in (tmp_path / "cache").glob("compressed/*/*/report.json")]
    assert reports and not [r for r in reports if "tenpercent" in json.dumps(r)]
    # the leaderboard of the run ranks magnitude; the plugin is in no claim and no ranking, only among the
    # compressions that failed, with the level it missed
    out = tmp_path / "board"
    assert main(["leaderboard", str(results), "--out", str(out), "--formats", "md,json"]) == 0
    board = json.loads((out / "leaderboard.json").read_text())
    assert {c["method"] for c in board["claims"]} == {"magnitude"}
    failed = board.pop("failed_compressions")
    assert [f["method"] for f in failed] == ["tenpercent[sparsity=0.2]"] and "missed its level" in failed[0]["error"]
    assert "tenpercent" not in json.dumps(board)
    markdown = (out / "leaderboard.md").read_text()
    assert "tenpercent" not in markdown.split("## Compressions that failed")[0]


@pytest.mark.parametrize("bad", ["gram", ("gram", "hessian"), ()])
def test_an_invalid_statistics_declaration_is_a_config_error(bad):
    class Bad(TenPercent):
        statistics = bad

    with pytest.raises(ConfigError, match=r"method 'tenpercent' declares statistics=.*expected a non-empty tuple"):
        declared_statistics(Bad)


def test_a_sequential_pass_compresses_each_input_group_on_the_outputs_of_the_compressed_ones(
    tiny_llama, calibration_ids
):
    seen: dict[str, torch.Tensor] = {}
    calls: list[list[str]] = []

    class Spy(get_method("sparsegpt")):
        def compress(self, weights, stats):
            calls.append([n.rsplit(".", 1)[-1] for n in weights])
            seen.update({n: stats[n].gram.clone() for n in weights})
            return super().compress(weights, stats)

    report = compress_model(tiny_llama, Spy.at_level(0.5), calibration=calibration_ids, progress=False)
    assert calls == [["q_proj", "k_proj", "v_proj"], ["o_proj"], ["gate_proj", "up_proj"], ["down_proj"]] * 2
    assert [len(g) for g in report.groups] == [3, 1, 2, 1] * 2
    # what each group saw is what the finished (compressed) model feeds it
    _, blocks = find_blocks(tiny_llama)
    batch = catch_block_inputs(tiny_llama, blocks[0], calibration_ids, calibration_ids.shape[0])
    for index, block in enumerate(blocks):
        after = collect_stats(block, [t for t in find_targets(tiny_llama) if t.block == index], batch)
        for name, stats in after.items():
            torch.testing.assert_close(stats.gram, seen[name], rtol=1e-4, atol=1e-4)
        batch = run_block(block, batch)
