"""The example method passes junkdna's conformance kit, called directly and through the pytest option."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
from junkdna_core.testing import RULES, check_method

from junkdna_example_plugin import RIA

torch.set_num_threads(1)


def test_ria_passes_the_kit():
    problems = check_method(RIA)
    assert problems == [], "\n".join(map(str, problems))


def test_pytest_option_runs_the_kit_on_the_registered_name(tmp_path: Path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--jd-conformance", "ria", "-p", "no:cacheprovider", "-q"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # every rule but lossier-when-stronger (quantization and low rank only) applies to a pruning method
    assert f"{len(RULES) - 1} passed, 1 skipped" in result.stdout
