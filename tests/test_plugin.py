"""The pytest plugin and the CLI as a user meets them: options, markers, errors, records."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from junkdna_core.cli import main
from junkdna_core.compress.registry import available_methods
from junkdna_core.options import parse_metric_names
from junkdna_core.pytest_plugin.plugin import MARKERS


def test_markers_and_options_are_registered(pytester: pytest.Pytester):
    result = pytester.runpytest_subprocess("--markers")
    for marker in MARKERS:
        result.stdout.fnmatch_lines([f"@pytest.mark.{marker}:*"])
    help_text = pytester.runpytest_subprocess("--help").stdout.str()
    for option in ("--jd-model", "--jd-methods", "--jd-sparsities", "--jd-budget", "--jd-cache", "--jd-results"):
        assert option in help_text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--jd-sparsities", "0.2,1.5"], "sparsities must lie in [[]0, 1)*1.5*"),
        (["--jd-sparsities", "0.2,abc"], "*'abc'*is not a number*"),
        (["--jd-sparsities", "0,0.5"], "*at least 3 sparsities above 0*'0,0.5'*"),
        (["--jd-methods", "magnitdue"], "*unknown method 'magnitdue'. Did you mean magnitude*Known methods:*"),
        (["--jd-budget", "huge"], "*budget must be one of smoke, full; got 'huge'*"),
        (["--jd-seed", "-1"], "*seed must be a whole number >= 0*"),
        (["--jd-items", "0"], "*expected a whole number >= 1; got 0*"),
        (["--jd-device", "gpu"], "*device must be auto, cpu, mps, cuda, cuda:N or a list of CUDA devices*'gpu'*"),
        (["--jd-bos", "sometimes"], "*BOS policy must be one of auto, always, never; got 'sometimes'*"),
        (["--jd-metric", "em,bleu"], "*expected none or a comma-separated list of em, f1; got 'em,bleu'*"),
    ],
)
def test_bad_options_are_usage_errors_before_any_test_runs(pytester: pytest.Pytester, args, message):
    pytester.makepyfile("def test_never_runs():\n    raise AssertionError('ran')\n")
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}"])
    assert "ran" not in result.stdout.str()


RECORDING_TESTS = """
import pytest

@pytest.mark.parametrize("i", range(4))
def test_records(jd_record, jd_session, i):
    jd_record({"claim": "demo", "value": i, "budget": jd_session.budget.name})
