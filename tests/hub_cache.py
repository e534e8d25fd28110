"""Lay a local model folder out as a Hugging Face hub cache entry, as ``huggingface_hub`` writes one."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def lay_out_hub_cache(folder: Path, hub_cache: Path, repo: str, commit: str, refs: tuple[str, ...] = ("main",)) -> Path:
    """``folder``'s files as ``repo`` at ``commit`` under ``hub_cache``: blobs, ``refs/<ref>`` files, snapshot links.

    Returns the snapshot folder (``models--org--name/snapshots/<commit>``).
    """
    root = hub_cache / f"models--{repo.replace('/', '--')}"
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    for ref in refs:
        (root / "refs" / ref).parent.mkdir(parents=True, exist_ok=True)
        (root / "refs" / ref).write_text(commit)
    snapshot = root / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for path in sorted(folder.iterdir()):
        blob = root / "blobs" / hashlib.sha256(path.read_bytes()).hexdigest()
        blob.write_bytes(path.read_bytes())
        (snapshot / path.name).symlink_to(os.path.relpath(blob, snapshot))
    return snapshot
