"""The perf scripts under benchmarks/perf/, run end to end at tiny size (no timed assertions)."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PERF = Path(__file__).resolve().parents[1] / "benchmarks" / "perf"


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    """The environment of a script run: an artifact cache of its own, shared by this module's tests, and none of
    the PYTEST_XDIST_* variables of a worker this suite may run in (a pytest started with them takes itself for
    an xdist worker, and pytest-benchmark then refuses --benchmark-only)."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}
    return {**inherited, "JUNKDNA_CACHE": str(tmp_path_factory.mktemp("cache"))}


def run_script(name: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(PERF / name), *args], capture_output=True, text=True, env=env,
                          check=False, timeout=600)


@pytest.fixture
def scale(monkeypatch):
    """benchmarks/perf/scale.py imported as a module (it imports only the standard library at the top)."""
    spec = importlib.util.spec_from_file_location("scale", PERF / "scale.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up while it runs
    spec.loader.exec_module(module)
    return module


def test_scale_measures_each_method_and_scoring_in_its_own_process(tmp_path, env):
    out = tmp_path / "scale.json"
    done = run_script("scale.py", ["--sizes", "tiny", "--methods", "magnitude,gptq", "--items", "4",
                                   "--threads", "1", "--out", str(out)], env)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(out.read_text())
    rows = {r["method"]: r for r in data["rows"]}
    assert list(rows) == ["magnitude", "gptq", "scoring"]
    assert data["vocab_size"] == 49152 == data["sizes"]["tiny"]["config"]["vocab_size"]
    params = data["sizes"]["tiny"]["params"]  # counted on a weightless model before anything ran
    for row in rows.values():
        assert row["size"] == "tiny" and row["params"] == params and row["threads"] == 1
        assert row["seconds"] > 0 and row["peak_rss_kib"] > 0
    assert rows["magnitude"]["sparsity"] == pytest.approx(0.5)
    assert "bits=4" in rows["gptq"]["setting"] and "group_size=64" in rows["gptq"]["setting"]
    assert rows["scoring"]["items"] == 4
    assert rows["scoring"]["items_per_second"] == pytest.approx(4 / rows["scoring"]["seconds"])
    assert data["growth"] == []  # one size: nothing to grow from
    table = [line for line in done.stdout.splitlines() if line.startswith("| tiny |")]
    assert [line.split("|")[3].strip() for line in table] == ["magnitude", "gptq", "scoring"]
    assert all(f"| {params / 1e6:.1f}M |" in line for line in table)


def test_scale_refuses_sizes_projected_over_the_memory_limit(tmp_path, env):
    out = tmp_path / "scale.json"
    done = run_script("scale.py", ["--sizes", "tiny", "--methods", "magnitude", "--max-gib", "1",
                                   "--out", str(out)], env)
    assert done.returncode == 2
    assert "projected peak memory over --max-gib 1" in done.stderr and "tiny" in done.stderr
    assert not out.exists()


def test_scale_growth_is_time_ratio_over_parameter_ratio_against_the_smallest_size(scale):
    growth = scale.growth
    rows = [
        {"size": "big", "method": "magnitude", "params": 400, "seconds": 16.0},
        {"size": "small", "method": "magnitude", "params": 100, "seconds": 2.0},
        {"size": "small", "method": "gptq", "params": 100, "seconds": 5.0},
        {"size": "big", "method": "gptq", "error": "MemoryError"},
        {"size": "small", "method": "scoring", "params": 100, "seconds": 1.0, "items": 10},
        {"size": "big", "method": "scoring", "params": 400, "seconds": 4.0, "items": 20},
    ]
    assert growth(rows) == [
        {"method": "magnitude", "size": "big", "base": "small", "params_ratio": 4.0, "seconds_ratio": 8.0,
         "per_param": 2.0},
        {"method": "scoring", "size": "big", "base": "small", "params_ratio": 4.0, "seconds_ratio": 2.0,
         "per_param": 0.5},
    ]


def test_parallel_prints_ratios_of_one_run_and_identical_records(env):
    done = run_script("parallel.py", ["-k", "setting2 and monotonic", "--model", "random:tiny-llama",
                                      "--methods", "magnitude", "--items", "4", "--warm-runs", "3"], env)
    assert done.returncode == 0, done.stderr[-3000:]
    number = r"(\d+\.\d+)"
    match = re.search(rf"-n 1 cold {number} s, -n 2 cold {number} s, -n 2 warm {number} / {number} / {number} s; "
                      rf"n2/n1 {number} \(target <= 1\), median warm/cold {number} \(target <= 0.1\); "
                      r"identical records: True; cache entries the warm runs built: none$", done.stdout.strip())
    assert match, done.stdout
    serial, cold, *warm, n2_n1, warm_cold = map(float, match.groups())
    assert math.isclose(n2_n1, cold / serial, rel_tol=0.02)
    assert math.isclose(warm_cold, sorted(warm)[1] / cold, rel_tol=0.02)
    # each of the five pytest runs ran the one selected claim test
    summaries = [line for line in done.stderr.splitlines() if re.match(r"1 (failed|passed)\b", line)]
    assert len(summaries) == 5, done.stderr


def run_pytest(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", *args, "-p", "no:cacheprovider"], capture_output=True,
                          text=True, env=env, check=False, timeout=600)


def test_compress_methods_prints_each_calibrated_method_against_one_forward(tmp_path, env):
    out = tmp_path / "compress.json"
    done = run_script("compress_methods.py", ["--model", "random:tiny-llama", "--methods", "magnitude,wanda,gptq",
                                              "--calibration", "4x16", "--heldout", "0", "--threads", "1",
                                              "--group-size", "16", "--out", str(out)], env)
    assert done.returncode == 0, done.stderr[-3000:]
    ratios = dict(re.findall(r"^(\w+)/forward (\d+\.\d+) \(wall \d+\.\d+\)$", done.stdout, re.MULTILINE))
    assert sorted(ratios) == ["gptq", "wanda"]  # calibrated methods only
    rows = {r["method"]: r for r in json.loads(out.read_text())["rows"]}
    for name, ratio in ratios.items():
        row = rows[name]
        assert float(ratio) == pytest.approx(row["cpu_seconds"] / row["forward_cpu_seconds"], abs=0.01)
        assert row["forward_ratio"] == pytest.approx(float(ratio), abs=0.01)
    assert rows["wanda"]["measured"] == {"unit": "row", "sparsity": 0.5}
    assert rows["gptq"]["measured"]["bits"] == 4


def test_compress_kernels_run_as_pytest_benchmarks(tmp_path, env):
    saved = tmp_path / "kernels.json"
    done = run_pytest([str(PERF / "test_kernels_compress.py"), "--benchmark-only", "-q",
                       "--benchmark-max-time=0.001", "--benchmark-min-rounds=1", f"--benchmark-json={saved}"],
                      {**env, "JUNKDNA_PERF_SIZE": "tiny"})
    assert done.returncode == 0, done.stdout[-3000:]
    names = {b["name"] for b in json.loads(saved.read_text())["benchmarks"]}
    layers = {f"test_one_calibrated_layer[{shape}-{method}]" for shape in ("mlp_up", "mlp_down")
              for method in ("gptq", "sparsegpt", "wanda")}
    blocks = {"test_block_statistics[gram]", "test_block_statistics[input_norms]", "test_block_forward",
              "test_block_compressed_in_one_pass"}
    assert names == layers | blocks


def test_a_claim_run_of_the_benchmark_directory_does_not_collect_the_kernels(env):
    done = run_pytest([str(PERF.parent), "--collect-only", "-q"], env)
    assert done.returncode == 0, done.stdout[-3000:]
    collected = [line for line in done.stdout.splitlines() if "::" in line]
    assert collected and not [line for line in collected if "perf/" in line]


def test_scoring_kernels_run_as_pytest_benchmarks(env):
    done = run_pytest([str(PERF / "test_kernels_scoring.py"), "-q", "--benchmark-disable"], env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "2 passed" in done.stdout


def test_request_dedup_counts_each_shared_request_list_once(env):
    done = run_script("request_dedup.py", ["--items", "3"], env)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line.split("|")[1:-1] for line in done.stdout.splitlines() if line.startswith("| setting")]
    scored_by = {(s.strip(), lv.strip()): by.strip() for s, lv, _, _, by in rows[1:]}
    shared = {("setting2", "options-3"), ("setting2", "options-4"), ("setting4", "shots-0"), ("setting6", "mcq")}
    passages = {("setting3", "context-60"), ("setting3", "context-100")}  # one list with context-20
    assert {key for key, by in scored_by.items() if by != f"{key[0]}/{key[1]}"} == shared | passages
    assert all(scored_by[key] == "setting2/options-2" for key in shared)
    assert all(scored_by[key] == "setting3/context-20" for key in passages)
    match = re.search(r"ask for (\d+) tokens, (\d+) are scored: saving (\d+\.\d)%", done.stdout)
    asked, scored, saving = int(match[1]), int(match[2]), float(match[3])
    assert scored < asked and saving == round(100 * (1 - scored / asked), 1)


def test_artifact_bytes_writes_both_formats_and_reloads_exactly(tmp_path, env):
    out = tmp_path / "bytes.json"
    done = run_script("artifact_bytes.py", ["--model", "random:tiny-llama", "--methods", "magnitude,sparsegpt",
                                            "--out", str(out)], env)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(out.read_text())
    rows = {r["method"]: r for r in data["rows"]}
    assert rows["magnitude"]["forms"] == ["bitmask"] and rows["sparsegpt"]["forms"] == ["sparse-bitmask"]
    assert all(r["reloads_exactly"] and r["v2_bytes"] < r["v1_bytes"] for r in rows.values())
    assert data["projection"] == {}  # projected only from the embedded SmolLM2's measurement
    assert "| sparsegpt | sparse-bitmask |" in done.stdout


def test_placement_compares_a_split_model_with_the_same_model_on_one_device(tmp_path, env):
    out = tmp_path / "placement.json"
    done = run_script("placement.py", ["--model", "random:tiny-llama", "--items", "4", "--out", str(out)], env)
    assert done.returncode == 0, done.stderr[-3000:]
    row = json.loads(out.read_text())
    assert row["identical_scores"] and row["items"] == 4 and "disk" in row["device_map"].values()
    assert row["budget_bytes"] == int(0.5 * row["weights_bytes"])
    assert re.search(r"score: single [0-9.]+ s, split [0-9.]+ s, split/single [0-9.]+", done.stdout)


def test_claims_cost_prints_each_claim_against_the_difficulty_claim(env):
    done = run_script("claims_cost.py", ["--items", "40", "--repeats", "1"], env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 8 and all(re.fullmatch(r"setting[25] .+: [\d.]+ s, [\d.]+ x difficulty", line) for line in lines)
