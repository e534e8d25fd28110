"""The leaderboard: run records turned into claims tables, method rankings, a cross-model view and plots.

Reads run records (:mod:`junkdna_core.results.records`: files or directories,
the runs of several groups or machines merged), keeps the newest record per
(model, setting, method, claim), and builds

- the claims table: every asserted claim's headline statistic with its interval,
  p-value, requirement and verdict (holds, fails, undefined with its reason), and
  its other conditions; claims recorded for information only are listed apart;
- one ranking per model: methods ranked within their family (read from the
  record) by how much of the hardest level they retain (retention = 1 +
  normalized drop) at the strengths every method of the family was measured at,
  with the easy-hard retention gap. A record whose configurations do not carry
  what was measured after compression is not ranked, and is listed with why;
- with several models, the cross-model view: each claim's statistic per model
  side by side, and the drops at strengths every model was measured at against
  the model's parameter count.
"""

from __future__ import annotations

import csv
import functools
import html
import io
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from junkdna_core.compress.strength import LEVEL_NAMES, level_of, strength
from junkdna_core.config.errors import ConfigError
from junkdna_core.results.records import DEFAULT_RESULTS, Entry, newest_entries, schema_note
from junkdna_core.results.schema import RECORD_SCHEMA, STRENGTH_DIGITS, ClaimRecord, CurveDetails, RunRecord

log = logging.getLogger(__name__)

FORMATS = ("md", "csv", "json", "html", "png")
DEFAULT_OUT = DEFAULT_RESULTS / "leaderboard"
FAMILY_ORDER = ("pruning", "quantization", "lowrank", "other")
PREFERRED_CURVE = "monotonic"  # of a method's curve records, the one ranked and plotted (else any, e.g. lowrank)
STRENGTH_AXIS = {
    "pruning": "sparsity",
    "quantization": "strength = 1 - bits/16",
    "lowrank": "strength = 1 - kept rank fraction",
    "other": "compression strength",
}
# The method's own level on a second axis of the plots (pruning's level is its strength).
LEVEL_AXIS = {
    family: (LEVEL_NAMES[family], functools.partial(level_of, family), functools.partial(strength, family))
    for family in ("quantization", "lowrank")
}


@dataclass(frozen=True)
class ClaimRow:
    """One row of the claims tables: a claim's headline condition, its verdict, and its other conditions."""

    model: str
    setting: str
    method: str
    claim: str
    asserted: bool
    verdict: str
    statistic_name: str
    statistic: float | None
    low: float | None
    high: float | None
    pvalue: float | None
    needs: str
    other_conditions: str
    reason: str | None
    run_id: str
    test: str | None


@dataclass(frozen=True)
class RankingRow:
    """One method's retention of the hardest level of a setting, and its rank among its family."""

    model: str
    setting: str
    family: str
    rank: int | None
    method: str
    hardest_level: str
    easiest_level: str
    strengths: tuple[float, ...]
    retention_hardest: tuple[float, ...]
    retention_easiest: tuple[float, ...]
    mean_retention: float | None
    easy_hard_gap: float | None
    slope: float | None
    slope_low: float | None
    slope_high: float | None
    run_id: str


@dataclass(frozen=True)
class SkippedRow:
    """A curve record the rankings leave out, and why."""

    model: str
    setting: str
    method: str
    claim: str
    why: str
    run_id: str


@dataclass(frozen=True)
class ScaleRow:
    """One model's drops at one strength every model of a (setting, method) was measured at."""

    setting: str
    family: str
    method: str
    strength: float
    model: str
    parameters: int | None
    hardest_level: str
    easiest_level: str
    drop_hardest: float
    drop_easiest: float


@dataclass(frozen=True)
class FailedRow:
    """A compression that failed in one of the runs read (its tests recorded nothing)."""

    run_id: str
    model_fingerprint: str
    method: str
    error: str
    tests: int


