"""The installed plugin runs in junkdna's claim benchmarks and shows up on the leaderboard beside magnitude.

On a tiny random model so it takes seconds; on the embedded model the same two commands are
`pytest benchmarks -k setting2 --jd-methods magnitude,ria --jd-budget smoke` and `junkdna leaderboard`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import junkdna_core

BENCHMARKS = Path(junkdna_core.__file__).resolve().parents[1] / "benchmarks"


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)


def test_plugin_beside_builtins_in_benchmarks_and_leaderboard(tmp_path: Path):
    bench = _run([sys.executable, "-m", "pytest", str(BENCHMARKS), "-k", "setting2", "--jd-methods", "magnitude,ria",
                  "--jd-model", "random:tiny-llama", "--jd-budget", "smoke", "--jd-cache", str(tmp_path / "cache"),
                  "--jd-results", str(tmp_path / "runs"), "-p", "no:cacheprovider", "-q"], tmp_path)
    assert bench.returncode in (0, 1), bench.stdout + bench.stderr  # 1: a claim does not hold on a random model
    assert "error" not in bench.stdout.splitlines()[-1], bench.stdout
    board = _run([sys.executable, "-m", "junkdna_core.cli", "leaderboard", str(tmp_path / "runs"),
                  "--out", str(tmp_path / "board"), "--formats", "md,csv"], tmp_path)
    assert board.returncode == 0, board.stdout + board.stderr
    table = (tmp_path / "board" / "leaderboard.md").read_text()
    assert "| setting2 | ria | monotonic |" in table.replace("random-tiny-llama | ", "")
    assert "| setting2 | magnitude | monotonic |" in table.replace("random-tiny-llama | ", "")