"""


@pytest.mark.parametrize("xdist", [False, True])
def test_records_reach_one_run_file_with_provenance(pytester: pytest.Pytester, xdist):
    pytester.makepyfile(RECORDING_TESTS)
    results = pytester.path / "out"
    args = ["--jd-results", str(results), "--jd-budget", "full"] + (["-n", "2"] if xdist else [])
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=4)
    files = list(results.glob("run-*.json"))
    assert len(files) == 1
    body = json.loads(files[0].read_text())
    assert sorted(r["value"] for r in body["records"]) == [0, 1, 2, 3]
    assert body["options"]["budget"] == "full"
    assert body["environment"]["packages"]["torch"]
    if xdist:  # the environment is the measuring process's: a worker's, with its share of the cores
        assert body["environment"]["torch_threads"] == max(1, (os.cpu_count() or 1) // 2)
    assert all(r["budget"] == "full" for r in body["records"])


def test_cli_lists_every_method_with_parameters(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    for name in available_methods():
        assert f"{name}  (" in out
    assert "sparsity: float" in out and "bits: int" in out and "rank_fraction: float" in out


def test_cli_cache_listing_and_clearing(tmp_path, capsys):
    assert main(["cache", "--cache", str(tmp_path)]) == 0
    assert "0 entries" in capsys.readouterr().out
    assert main(["cache", "clear", "--cache", str(tmp_path)]) == 0
    assert "removed 0 entries" in capsys.readouterr().out


def test_cli_baseline_scores_each_level_with_chance(tmp_path, capsys):
    assert main(["baseline", "--model", "random:tiny-llama", "--settings", "setting2", "--items", "6",
                 "--cache", str(tmp_path)]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| setting2 |")]
    assert [row.split("|")[2].strip() for row in rows] == ["options-2", "options-3", "options-4"]
    assert [row.split("|")[-2].strip() for row in rows] == ["0.500", "0.333", "0.250"]
    assert all(row.split("|")[5].strip() == "6" for row in rows)


@pytest.mark.parametrize(("text", "expected"), [("none", ()), ("em", ("em",)), (" F1 , em,f1", ("f1", "em"))])
def test_metric_option_takes_none_or_answer_metrics(text, expected):
    assert parse_metric_names(text) == expected


def test_cli_baseline_shows_answer_metrics_beside_the_likelihood(tmp_path, capsys):
    assert main(["baseline", "--model", "random:tiny-llama", "--settings", "setting6", "--items", "4",
                 "--metric", "em,f1", "--cache", str(tmp_path)]) == 0
    rows = [line.split("|") for line in capsys.readouterr().out.splitlines() if line.startswith("| setting6 |")]
    assert [(row[2].strip(), row[4].strip()) for row in rows] == [
        ("mcq", "acc"), ("factoid", "gold_likelihood"), ("factoid", "em"), ("factoid", "f1")]
    assert all(row[5].strip() == "4" for row in rows) and rows[2][-2].strip() == "-"


def test_cli_rejects_an_unknown_setting_before_loading_anything(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["baseline", "--settings", "setting9"])
    assert exit_info.value.code == 2
    assert "unknown setting 'setting9'" in capsys.readouterr().err


def test_compressed_model_fixture_builds_once_and_reuses_the_cache(pytester: pytest.Pytester, tmp_path):
    pytester.makepyfile("""
        import torch

        def test_compressed(jd_compressed, jd_model):
            first = jd_compressed("magnitude", 0.5)
            again = jd_compressed("magnitude", 0.5)
            assert first.path == again.path
            assert abs(first.report["sparsity"] - 0.5) < 1e-9
            layer = first.model.get_submodule(first.report["targets"][0])
            assert float((layer.weight == 0).float().mean()) == 0.5
            dense = jd_model.model.get_submodule(first.report["targets"][0])
            assert int((dense.weight == 0).sum()) == 0  # the dense model is never modified
    """)
    args = ["--jd-model", "random:tiny-llama", "--jd-cache", str(tmp_path)]
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=1)
    assert len(list((tmp_path / "compressed").rglob("MANIFEST.json"))) == 1


@pytest.fixture
def broken_plugin(tmp_path, monkeypatch) -> str:
    """A distribution on PYTHONPATH (never installed) whose ``junkdna.methods`` entry point does not import."""
    site = tmp_path / "site"
    info = site / "junkdna_broken_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: junkdna-broken-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[junkdna.methods]\nbroken = junkdna_broken_plugin:Broken\n")
    (site / "junkdna_broken_plugin.py").write_text("import a_dependency_that_is_not_installed\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    return str(site)


def test_a_broken_plugin_is_listed_with_its_error_and_stops_nothing_else(broken_plugin, pytester, tmp_path):
    import subprocess
    import sys

    listing = subprocess.run([sys.executable, "-m", "junkdna_core.cli", "methods"], capture_output=True, text=True,
                             check=False)
    assert listing.returncode == 0, listing.stderr
    assert "broken  (broken: cannot be used)  junkdna_broken_plugin:Broken" in listing.stdout
    assert "ModuleNotFoundError: No module named 'a_dependency_that_is_not_installed'" in listing.stdout
    assert "magnitude  (pruning, data-free" in listing.stdout

    benchmarks = Path(__file__).resolve().parents[1] / "benchmarks"
    run = pytester.runpytest_subprocess(
        str(benchmarks / "test_monotonic.py"), "-k", "setting2", "--jd-methods", "magnitude",
        "--jd-model", "random:tiny-llama", "--jd-sparsities", "0.2,0.4,0.6", "--jd-items", "4",
        "--jd-cache", str(tmp_path / "cache"), "--jd-results", str(tmp_path / "results"), "-p", "no:cacheprovider")
    outcomes = run.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == 1 and "error" not in outcomes, run.stdout.str()

    asked = pytester.runpytest_subprocess("--jd-methods", "magnitude,broken", "--co")
    assert asked.ret == pytest.ExitCode.USAGE_ERROR
    asked.stderr.fnmatch_lines(["*'broken'*failed to load: ModuleNotFoundError*a_dependency_that_is_not_installed*"])