@dataclass(frozen=True)
class Leaderboard:
    """Everything exported: claims, rankings, the cross-model view, the winning entries and their provenance."""

    claims: tuple[ClaimRow, ...]
    informational: tuple[ClaimRow, ...]
    rankings: tuple[RankingRow, ...]
    skipped: tuple[SkippedRow, ...]
    scale: tuple[ScaleRow, ...]
    entries: tuple[Entry, ...]
    provenance: dict[str, Any]
    failed: tuple[FailedRow, ...] = ()

    def models(self) -> list[str]:
        """The models with a ranking, sorted."""
        return sorted({r.model for r in self.rankings})

    def all_models(self) -> list[str]:
        """Every model with a claim, sorted."""
        return sorted({c.model for c in (*self.claims, *self.informational)})


# --------------------------------------------------------------------------- input


def parse_formats(text: str) -> tuple[str, ...]:
    """A comma-separated subset of ``md,csv,json,html,png`` (order kept, repeats dropped)."""
    parts = [p.strip().lower() for p in str(text).split(",") if p.strip()]
    unknown = [p for p in parts if p not in FORMATS]
    if not parts or unknown:
        raise ConfigError(f"--formats takes a comma-separated subset of {','.join(FORMATS)}; got {text!r}")
    return tuple(dict.fromkeys(parts))


def curve_of(record: ClaimRecord) -> CurveDetails | None:
    """The drop-vs-strength curve a record holds, if any."""
    return record.details if isinstance(record.details, CurveDetails) else None


def curve_entries(entries: Iterable[Entry]) -> dict[tuple[str, str, str], Entry]:
    """One curve entry per (model, setting, method): its ``monotonic`` record, else another curve record."""
    curves: dict[tuple[str, str, str], Entry] = {}
    for e in entries:
        if curve_of(e.record) is not None:
            key = e.key[:3]
            if key not in curves or e.record.claim == PREFERRED_CURVE:
                curves[key] = e
    return curves


# --------------------------------------------------------------------------- tables


def _conditions_text(record: ClaimRecord) -> str:
    parts = []
    for c in record.conditions[1:]:
        outcome = {True: "holds", False: "fails", None: "undefined"}[c.holds()]
        parts.append(f"{c.describe()} (needs {c.requirement()}: {outcome})")
    return "; ".join(parts)


def claim_row(entry: Entry) -> ClaimRow:
    """The claims-table row of one entry."""
    r, head = entry.record, entry.record.headline
    return ClaimRow(
        model=r.model, setting=r.setting, method=r.method, claim=r.claim, asserted=r.asserted, verdict=r.verdict,
        statistic_name=head.name, statistic=head.statistic,
        low=head.interval.low if head.interval else None, high=head.interval.high if head.interval else None,
        pvalue=head.pvalue, needs=head.requirement(), other_conditions=_conditions_text(r), reason=r.reason,
        run_id=entry.run_id, test=r.test,
    )


def _rounded(values: Iterable[float]) -> set[float]:
    return {round(v, STRENGTH_DIGITS) for v in values}


def _unrankable(record: ClaimRecord) -> str | None:
    """Why a curve record cannot be ranked, or None."""
    unmeasured = [s.method for s in record.provenance.studies if not s.measured]
    if unmeasured:
        return (f"its configurations carry no measured levels (what was verified after compression) for "
                f"{', '.join(unmeasured)}")
    curve = curve_of(record)
    swept = _rounded(c.strength for s in record.provenance.studies for c in s.configurations
                     if c.strength is not None and c.strength > 0)
    if curve is not None and _rounded(curve.strengths) != swept:
        return (f"its curve's strengths {sorted(_rounded(curve.strengths))} are not its configurations' "
                f"{sorted(swept)}")
    return None


