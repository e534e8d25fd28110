"""The benchmark directory end to end: on tiny random models claims fail as claims, never as errors; with a
planted effect the claim test passes, and without one it fails naming the statistic and threshold."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from junkdna_core.results.leaderboard import build_leaderboard
from junkdna_core.results.records import read_runs

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_setting2_on_a_tiny_random_model_runs_records_and_reuses_the_cache(pytester: pytest.Pytester, tmp_path):
    args = [str(BENCHMARKS), "-k", "setting2", "--jd-methods", "magnitude,random", "--jd-model", "random:tiny-llama",
            "--jd-sparsities", "0.2,0.4,0.6", "--jd-items", "10", "--jd-random-seeds", "2",
            "--jd-cache", str(tmp_path / "cache"),
            "--jd-results", str(tmp_path / "results"), "-p", "no:cacheprovider", "-p", "no:randomly"]
    first = pytester.runpytest_subprocess(*args)
    outcomes = first.parseoutcomes()
    assert outcomes.get("error", 0) == 0, first.stdout.str()
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) >= 5
    # a failure is a claim that does not hold (or is undefined), reported with its numbers or reason, never a crash
    verdicts = [line for line in first.stdout.lines
                if ("does NOT hold for setting2-" in line and "needs" in line) or "undefined: " in line]
    assert len(verdicts) >= outcomes.get("failed", 0)
    assert not [line for line in first.stdout.lines if line.startswith("E ")], first.stdout.str()
    records = json.loads(next((tmp_path / "results").glob("run-*.json")).read_text())["claims"]
    assert {r["claim"] for r in records} >= {"monotonic", "difficulty", "difficulty-chance-corrected", "random"}
    assert all(r["model"] == "random-tiny-llama" for r in records)
    assert all(len(task["ids"]) == 10 for r in records for task in r["provenance"]["items"].values())
    control = next(r for r in records if r["claim"] == "random")
    assert [s["method"] for s in control["provenance"]["studies"]] == ["magnitude", "random", "random"]
    assert {s["configurations"][-1]["params"]["seed"] for s in control["provenance"]["studies"][1:]} == {0, 1}
    assert all(s["family"] == "pruning" and s["configurations"][-1]["strength"] == 0.6
               for s in control["provenance"]["studies"])
    assert all(r["provenance"]["model_parameters"] > 0 for r in records)
    # every configuration carries what was verified after compression, so the leaderboard leaves none out for it
    assert all(c["measured"] for r in records for s in r["provenance"]["studies"] for c in s["configurations"])
    board = build_leaderboard(read_runs([tmp_path / "results"]))
    assert not board.skipped and {c.method for c in board.claims} >= {"magnitude", "random"}

    # Warm rerun: every compressed model and score comes from the cache, nothing is rebuilt.
    cache_files = sorted(p.name for p in (tmp_path / "cache").rglob("MANIFEST.json"))
    second = pytester.runpytest_subprocess(*args)
    assert second.parseoutcomes() == outcomes
    assert sorted(p.name for p in (tmp_path / "cache").rglob("MANIFEST.json")) == cache_files
    runs = sorted((tmp_path / "results").glob("run-*.json"))
    assert len(runs) == 2
    again = json.loads(runs[-1].read_text())["claims"]
    def canonical(rs):
        return sorted(json.dumps(r, sort_keys=True) for r in rs)

    assert canonical(again) == canonical(records)  # identical statistics, to the last digit


def test_answer_metrics_asked_for_reach_the_records_beside_the_likelihood(pytester: pytest.Pytester, tmp_path):
    args = [str(BENCHMARKS), "-k", "test_monotonic and setting6-magnitude", "--jd-methods", "magnitude",
            "--jd-model", "random:tiny-llama", "--jd-sparsities", "0.2,0.4,0.6", "--jd-items", "4",
            "--jd-metric", "em,f1", "--jd-cache", str(tmp_path / "cache"), "--jd-results", str(tmp_path / "results"),
            "-p", "no:cacheprovider", "-p", "no:randomly"]
    result = pytester.runpytest_subprocess(*args)
    assert result.parseoutcomes().get("error", 0) == 0, result.stdout.str()
    body = json.loads(next((tmp_path / "results").glob("run-*.json")).read_text())
    assert body["options"]["metrics"] == ["em", "f1"]
    [record] = body["claims"]
    [study] = record["provenance"]["studies"]
    assert set(study["extra_metrics"]) == {"factoid"}  # the generative level only, not the multiple-choice one
    for metric in ("em", "f1"):
        measured = study["extra_metrics"]["factoid"][metric]
        assert measured["strengths"] == [0.2, 0.4, 0.6] and len(measured["means"]) == 3
        assert all(0.0 <= v <= 1.0 for v in (measured["dense"], *measured["means"]))


def test_finetuning_benchmarks_on_a_tiny_random_encoder_run_as_claims(pytester: pytest.Pytester, tmp_path):
    args = [str(BENCHMARKS), "-k", "setting1 or irreversible or lmc", "--jd-encoder", "random:tiny-bert",
            "--jd-budget", "smoke", "--jd-cache", str(tmp_path / "cache"), "--jd-results", str(tmp_path / "results"),
            "-p", "no:cacheprovider", "-p", "no:randomly"]
    result = pytester.runpytest_subprocess(*args)
    outcomes = result.parseoutcomes()
    assert outcomes.get("error", 0) == 0, result.stdout.str()
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == 6, result.stdout.str()
    assert not [line for line in result.stdout.lines if line.startswith("E ")], result.stdout.str()
    records = json.loads(next((tmp_path / "results").glob("run-*.json")).read_text())["claims"]
    by_claim = {(r["claim"], r["setting"]) for r in records}
    assert by_claim == {("monotonic", "setting1"), ("difficulty", "setting1"), ("irreversible", "setting1"),
                        ("irreversible", "setting5-finetune"), ("lmc", "setting1"), ("lmc", "setting5-finetune")}
    irreversible = next(r for r in records if r["claim"] == "irreversible" and r["setting"] == "setting1")
    assert set(irreversible["details"]["accuracy"]["data-100"]) == {"dense", "dense-frozen", "sparse",
                                                                   "sparse-to-dense"}
    assert all(len(v) == 2 for v in irreversible["details"]["accuracy"]["data-5"].values())  # two seeds
    assert all(r["model"] == "random-tiny-bert" for r in records)
    # the transfer modes' masks are verified too: each record carries the measured level of every configuration
    assert all(c["measured"] for r in records for s in r["provenance"]["studies"] for c in s["configurations"])
    assert irreversible["provenance"]["studies"][0]["configurations"][0]["measured"]["sparsity"] > 0
    assert irreversible["provenance"]["seed"] == 0 and irreversible["provenance"]["training_seeds"] == [0, 1]


# A root conftest for a copy of the benchmark directory: jd_study returns a planted study instead of measuring
# one. Accuracy falls linearly with sparsity at each level's own rate (easiest level first), on the same 400
# items at every level: `magnitude` gets steeper drops on harder levels, `random` the same drop everywhere.
PLANTED_CONFTEST = """
import pytest

