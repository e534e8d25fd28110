"""Runs of the pytest plugin as a user starts them: several models and method variants in one run, where records
go, what a failing compression reports, seeds, and the end-of-run time summary."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from junkdna_core.config.budgets import get_budget
from junkdna_core.config.errors import ConfigError
from junkdna_core.results.leaderboard import build_leaderboard
from junkdna_core.results.records import read_runs
from junkdna_core.study import transfer

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
FAST = ["--jd-sparsities", "0.2,0.4,0.6", "--jd-items", "4", "-p", "no:randomly"]


@pytest.fixture
def second_model(tmp_path) -> str:
    """``random:<config.json>``: a tiny Llama other than ``random:tiny-llama`` (wider), loaded as fast."""
    from junkdna_core.models.synthetic import tiny_llama_config

    folder = tmp_path / "wide-llama"
    folder.mkdir()
    tiny_llama_config(49152, hidden_size=48, intermediate_size=96).to_json_file(folder / "config.json")
    return f"random:{folder / 'config.json'}"


def test_two_models_and_two_variants_in_one_run_under_xdist(pytester: pytest.Pytester, tmp_path, second_model):
    args = [str(BENCHMARKS / "test_monotonic.py"), "-k", "setting2", "--jd-model", f"random:tiny-llama,{second_model}",
            "--jd-methods", "magnitude,magnitude[scope=global]", "--jd-cache", str(tmp_path / "cache"),
            "--jd-results", str(tmp_path / "results"), "-n", "2", "--dist", "loadgroup", "-v",
            "-o", f"cache_dir={tmp_path / 'pytest-cache'}", *FAST]  # durations stored apart from the clone's
    result = pytester.runpytest_subprocess(*args)
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == 4 and "error" not in outcomes, result.stdout.str()
    ids = {f"setting2-{m}-{model}" for m in ("magnitude", "magnitude[scope:global]")
           for model in ("random-tiny-llama", "random-wide-llama")}
    assert {i for i in ids if f"test_monotonic[{i}]" in result.stdout.str()} == ids
    body = json.loads(next((tmp_path / "results").glob("run-*.json")).read_text())
    assert body["options"]["models"] == ["random:tiny-llama", second_model]
    assert body["options"]["model_labels"] == ["random-tiny-llama", "random-wide-llama"]
    assert body["options"]["methods"] == ["magnitude", "magnitude[scope=global]"]
    seen = {(r["model"], r["method"]) for r in body["claims"]}
    pairs = {(model, m) for model in ("random-tiny-llama", "random-wide-llama")
             for m in ("magnitude", "magnitude[scope=global]")}
    assert seen == pairs
    scopes = {r["method"]: r["provenance"]["studies"][0]["configurations"][1]["params"]["scope"]
              for r in body["claims"]}
    assert scopes == {"magnitude": "layer", "magnitude[scope=global]": "global"}
    # one record holds every model and variant, each with its family and measured levels: the leaderboard
    # shows them all and leaves none out for want of a verified level
    assert {r["provenance"]["studies"][0]["family"] for r in body["claims"]} == {"pruning"}
    board = build_leaderboard(read_runs([tmp_path / "results"]))
    assert {(c.model, c.method) for c in board.claims} == pairs and not board.skipped

    # The summary names each (method, model) group and the worker that ran it; durations are stored for the next
    # run, which orders its groups by them.
    summary = result.stdout.str().split("junkdna: where the time went")[1].splitlines()
    assert "groups ordered longest first by " in summary[1] and "(0 of 4 tests known)" in summary[1]
    groups = {line.split()[-1]: line.split()[2] for line in summary[3:7]}
    assert set(groups) == {"magnitude_random-tiny-llama", "magnitude_random-wide-llama",
                           "magnitude(scope:global)_random-tiny-llama", "magnitude(scope:global)_random-wide-llama"}
    assert set(groups.values()) <= {"gw0", "gw1"}
    again = pytester.runpytest_subprocess(*args)
    assert "(4 of 4 tests known)" in again.stdout.str()


def test_a_first_run_orders_its_groups_by_the_durations_file_of_its_budget(pytester: pytest.Pytester):
    pytester.makepyfile(test_groups="""
        import pytest

        @pytest.mark.xdist_group("short")
        def test_short():
            pass

        @pytest.mark.xdist_group("long")
        def test_long():
            pass
    """)
    pytester.makeini("[pytest]\njd_durations = durations/{budget}.json\n")
    (pytester.path / "durations").mkdir()
    (pytester.path / "durations" / "smoke.json").write_text(json.dumps({"test_groups.py::test_long": 9.0,
                                                                       "test_groups.py::test_short": 1.0}))
    args = ("-n", "1", "--dist", "loadgroup", "-v", "-p", "no:randomly")
    first = pytester.runpytest_subprocess(*args)
    first.assert_outcomes(passed=2)
    assert f"longest first by the durations in {pytester.path / 'durations' / 'smoke.json'} (2 of 2 tests known)" \
        in first.stdout.str()
    ran = [line for line in first.stdout.lines if "PASSED" in line]
    assert "test_long" in ran[0] and "test_short" in ran[1]  # the longer group first, against collection order
    again = pytester.runpytest_subprocess(*args, "--jd-store-durations")  # now pytest's cache knows them
    assert "longest first by earlier runs' durations (2 of 2 tests known)" in again.stdout.str()
    stored = json.loads((pytester.path / "durations" / "smoke.json").read_text())
    assert set(stored) == {"test_groups.py::test_long", "test_groups.py::test_short"}
    assert all(seconds < 9.0 for seconds in stored.values())  # this run's measured durations replaced the file's
    (pytester.path / "durations" / "smoke.json").write_text("{not json")
    pytester.makeini("[pytest]\n")
    pytester.runpytest_subprocess("--jd-store-durations").stderr.fnmatch_lines(
        ["*--jd-store-durations writes the file the jd_durations ini option names; set it*"])
    pytester.makeini("[pytest]\njd_durations = durations/{budget}.json\n")
    pytester.runpytest_subprocess("-p", "no:cacheprovider").stderr.fnmatch_lines(
        ["*jd_durations: durations file *smoke.json: not readable JSON*fix it or delete it*"])


def test_a_bad_model_in_the_list_is_a_usage_error_naming_it(pytester: pytest.Pytester):
    pytester.makepyfile("def test_never_runs():\n    raise AssertionError('ran')\n")
    result = pytester.runpytest_subprocess("--jd-model", "smollm2,./no-such-folder")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([("*--jd-model*in 'smollm2,./no-such-folder': model spec './no-such-folder' is not "
                                  "a model folder; a spec is 'smollm2', 'minilm', 'random:<*>', a model folder*, "
                                  "or a Hugging Face hub id*")])


@pytest.mark.parametrize("xdist", [False, True])
def test_a_bad_method_option_is_a_usage_error_before_any_test_runs(pytester: pytest.Pytester, xdist):
    pytester.makepyfile("def test_never_runs():\n    raise AssertionError('ran')\n")
    result = pytester.runpytest_subprocess("--jd-methods", "magnitude,nm[m=3]", *(["-n", "2"] if xdist else []))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--jd-methods: nm[[]m=3[]]: at sparsity 0.25: N:M pruning with M=3 allows*"])
    assert "ran" not in result.stdout.str()


def test_records_go_to_the_directory_the_run_starts_in(pytester: pytest.Pytester, monkeypatch):
    pytester.makeini("[pytest]\n")
    pytester.makepyfile("def test_records(jd_record):\n    jd_record({'claim': 'demo'})\n")
    elsewhere = pytester.mkdir("elsewhere")
    monkeypatch.chdir(elsewhere)
    pytester.runpytest_subprocess("../test_records_go_to_the_directory_the_run_starts_in.py").assert_outcomes(passed=1)
    pytester.runpytest_subprocess("../test_records_go_to_the_directory_the_run_starts_in.py", "--jd-results",
                                  "out").assert_outcomes(passed=1)
    assert len(list((elsewhere / "jd-results").glob("run-*.json"))) == 1
    assert len(list((elsewhere / "out").glob("run-*.json"))) == 1
    assert not (pytester.path / "jd-results").exists()


FAILING_METHOD = """
from dataclasses import dataclass