def _ranking_group(curves: list[Entry], slopes: dict[tuple[str, str, str], Entry], family: str) -> list[RankingRow]:
    """Rank the curve entries of one (model, setting, family) at the strengths all of them were measured at."""
    common = tuple(sorted(set.intersection(*(_rounded(curve_of(e.record).strengths) for e in curves))))
    if not common:
        log.warning("%s %s: %s methods share no strength; not ranked", curves[0].record.model,
                    curves[0].record.setting, family)
    rows = []
    for e in curves:
        curve = curve_of(e.record)
        hard, easy = curve.retention(curve.hardest), curve.retention(curve.easiest)
        hard_at, easy_at = tuple(hard[s] for s in common), tuple(easy[s] for s in common)
        slope_entry = slopes.get(e.key[:3])
        level = slope_entry.record.details.slopes.get(curve.hardest) if slope_entry else None
        rows.append(RankingRow(
            model=e.record.model, setting=e.record.setting, family=family, rank=None, method=e.record.method,
            hardest_level=curve.hardest, easiest_level=curve.easiest, strengths=common,
            retention_hardest=hard_at, retention_easiest=easy_at,
            mean_retention=sum(hard_at) / len(hard_at) if common else None,
            easy_hard_gap=sum(a - b for a, b in zip(easy_at, hard_at)) / len(hard_at) if common else None,
            slope=level.slope if level else None, slope_low=level.low if level else None,
            slope_high=level.high if level else None, run_id=e.run_id,
        ))
    rows.sort(key=lambda row: (row.mean_retention is None, -(row.mean_retention or 0.0), row.method))
    return [replace(row, rank=i + 1 if row.mean_retention is not None else None) for i, row in enumerate(rows)]


def rank_methods(entries: Sequence[Entry]) -> tuple[list[RankingRow], list[SkippedRow]]:
    """Per model and setting, each family's methods ranked by mean retention of the hardest level; and the skipped."""
    groups: dict[tuple[str, str, str], list[Entry]] = {}
    skipped = []
    for key, e in sorted(curve_entries(entries).items()):
        why = _unrankable(e.record)
        if why:
            skipped.append(SkippedRow(*key, e.record.claim, why, e.run_id))
            log.warning("not ranked: %s %s %s %s: %s", *key, e.record.claim, why)
            continue
        groups.setdefault((key[0], key[1], e.record.family), []).append(e)
    slopes = {e.key[:3]: e for e in entries if e.record.claim == "difficulty" and e.record.details is not None
              and e.record.verdict != "undefined"}
    rows = []
    order = {f: i for i, f in enumerate(FAMILY_ORDER)}
    for (_, _, family), group in sorted(groups.items(), key=lambda kv: (*kv[0][:2], order.get(kv[0][2], 99))):
        rows.extend(_ranking_group(group, slopes, family))
    return rows, skipped


def scale_rows(entries: Sequence[Entry]) -> list[ScaleRow]:
    """Per (setting, method) measured on 2 or more models: each model's drops at the strengths all share."""
    by_method: dict[tuple[str, str], list[Entry]] = {}
    for (_, setting, method), e in sorted(curve_entries(entries).items()):
        by_method.setdefault((setting, method), []).append(e)
    rows = []
    for (setting, method), group in by_method.items():
        if len(group) < 2:
            continue
        common = sorted(set.intersection(*(_rounded(curve_of(e.record).strengths) for e in group)))
        group.sort(key=lambda e: (e.record.provenance.model_parameters or 0, e.record.model))
        for s in common:
            for e in group:
                curve = curve_of(e.record)
                hard, easy = curve.retention(curve.hardest), curve.retention(curve.easiest)
                rows.append(ScaleRow(setting, e.record.family, method, s, e.record.model,
                                     e.record.provenance.model_parameters, curve.hardest, curve.easiest,
                                     hard[s] - 1.0, easy[s] - 1.0))
    return rows


def _provenance(runs: Sequence[RunRecord], entries: Sequence[Entry]) -> dict[str, Any]:
    used = {e.run_id for e in entries}
    fingerprints: dict[str, set[str]] = {}
    parameters: dict[str, set[int]] = {}
    for e in entries:
        fingerprints.setdefault(e.record.model, set()).add(e.record.provenance.model_fingerprint)
        if e.record.provenance.model_parameters is not None:
            parameters.setdefault(e.record.model, set()).add(e.record.provenance.model_parameters)
    return {
        "runs": [{"run_id": r.run_id, "created": r.created.isoformat(), "budget": r.options.get("budget"),
                  "seed": r.options.get("seed"), "models": sorted({c.model for c in r.claims})}
                 for r in sorted(runs, key=lambda r: (r.created, r.run_id)) if r.run_id in used],
        "model_fingerprints": {m: sorted(fps) for m, fps in sorted(fingerprints.items())},
        "model_parameters": {m: sorted(ps) for m, ps in sorted(parameters.items())},
        "note": schema_note([r for r in runs if r.run_id in used]),
    }