from junkdna_core.data.settings import get_setting
from planted import planted_study

RATES = {"magnitude": (0.3, 0.6, 1.0), "random": (0.6, 0.6, 0.6)}


@pytest.fixture(scope="session")
def jd_study():
    return lambda setting, method, **options: planted_study(get_setting(setting), RATES[method], method=method)
"""


def test_difficulty_benchmark_passes_on_a_planted_effect_and_fails_without_one(pytester: pytest.Pytester, tmp_path):
    shutil.copytree(BENCHMARKS, pytester.path / "benchmarks", ignore=shutil.ignore_patterns("perf", "__pycache__"))
    pytester.makeconftest(PLANTED_CONFTEST)
    shutil.copy(Path(__file__).with_name("planted.py"), pytester.path / "planted.py")
    result = pytester.runpytest_subprocess(
        "benchmarks/test_difficulty.py", "-k", "setting2 and not chance", "--jd-methods", "magnitude,random",
        "--jd-results", str(tmp_path / "results"), "-p", "no:cacheprovider", "-p", "no:randomly", "-rA")
    result.assert_outcomes(passed=1, failed=1)
    # the planted jd_study uses no model, so the plugin adds no model to the ids
    result.stdout.fnmatch_lines(["*PASSED*test_difficulty[[]setting2-magnitude[]]*",
                                 "*FAILED*test_difficulty[[]setting2-random[]]*"])
    result.stdout.fnmatch_lines([("*difficulty does NOT hold for setting2-random-planted: Spearman(difficulty, -slope)"
                                  " undefined; needs >= 0.8; slope(hardest) - slope(easiest) = 0.0000 [[]0.000, 0.000[]],"
                                  " p=1; needs interval < 0 (the slopes give no order: y is constant: ranks carry no"
                                  " order; the interval of slope(options-4) - slope(options-2) does not exclude 0)*")])
    records = json.loads(next((tmp_path / "results").glob("run-*.json")).read_text())["claims"]
    planted = next(r for r in records if r["method"] == "magnitude")
    assert planted["verdict"] == "holds" and planted["conditions"][0]["statistic"] == 1.0
    assert planted["details"]["hard_minus_easy"]["high"] < 0
