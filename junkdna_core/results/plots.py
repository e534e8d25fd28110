"""PNG plots of a leaderboard (matplotlib, Agg renderer, no pyplot global state).

Drop vs compression strength per difficulty level; Theil–Sen slope vs
difficulty per method; pruning beside quantization (paper Figure 7); with
several models, the drop at common strengths against the parameter count.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from junkdna_core.config.errors import MissingResourceError
from junkdna_core.results.claims import REFERENCE_PRUNING
from junkdna_core.results.leaderboard import LEVEL_AXIS, STRENGTH_AXIS, Leaderboard, curve_entries, curve_of
from junkdna_core.results.records import Entry
from junkdna_core.results.schema import CurveDetails, SlopeDetails


def _slug(*parts: str) -> str:
    return "-".join(re.sub(r"[^A-Za-z0-9._]+", "_", p) for p in parts)


def _level_colors(details: CurveDetails) -> list[tuple[str, Any]]:
    """Levels from easiest to hardest, each with a color (viridis, dark = easy)."""
    from matplotlib import colormaps

    levels = sorted(details.drops, key=details.difficulty.__getitem__)
    cmap = colormaps["viridis"]
    return [(name, cmap(0.85 * i / max(1, len(levels) - 1))) for i, name in enumerate(levels)]


def _draw_drops(ax: Any, details: CurveDetails, family: str, title: str, *, ylabel: bool = True) -> None:
    """Normalized drop vs strength on ``ax``, one line per level, the dense model at (0, 0)."""
    x = [0.0, *details.strengths]
    for name, color in _level_colors(details):
        label = f"{name} (difficulty {details.difficulty[name]:g})"
        ax.plot(x, [0.0, *details.drops[name]], marker="o", color=color, label=label)
    ax.axhline(0.0, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xlabel(STRENGTH_AXIS.get(family, STRENGTH_AXIS["other"]))
    if family in LEVEL_AXIS:
        name, forward, inverse = LEVEL_AXIS[family]
        ax.secondary_xaxis("top", functions=(forward, inverse)).set_xlabel(name, fontsize=9)
    if ylabel:
        ax.set_ylabel("normalized drop (f - f_dense) / f_dense")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title="level (easy → hard)", title_fontsize=8)


def _figure(width: float = 6.4, height: float = 4.4, ncols: int = 1) -> tuple[Any, list[Any]]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, ncols, sharey=True, squeeze=False)[0]
    return fig, list(axes)


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path, dpi=110, format="png")
    return path


def plot_drop_curves(board: Leaderboard, out: Path) -> list[Path]:
    """Normalized drop vs strength per difficulty level: one PNG per (model, setting, method)."""
    written = []
    for (model, setting, method), e in sorted(curve_entries(board.entries).items()):
        fig, (ax,) = _figure()
        _draw_drops(ax, curve_of(e.record), e.record.family, f"{setting} · {method} · {model}: drop vs strength")
        written.append(_save(fig, out / f"drop-{_slug(model, setting, method)}.png"))
    return written


def plot_slopes(board: Leaderboard, out: Path) -> list[Path]:
    """Theil–Sen slope (with bootstrap interval) vs difficulty: one PNG per (model, setting), a line per method."""
    groups: dict[tuple[str, str], list[Entry]] = {}
    for e in board.entries:
        if e.record.claim == "difficulty" and isinstance(e.record.details, SlopeDetails):
            groups.setdefault((e.record.model, e.record.setting), []).append(e)
    written = []
    for (model, setting), group in sorted(groups.items()):
        fig, (ax,) = _figure()
        ticks: dict[float, str] = {}
        for e in group:
            d = e.record.details
            levels = sorted(d.slopes, key=d.difficulty.__getitem__)
            xs = [d.difficulty[n] for n in levels]
            ys = [d.slopes[n].slope for n in levels]
            err = [[y - d.slopes[n].low for n, y in zip(levels, ys)], [d.slopes[n].high - y for n, y in zip(levels, ys)]]
            ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=e.record.method)
            ticks.update({x: n for x, n in zip(xs, levels)})
        ax.set_xticks(list(ticks), [f"{n}\n({x:.3g})" for x, n in ticks.items()], fontsize=8)
        ax.set_xlabel("difficulty level (difficulty value; larger = harder)")
        ax.set_ylabel("Theil–Sen slope of drop vs strength")
        ax.set_title(f"{setting} · {model}: slope vs difficulty (95% bootstrap CI)", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, title="method", title_fontsize=8)
        written.append(_save(fig, out / f"slope-{_slug(model, setting)}.png"))
    return written


def plot_pruning_vs_quantization(board: Leaderboard, out: Path) -> list[Path]:
    """Magnitude pruning beside each quantization method (paper Figure 7), per (model, setting) with both."""
    curves = curve_entries(board.entries)
    written = []
    for (model, setting, method), quant in sorted(curves.items()):
        prune = curves.get((model, setting, REFERENCE_PRUNING))
        if prune is None or quant.record.family != "quantization":
            continue
        fig, (left, right) = _figure(width=11.0, ncols=2)
        _draw_drops(left, curve_of(prune.record), prune.record.family, f"pruning: {REFERENCE_PRUNING}")
        _draw_drops(right, curve_of(quant.record), "quantization", f"quantization: {method}", ylabel=False)
        fig.suptitle(f"{setting} · {model}: pruning vs quantization (paper Figure 7)", fontsize=11)
        written.append(_save(fig, out / f"pruning-vs-quantization-{_slug(model, setting, method)}.png"))
    return written


def plot_scale(board: Leaderboard, out: Path) -> list[Path]:
    """Hardest-level drop vs parameter count at each common strength: one PNG per (setting, method) on 2+ models."""
    groups: dict[tuple[str, str], list] = {}
    for row in board.scale:
        if row.parameters is not None:
            groups.setdefault((row.setting, row.method), []).append(row)
    written = []
    for (setting, method), rows in sorted(groups.items()):
        fig, (ax,) = _figure()
        for s in sorted({r.strength for r in rows}):
            at = sorted((r for r in rows if r.strength == s), key=lambda r: r.parameters)
            ax.plot([r.parameters for r in at], [r.drop_hardest for r in at], marker="o", label=f"{s:g}")
            for r in at:
                ax.annotate(r.model, (r.parameters, r.drop_hardest), fontsize=7, xytext=(3, 3),
                            textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("parameters")
        ax.set_ylabel(f"normalized drop of the hardest level ({rows[0].hardest_level})")
        ax.set_title(f"{setting} · {method}: drop vs model size", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, title=STRENGTH_AXIS.get(rows[0].family, STRENGTH_AXIS["other"]), title_fontsize=8)
        written.append(_save(fig, out / f"scale-{_slug(setting, method)}.png"))
    return written


def write_plots(board: Leaderboard, out: Path) -> list[Path]:
    """Every plot as PNG under ``out`` (matplotlib, Agg renderer, no global state)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise MissingResourceError("the png format needs matplotlib: pip install matplotlib") from None
    out.mkdir(parents=True, exist_ok=True)
    return (plot_drop_curves(board, out) + plot_slopes(board, out) + plot_pruning_vs_quantization(board, out)
            + plot_scale(board, out))
