"""Export a leaderboard: read run records, build the tables, write them with the plots."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from junkdna_core.config.errors import ConfigError
from junkdna_core.results.leaderboard import (
    DEFAULT_OUT,
    FORMATS,
    Leaderboard,
    build_leaderboard,
    render_claims_csv,
    render_html,
    render_json,
    render_markdown,
    render_ranking_csv,
    render_scale_csv,
)
from junkdna_core.results.plots import write_plots
from junkdna_core.results.records import read_runs

PLOTS_DIR = "plots"


def write_leaderboard(board: Leaderboard, out: Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write ``board`` under ``out`` in each of ``formats``; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written = write_plots(board, out / PLOTS_DIR) if "png" in formats else []
    texts = {
        "md": {"leaderboard.md": render_markdown},
        "csv": {"claims.csv": render_claims_csv, "ranking.csv": render_ranking_csv,
                **({"scale.csv": render_scale_csv} if board.scale else {})},
        "json": {"leaderboard.json": render_json},
        "html": {"leaderboard.html": lambda b: render_html(b, [p.relative_to(out).as_posix() for p in written])},
    }
    for fmt in formats:
        for name, render in texts.get(fmt, {}).items():
            path = out / name
            path.write_text(render(board), encoding="utf-8")
            written.append(path)
    return written


def export_leaderboard(paths: Sequence[Path], out: Path = DEFAULT_OUT,
                       formats: Sequence[str] = FORMATS) -> list[Path]:
    """Read and merge the run records at ``paths`` (files or directories; default ``./jd-results``), write the
    leaderboard to ``out``."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ConfigError(f"unknown leaderboard formats {unknown}; allowed: {', '.join(FORMATS)}")
    return write_leaderboard(build_leaderboard(read_runs(paths)), out, formats)