def failed_rows(runs: Sequence[RunRecord]) -> list[FailedRow]:
    """Every compression that failed in ``runs``, newest run first."""
    rows = []
    for run in sorted(runs, key=lambda r: (r.created, r.run_id), reverse=True):
        for f in run.failed_compressions:
            params = ",".join(f"{k}={v}" for k, v in sorted(f.method.get("params", {}).items()))
            rows.append(FailedRow(run.run_id, f.model_fingerprint, f"{f.method.get('method', '?')}[{params}]",
                                  f.error, len(f.tests)))
    return rows


def build_leaderboard(runs: Sequence[RunRecord]) -> Leaderboard:
    """The leaderboard of the newest claim records across ``runs``, with the compressions that failed in them."""
    entries = newest_entries(runs)
    failed = failed_rows(runs)
    if not entries:
        why = (f"; {len(failed)} compressions failed in them, first: {failed[0].method} on model "
               f"{failed[0].model_fingerprint}: {failed[0].error}") if failed else ""
        raise ConfigError(f"no claim records in {', '.join(str(r.path) for r in runs)}; "
                          f"the runs recorded nothing to rank{why}")
    rows = sorted((claim_row(e) for e in entries), key=lambda c: (c.model, c.setting, c.claim, c.method))
    rankings, skipped = rank_methods(entries)
    return Leaderboard(tuple(r for r in rows if r.asserted), tuple(r for r in rows if not r.asserted),
                       tuple(rankings), tuple(skipped), tuple(scale_rows(entries)), tuple(entries),
                       _provenance(runs, entries), tuple(failed))


# --------------------------------------------------------------------------- text formats

Table = tuple[list[str], list[list[str]]]
_DASH = "–"


def _num(value: float | None, spec: str = ".3f") -> str:
    return _DASH if value is None else format(value, spec)


def _ci(low: float | None, high: float | None) -> str:
    return _DASH if low is None or high is None else f"[{low:.3f}, {high:.3f}]"


def _params(value: int | None) -> str:
    if value is None:
        return "? parameters"
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= size:
            return f"{value / size:.3g}{unit}"
    return str(value)


def claims_table(board: Leaderboard) -> Table:
    """The asserted claims as header and formatted cells."""
    header = ["model", "setting", "method", "claim", "statistic", "CI", "p", "needs", "verdict", "other conditions",
              "why"]
    rows = [[c.model, c.setting, c.method, c.claim, _num(c.statistic, ".4f"), _ci(c.low, c.high),
             _num(c.pvalue, ".3g"), c.needs, c.verdict, c.other_conditions or _DASH,
             c.reason if c.verdict != "holds" and c.reason else _DASH]
            for c in board.claims]
    return header, rows


def informational_table(board: Leaderboard) -> Table:
    """The claims recorded for information only (never asserted, never judged)."""
    header = ["model", "setting", "method", "claim", "statistic", "CI", "recorded by"]
    rows = [[c.model, c.setting, c.method, c.claim, _num(c.statistic, ".4f"), _ci(c.low, c.high), c.test or _DASH]
            for c in board.informational]
    return header, rows


def ranking_table(board: Leaderboard, model: str) -> Table:
    """One model's ranking as header and formatted cells."""
    header = ["setting", "family", "rank", "method", "hardest level", "retention at strength",
              "mean retention", "easy-hard gap", "hardest slope [CI]"]
    rows = []
    for r in (r for r in board.rankings if r.model == model):
        at = ", ".join(f"{s:g}: {v:.3f}" for s, v in zip(r.strengths, r.retention_hardest)) or _DASH
        slope = _DASH if r.slope is None else f"{r.slope:.3f} {_ci(r.slope_low, r.slope_high)}"
        rows.append([r.setting, r.family, _DASH if r.rank is None else str(r.rank), r.method, r.hardest_level, at,
                     _num(r.mean_retention), _num(r.easy_hard_gap), slope])
    return header, rows


def skipped_table(board: Leaderboard) -> Table:
    """The curve records left out of the rankings, and why."""
    return (["model", "setting", "method", "claim", "why"],
            [[s.model, s.setting, s.method, s.claim, s.why] for s in board.skipped])


