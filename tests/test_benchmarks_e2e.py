"""The benchmark directory end to end on a tiny random model: claims fail as claims, never as errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_setting2_on_a_tiny_random_model_runs_records_and_reuses_the_cache(pytester: pytest.Pytester, tmp_path):
    args = [str(BENCHMARKS), "-k", "setting2", "--jd-methods", "magnitude,random", "--jd-model", "random:tiny-llama",
            "--jd-sparsities", "0.2,0.4,0.6", "--jd-items", "10", "--jd-cache", str(tmp_path / "cache"),
            "--jd-results", str(tmp_path / "results"), "-p", "no:cacheprovider", "-p", "no:randomly"]
    first = pytester.runpytest_subprocess(*args)
    outcomes = first.parseoutcomes()
    assert outcomes.get("error", 0) == 0, first.stdout.str()
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) >= 5
    # a failure is a claim that does not hold, reported with its numbers, never a crash
    verdicts = [line for line in first.stdout.lines if "does NOT hold for setting2-" in line and "needs" in line]
    assert len(verdicts) >= outcomes.get("failed", 0)
    assert not [line for line in first.stdout.lines if line.startswith("E ")], first.stdout.str()
    records = json.loads(next((tmp_path / "results").glob("run-*.json")).read_text())["records"]
    assert {r["claim"] for r in records} >= {"monotonic", "difficulty", "difficulty-chance-corrected", "random"}
    assert all(r["model"] == "random-tiny-llama" for r in records)
    assert all(len(task["ids"]) == 10 for r in records for task in r["provenance"]["items"].values())

    # Warm rerun: every compressed model and score comes from the cache, nothing is rebuilt.
    cache_files = sorted(p.name for p in (tmp_path / "cache").rglob("MANIFEST.json"))
    second = pytester.runpytest_subprocess(*args)
    assert second.parseoutcomes() == outcomes
    assert sorted(p.name for p in (tmp_path / "cache").rglob("MANIFEST.json")) == cache_files
    runs = sorted((tmp_path / "results").glob("run-*.json"))
    assert len(runs) == 2
    again = json.loads(runs[-1].read_text())["records"]
    def canonical(rs):
        return sorted(json.dumps(r, sort_keys=True) for r in rs)

    assert canonical(again) == canonical(records)  # identical statistics, to the last digit


def test_finetuning_benchmarks_on_a_tiny_random_encoder_run_as_claims(pytester: pytest.Pytester, tmp_path):
    args = [str(BENCHMARKS), "-k", "setting1 or irreversible or lmc", "--jd-encoder", "random:tiny-bert",
            "--jd-budget", "smoke", "--jd-cache", str(tmp_path / "cache"), "--jd-results", str(tmp_path / "results"),
            "-p", "no:cacheprovider", "-p", "no:randomly"]
    result = pytester.runpytest_subprocess(*args)
    outcomes = result.parseoutcomes()
    assert outcomes.get("error", 0) == 0, result.stdout.str()
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == 6, result.stdout.str()
    assert not [line for line in result.stdout.lines if line.startswith("E ")], result.stdout.str()
    records = json.loads(next((tmp_path / "results").glob("run-*.json")).read_text())["records"]
    by_claim = {(r["claim"], r["setting"]) for r in records}
    assert by_claim == {("monotonic", "setting1"), ("difficulty", "setting1"), ("irreversible", "setting1"),
                        ("irreversible", "setting5-finetune"), ("lmc", "setting1"), ("lmc", "setting5-finetune")}
    irreversible = next(r for r in records if r["claim"] == "irreversible" and r["setting"] == "setting1")
    assert set(irreversible["details"]["accuracy"]["data-100"]) == {"dense", "dense-frozen", "sparse",
                                                                   "sparse-to-dense"}
    assert all(len(v) == 2 for v in irreversible["details"]["accuracy"]["data-5"].values())  # two seeds
    assert all(r["model"] == "random-tiny-bert" for r in records)