from junkdna_core import MethodParams, PruningMethod


@dataclass(frozen=True)
class FailingParams(MethodParams):
    sparsity: float


class Failing(PruningMethod):
    name = "failing"
    version = "1"
    params_type = FailingParams

    def compress(self, weights, stats):
        raise RuntimeError("the mask came out 3 x 3")
"""


def test_a_failing_compression_is_reported_once_and_not_retried(pytester: pytest.Pytester, tmp_path):
    pytester.makepyfile(failing_method=FAILING_METHOD)
    result = pytester.runpytest_subprocess(
        str(BENCHMARKS / "test_monotonic.py"), str(BENCHMARKS / "test_difficulty.py"), "-k", "setting2 or setting3",
        "--jd-methods", "failing_method:Failing", "--jd-model", "random:tiny-llama", "--jd-cache",
        str(tmp_path / "cache"), "--jd-results", str(tmp_path / "results"), "-p", "no:cacheprovider", *FAST)
    out = result.stdout.str()
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 5 and "passed" not in outcomes, out  # monotonic x2, difficulty x2, chance x1
    crash = "MethodError: method 'failing' at sparsity=0.2 raised RuntimeError: the mask came out 3 x 3"
    first = (f"MethodError: compression of failing at sparsity 0.2 (Failing(sparsity=0.2)) on random-tiny-llama "
             f"failed: {crash}")
    # the tracebacks, not pytest's short summary (whose lines are cut to the terminal's width except on CI)
    tracebacks = out.split("short test summary info")[0]
    assert tracebacks.count(f"junkdna_core.config.errors.{first}") == 1  # one full report, then short ones
    assert tracebacks.count(f"MethodError: compression of failing at sparsity 0.2 failed earlier in this session: {crash}") == 4
    summary = out.split("junkdna: compression failed")[1]
    assert first in summary and "needed by 5 tests:" in summary
    assert "test_difficulty.py::test_difficulty_chance_corrected[setting2-failing-random-tiny-llama]" in summary
    assert out.count("junkdna: compression failed") == 1
    # the run record holds the failure (its tests recorded nothing), and the leaderboard says so
    body = json.loads(next((tmp_path / "results").glob("run-*.json")).read_text())
    assert body["claims"] == [] and len(body["failed_compressions"]) == 1
    failed = body["failed_compressions"][0]
    assert failed["method"]["method"] == "failing" and failed["error"] == first
    assert len(failed["tests"]) == 5
    with pytest.raises(ConfigError, match="recorded nothing to rank; 1 compressions failed in them, first: failing"):
        build_leaderboard(read_runs([tmp_path / "results"]))


def test_the_run_seed_reaches_random_pruning(pytester: pytest.Pytester, tmp_path):
    pytester.makepyfile("""
        def test_seeded(jd_study):
            assert {c["params"]["seed"] for c in jd_study("setting2", "random").configurations} == {5}
            assert {c["params"]["seed"] for c in jd_study("setting2", "random", seed=9).configurations} == {9}
            assert {c["params"]["seed"] for c in jd_study("setting2", "random[seed=2]").configurations} == {2}
    """)
    pytester.runpytest_subprocess("--jd-seed", "5", "--jd-model", "random:tiny-llama", "--jd-cache",
                                  str(tmp_path / "cache"), *FAST).assert_outcomes(passed=1)


def test_the_run_seed_chooses_fine_tuning_data_and_training_seeds(monkeypatch):
    calls = []
    monkeypatch.setattr(transfer, "compare_modes", lambda *args, **kwargs: calls.append((args, kwargs)))
    budget = get_budget("smoke").finetune
    bench = transfer.TransferBench(SimpleNamespace(fingerprint="f" * 16, kind="encoder"), None, budget, lambda cls: (0.5,), seed=7)
    bench.modes("setting1", "random")
    (_, _, _, method, used), kwargs = calls[0]
    assert kwargs["data_seed"] == 7 and used.seeds == (7, 8) and method.params.seed == 7
    assert kwargs["label"] == "random"


def test_the_xdist_controller_checks_plain_method_names_without_importing_torch(pytester: pytest.Pytester):
    pytester.makeconftest("""
        import sys

        def pytest_unconfigure(config):
            if not hasattr(config, "workerinput"):
                print("controller imported torch:", "torch" in sys.modules)
    """)
    pytester.makepyfile("def test_nothing():\n    pass\n")
    plain = pytester.runpytest_subprocess("-n", "2", "--jd-methods", "magnitude,random", "-s")
    plain.assert_outcomes(passed=1)
    plain.stdout.fnmatch_lines(["controller imported torch: False"])
    unknown = pytester.runpytest_subprocess("-n", "2", "--jd-methods", "magnitude,randon")
    assert unknown.ret == pytest.ExitCode.USAGE_ERROR
    unknown.stderr.fnmatch_lines(["*unknown method 'randon'. Did you mean random*"])


def test_baseline_prints_one_table_per_model(tmp_path, capsys, second_model):
    from junkdna_core.cli import main

    assert main(["baseline", "--model", f"random:tiny-llama,{second_model}", "--settings", "setting2", "--items", "4",
                 "--cache", str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    titles = [line.split(" (")[0] for line in out.splitlines() if ", budget smoke, 4 items" in line]
    assert titles == ["random-tiny-llama", "random-wide-llama"]
    assert sum(line.startswith("| setting2 | options-") for line in out.splitlines()) == 6