def failed_table(board: Leaderboard) -> Table:
    """The compressions that failed, per run."""
    return (["run", "model fingerprint", "method", "tests", "error"],
            [[f.run_id, f.model_fingerprint, f.method, str(f.tests), f.error] for f in board.failed])


def cross_model_table(board: Leaderboard) -> Table:
    """Each asserted claim's statistic and verdict per model, side by side (models by parameter count)."""
    models = _models_by_size(board)
    header = ["setting", "method", "claim", *(f"{m} ({_params(_parameters(board, m))})" for m in models)]
    cells: dict[tuple[str, str, str], dict[str, str]] = {}
    for c in board.claims:
        value = "undefined" if c.statistic is None else f"{c.statistic:.4f} {c.verdict}"
        cells.setdefault((c.setting, c.method, c.claim), {})[c.model] = value
    rows = [[*key, *(found.get(m, _DASH) for m in models)] for key, found in sorted(cells.items())]
    return header, rows


def scale_table(board: Leaderboard) -> Table:
    """Drops at strengths every model was measured at, against the model's parameter count."""
    header = ["setting", "method", "strength", "model", "parameters", "hardest level", "drop (hardest)",
              "drop (easiest)"]
    rows = [[r.setting, r.method, f"{r.strength:g}", r.model, _params(r.parameters), r.hardest_level,
             f"{r.drop_hardest:.3f}", f"{r.drop_easiest:.3f}"] for r in board.scale]
    return header, rows


def _parameters(board: Leaderboard, model: str) -> int | None:
    found = board.provenance["model_parameters"].get(model)
    return found[0] if found else None


def _models_by_size(board: Leaderboard) -> list[str]:
    return sorted(board.all_models(), key=lambda m: (_parameters(board, m) or 0, m))


RANKING_NOTE = (
    "Methods ranked within each setting and family (as recorded) by retention (1 + normalized drop) on the "
    "setting's hardest level, at the compression strengths every method of the family was measured at; the easy-hard "
    "gap is retention on the easiest level minus retention on the hardest (mean over those strengths); the slope is "
    "the Theil–Sen slope of the hardest level's drop vs strength with its bootstrap interval."
)
CLAIMS_NOTE = (
    "Asserted claims. statistic, CI and p: the claim's headline statistic, its interval (as recorded: a bootstrap "
    "over items, or a Student-t interval over seeds) and p-value; needs: what the verdict compares (the estimate, or "
    "the whole interval); verdict: holds, fails, or undefined (the data leave the statistic undefined: no number, "
    "and why); other conditions: the claim's further requirements, each with its outcome."
)
INFORMATIONAL_NOTE = "Recorded for information, never asserted: no verdict is judged (e.g. a quantized method's curve)."
SKIPPED_NOTE = "Curve records left out of the rankings: the leaderboard ranks only what was verified after compression."
FAILED_NOTE = "Compressions that raised in the runs read, newest run first: the tests that needed them recorded nothing."
CROSS_MODEL_NOTE = (
    "Each asserted claim's headline statistic and verdict per model, models ordered by parameter count; below, "
    "each method's normalized drops at the strengths every model was measured at, against the parameter count."
)


def provenance_line(board: Leaderboard) -> str:
    """Run ids with budget and seed, and the model fingerprints the numbers rest on."""
    runs = "; ".join(f"{r['run_id']} (budget {r['budget']}, seed {r['seed']})" for r in board.provenance["runs"])
    fps = "; ".join(f"{m} {', '.join(v)}" for m, v in board.provenance["model_fingerprints"].items())
    note = f" Note: {board.provenance['note']}." if board.provenance.get("note") else ""
    return f"Runs: {runs}. Model fingerprints: {fps or _DASH}.{note}"


def _md_table(table: Table) -> list[str]:
    header, rows = table
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]


def _sections(board: Leaderboard) -> list[tuple[str, str, Table]]:
    """(title, note, table) of every section shown, in order."""
    parts = [("Claims", CLAIMS_NOTE, claims_table(board))]
    if board.informational:
        parts.append(("Informational records", INFORMATIONAL_NOTE, informational_table(board)))
    parts += [(f"Ranking: {m}", RANKING_NOTE, ranking_table(board, m)) for m in board.models()]
    if board.skipped:
        parts.append(("Not ranked", SKIPPED_NOTE, skipped_table(board)))
    if board.failed:
        parts.append(("Compressions that failed", FAILED_NOTE, failed_table(board)))
    if len(board.all_models()) > 1:
        parts.append(("Across models", CROSS_MODEL_NOTE, cross_model_table(board)))
        if board.scale:
            parts.append(("Drop vs model size", "", scale_table(board)))
    return parts


def render_markdown(board: Leaderboard) -> str:
    """The leaderboard as Markdown."""
    lines = ["# junkdna leaderboard", "", provenance_line(board)]
    for title, note, table in _sections(board):
        lines += ["", f"## {title}", ""] + ([note, ""] if note else []) + _md_table(table)
    return "\n".join(lines) + "\n"


def _csv(header: list[str], rows: Iterable[Iterable[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    return buf.getvalue()


def render_claims_csv(board: Leaderboard) -> str:
    """Every claim (asserted and informational) as CSV, one row per claim, unrounded numbers."""
    header = [f.name for f in fields(ClaimRow)]
    return _csv(header, ([getattr(c, h) for h in header] for c in (*board.claims, *board.informational)))


def render_ranking_csv(board: Leaderboard) -> str:
    """The rankings as tidy CSV: one row per (model, setting, method, strength), unrounded numbers."""
    header = ["model", "setting", "family", "rank", "method", "hardest_level", "easiest_level", "strength",
              "retention_hardest", "retention_easiest", "mean_retention", "easy_hard_gap", "slope", "slope_low",
              "slope_high", "run_id"]
    rows = []
    for r in board.rankings:
        for s, hard, easy in zip(r.strengths, r.retention_hardest, r.retention_easiest):
            rows.append([r.model, r.setting, r.family, r.rank, r.method, r.hardest_level, r.easiest_level, s, hard,
                         easy, r.mean_retention, r.easy_hard_gap, r.slope, r.slope_low, r.slope_high, r.run_id])
    return _csv(header, rows)


def render_scale_csv(board: Leaderboard) -> str:
    """The drops at common strengths per model (the cross-model view) as tidy CSV."""
    header = [f.name for f in fields(ScaleRow)]
    return _csv(header, ([getattr(r, h) for h in header] for r in board.scale))


def render_json(board: Leaderboard) -> str:
    """The leaderboard as JSON: provenance, claims, rankings by model, what was not ranked, the cross-model view."""
    body = {
        "schema": RECORD_SCHEMA,
        "provenance": board.provenance,
        "claims": [asdict(c) for c in board.claims],
        "informational": [asdict(c) for c in board.informational],
        "rankings": {m: [asdict(r) for r in board.rankings if r.model == m] for m in board.models()},
        "not_ranked": [asdict(s) for s in board.skipped],
        "scale": [asdict(r) for r in board.scale],
        **({"failed_compressions": [asdict(f) for f in board.failed]} if board.failed else {}),
    }
    return json.dumps(body, indent=2) + "\n"


def _html_table(table: Table) -> str:
    header, rows = table
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}"
        "th,td{border:1px solid #ccc;padding:3px 8px;text-align:left}th{background:#f3f3f3}"
        "img{max-width:48%;margin:4px}")


def render_html(board: Leaderboard, images: Sequence[str] = ()) -> str:
    """The leaderboard as one HTML page; ``images`` are relative paths of plots to show below the tables."""
    parts = [(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>junkdna leaderboard</title>"
              f"<style>{_CSS}</style></head><body><h1>junkdna leaderboard</h1>"),
             f"<p>{html.escape(provenance_line(board))}</p>"]
    for title, note, table in _sections(board):
        parts += [f"<h2>{html.escape(title)}</h2>" + (f"<p>{html.escape(note)}</p>" if note else ""),
                  _html_table(table)]
    if images:
        parts.append("<h2>Plots</h2>" + "".join(f"<img src='{html.escape(p)}' alt='{html.escape(p)}'>"
                                                for p in images))
    return "".join(parts) + "</body></html>\n"
