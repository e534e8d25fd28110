"""The leaderboard: run records turned into a claims table, method rankings and plots.

Reads the run records the pytest plugin writes (``run-*.json``), keeps the newest
record per (model, setting, method, claim), and exports:

- a claims table: every claim's statistic, interval, p-value, threshold and verdict;
- one ranking per model: methods ranked by how much of the hardest level they
  retain (retention = 1 + normalized drop) at the compression strengths every
  method of a family was measured at, with the easy-hard retention gap;
- plots: normalized drop vs strength per level, Theil–Sen slope vs difficulty,
  and pruning vs quantization side by side (paper Figure 7).
"""

from __future__ import annotations

import csv
import functools
import html
import io
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from junkdna_core.compress.strength import LEVEL_NAMES, level_of, strength
from junkdna_core.config.errors import ConfigError
from junkdna_core.config.method_specs import parse_method_spec
from junkdna_core.results.records import RECORD_SCHEMA

log = logging.getLogger(__name__)

FORMATS = ("md", "csv", "json", "html", "png")
DEFAULT_RESULTS = Path("jd-results")
DEFAULT_OUT = DEFAULT_RESULTS / "leaderboard"
RUN_GLOB = "run-*.json"
CURVE_CLAIMS = ("monotonic", "lowrank")  # claims whose details hold drop-vs-strength curves
FAMILY_ORDER = ("pruning", "quantization", "lowrank", "other")
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
_RUN_KEYS = ("schema", "run_id", "created", "options", "records")
_CLAIM_KEYS = ("claim", "setting", "method", "model", "statistic_name", "statistic", "threshold", "direction",
               "holds", "details")
_DETAIL_KEYS = {"monotonic": ("drops", "strengths", "difficulty"), "lowrank": ("drops", "strengths", "difficulty"),
                "difficulty": ("slopes", "difficulty")}


@dataclass(frozen=True)
class Entry:
    """One claim record and the run it came from."""

    run_id: str
    record: dict[str, Any]

    @property
    def key(self) -> tuple[str, str, str, str]:
        """(model, setting, method, claim): a newer run replaces an older one's record with the same key."""
        r = self.record
        return r["model"], r["setting"], r["method"], r["claim"]


@dataclass(frozen=True)
class RunRecord:
    """One run record file, validated."""

    path: Path
    run_id: str
    created: datetime
    options: dict[str, Any]
    entries: tuple[Entry, ...]


@dataclass(frozen=True)
class ClaimRow:
    """One row of the claims table."""

    model: str
    setting: str
    method: str
    claim: str
    statistic_name: str
    statistic: float
    low: float | None
    high: float | None
    pvalue: float | None
    direction: str
    threshold: float
    holds: bool
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
class Leaderboard:
    """Everything exported: the claims, the rankings, the winning entries and their provenance."""

    claims: tuple[ClaimRow, ...]
    rankings: tuple[RankingRow, ...]
    entries: tuple[Entry, ...]
    provenance: dict[str, Any]

    def models(self) -> list[str]:
        """The models with a ranking, sorted."""
        return sorted({r.model for r in self.rankings})


# --------------------------------------------------------------------------- input


def parse_formats(text: str) -> tuple[str, ...]:
    """A comma-separated subset of ``md,csv,json,html,png`` (order kept, repeats dropped)."""
    parts = [p.strip().lower() for p in str(text).split(",") if p.strip()]
    unknown = [p for p in parts if p not in FORMATS]
    if not parts or unknown:
        raise ConfigError(f"--formats takes a comma-separated subset of {','.join(FORMATS)}; got {text!r}")
    return tuple(dict.fromkeys(parts))


def find_run_records(paths: Sequence[Path]) -> list[Path]:
    """The run record files named by ``paths``: files as given, directories expanded to their ``run-*.json``."""
    found: list[Path] = []
    for path in paths or (DEFAULT_RESULTS,):
        if path.is_dir():
            runs = sorted(path.glob(RUN_GLOB))
            if not runs:
                raise ConfigError(f"{path} holds no run records ({RUN_GLOB}); run `pytest benchmarks` first "
                                  "or pass run record files")
            found.extend(runs)
        elif path.is_file():
            found.append(path)
        else:
            raise ConfigError(f"{path} does not exist; expected a run record ({RUN_GLOB}) or a directory of them")
    return found


def _not_a_record(path: Path, why: str) -> ConfigError:
    return ConfigError(f"{path} is not a junkdna run record ({why}); expected the JSON the pytest plugin "
                       f"writes, with keys {', '.join(_RUN_KEYS)}")


def is_measured(record: dict[str, Any]) -> bool:
    """False for a claim the data left undefined (it has a reason but no curves or slopes)."""
    return record["statistic_name"] != "undefined"


def _check_claim(path: Path, index: int, record: dict[str, Any]) -> None:
    missing = [k for k in _CLAIM_KEYS if k not in record]
    if missing:
        raise _not_a_record(path, f"record {index} lacks {', '.join(missing)}")
    if not is_measured(record):
        return
    details = record["details"]
    needed = _DETAIL_KEYS.get(record["claim"], ())
    if not isinstance(details, dict) or any(k not in details for k in needed):
        raise _not_a_record(path, f"record {index} ({record['claim']}) needs details with {', '.join(needed)}")
    if "drops" in needed and any(len(d) != len(details["strengths"]) for d in details["drops"].values()):
        raise _not_a_record(path, f"record {index}: each level needs one drop per strength")


def load_run_record(path: Path) -> RunRecord:
    """Read and validate one run record; records without a ``claim`` (other kinds of data) are skipped."""
    try:
        body = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _not_a_record(path, f"unreadable JSON: {exc}") from None
    if not isinstance(body, dict) or any(k not in body for k in _RUN_KEYS):
        raise _not_a_record(path, "missing keys")
    if body["schema"] != RECORD_SCHEMA:
        raise ConfigError(f"{path}: unknown run record schema {body['schema']!r}; this junkdna reads schema "
                          f"{RECORD_SCHEMA}")
    try:
        created = datetime.fromisoformat(body["created"])
    except (TypeError, ValueError):
        raise _not_a_record(path, f"created is not an ISO time: {body['created']!r}") from None
    if created.tzinfo is None:  # records.py writes UTC; a hand-edited time without a zone is read as UTC
        created = created.replace(tzinfo=timezone.utc)
    if not isinstance(body["records"], list) or not isinstance(body["options"], dict):
        raise _not_a_record(path, "records must be a list and options an object")
    entries = []
    for index, record in enumerate(body["records"]):
        if isinstance(record, dict) and "claim" in record:
            _check_claim(path, index, record)
            entries.append(Entry(str(body["run_id"]), record))
    return RunRecord(path, str(body["run_id"]), created, body["options"], tuple(entries))


def newest_entries(runs: Iterable[RunRecord]) -> list[Entry]:
    """One entry per (model, setting, method, claim): the one from the newest run (by ``created``)."""
    winners: dict[tuple[str, str, str, str], Entry] = {}
    for run in sorted(runs, key=lambda r: (r.created, r.run_id)):
        for entry in run.entries:
            winners[entry.key] = entry
    return sorted(winners.values(), key=lambda e: e.key)


# --------------------------------------------------------------------------- tables


def method_family(method: str) -> str:
    """The registered family of ``method`` (a name or a variant's label), else ``other``."""
    from junkdna_core.compress.registry import get_method

    try:
        return get_method(parse_method_spec(method).name).family
    except ConfigError:
        return "other"


def claim_row(entry: Entry) -> ClaimRow:
    """The claims-table row of one entry."""
    r = entry.record
    return ClaimRow(
        model=r["model"], setting=r["setting"], method=r["method"], claim=r["claim"],
        statistic_name=r["statistic_name"], statistic=r["statistic"], low=r.get("low"), high=r.get("high"),
        pvalue=r.get("pvalue"), direction=r["direction"], threshold=r["threshold"], holds=bool(r["holds"]),
        reason=r.get("reason"), run_id=entry.run_id, test=r.get("test"),
    )


def _extremes(difficulty: dict[str, float]) -> tuple[str, str]:
    """(easiest, hardest) level names."""
    return min(difficulty, key=difficulty.get), max(difficulty, key=difficulty.get)


def _retention(details: dict[str, Any], level: str, strengths: Sequence[float]) -> tuple[float, ...]:
    index = {round(s, 6): i for i, s in enumerate(details["strengths"])}
    return tuple(1.0 + details["drops"][level][index[round(s, 6)]] for s in strengths)


def _ranking_group(curves: list[Entry], slopes: dict[tuple[str, str, str], Entry], family: str) -> list[RankingRow]:
    """Rank the curve entries of one (model, setting, family) at the strengths all of them were measured at."""
    grids = [{round(s, 6) for s in e.record["details"]["strengths"]} for e in curves]
    common = tuple(sorted(set.intersection(*grids)))
    if not common:
        log.warning("%s %s: %s methods share no strength; not ranked", curves[0].record["model"],
                    curves[0].record["setting"], family)
    rows = []
    for e in curves:
        r, details = e.record, e.record["details"]
        easiest, hardest = _extremes(details["difficulty"])
        hard, easy = _retention(details, hardest, common), _retention(details, easiest, common)
        slope = slopes.get((r["model"], r["setting"], r["method"]))
        level_slope = slope.record["details"]["slopes"].get(hardest, {}) if slope else {}
        rows.append(RankingRow(
            model=r["model"], setting=r["setting"], family=family, rank=None, method=r["method"],
            hardest_level=hardest, easiest_level=easiest, strengths=common,
            retention_hardest=hard, retention_easiest=easy,
            mean_retention=sum(hard) / len(hard) if common else None,
            easy_hard_gap=sum(a - b for a, b in zip(easy, hard)) / len(hard) if common else None,
            slope=level_slope.get("slope"), slope_low=level_slope.get("low"), slope_high=level_slope.get("high"),
            run_id=e.run_id,
        ))
    rows.sort(key=lambda row: (row.mean_retention is None, -(row.mean_retention or 0.0), row.method))
    return [_with_rank(row, i + 1 if row.mean_retention is not None else None) for i, row in enumerate(rows)]


def _with_rank(row: RankingRow, rank: int | None) -> RankingRow:
    return RankingRow(**{**{f.name: getattr(row, f.name) for f in fields(row)}, "rank": rank})


def rank_methods(entries: Sequence[Entry]) -> list[RankingRow]:
    """Per model and setting, each family's methods ranked by mean retention of the hardest level."""
    curves: dict[tuple[str, str, str], Entry] = {}
    for e in entries:  # one curve per method: a monotonic record wins over a lowrank one
        if e.record["claim"] in CURVE_CLAIMS and is_measured(e.record):
            key = (e.record["model"], e.record["setting"], e.record["method"])
            if key not in curves or e.record["claim"] == CURVE_CLAIMS[0]:
                curves[key] = e
    slopes = {(e.record["model"], e.record["setting"], e.record["method"]): e
              for e in entries if e.record["claim"] == "difficulty" and is_measured(e.record)}
    groups: dict[tuple[str, str, str], list[Entry]] = {}
    for (model, setting, method), e in sorted(curves.items()):
        family = method_family(method)
        groups.setdefault((model, setting, family), []).append(e)
    rows = []
    for (_, _, family), group in sorted(groups.items(), key=lambda kv: (*kv[0][:2], FAMILY_ORDER.index(kv[0][2]))):
        rows.extend(_ranking_group(group, slopes, family))
    return rows


def _provenance(runs: Sequence[RunRecord], entries: Sequence[Entry]) -> dict[str, Any]:
    used = {e.run_id for e in entries}
    fingerprints: dict[str, set[str]] = {}
    for e in entries:
        fp = (e.record.get("provenance") or {}).get("model_fingerprint")
        if fp:
            fingerprints.setdefault(e.record["model"], set()).add(fp)
    return {
        "runs": [{"run_id": r.run_id, "created": r.created.isoformat(), "budget": r.options.get("budget"),
                  "seed": r.options.get("seed"), "model": r.options.get("model")}
                 for r in sorted(runs, key=lambda r: (r.created, r.run_id)) if r.run_id in used],
        "model_fingerprints": {m: sorted(fps) for m, fps in sorted(fingerprints.items())},
    }


def build_leaderboard(runs: Sequence[RunRecord]) -> Leaderboard:
    """The leaderboard of the newest claim records across ``runs``."""
    entries = newest_entries(runs)
    if not entries:
        raise ConfigError(f"no claim records in {', '.join(str(r.path) for r in runs)}; "
                          "the runs recorded nothing to rank")
    claims = sorted((claim_row(e) for e in entries), key=lambda c: (c.model, c.setting, c.claim, c.method))
    return Leaderboard(tuple(claims), tuple(rank_methods(entries)), tuple(entries), _provenance(runs, entries))


# --------------------------------------------------------------------------- text formats

Table = tuple[list[str], list[list[str]]]
_DASH = "–"


def _num(value: float | None, spec: str = ".3f") -> str:
    return _DASH if value is None else format(value, spec)


def _ci(low: float | None, high: float | None) -> str:
    return _DASH if low is None or high is None else f"[{low:.3f}, {high:.3f}]"


def claims_table(board: Leaderboard) -> Table:
    """The claims table as header and formatted cells."""
    header = ["model", "setting", "method", "claim", "statistic", "CI", "p", "threshold", "verdict"]
    rows = [[c.model, c.setting, c.method, c.claim, _num(c.statistic, ".4f"), _ci(c.low, c.high),
             _num(c.pvalue, ".3g"), f"{c.direction} {c.threshold:g}", "holds" if c.holds else "fails"]
            for c in board.claims]
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


RANKING_NOTE = (
    "Methods ranked within each setting and family by retention (1 + normalized drop) on the setting's hardest "
    "level, at the compression strengths every method of the family was measured at; the easy-hard gap is "
    "retention on the easiest level minus retention on the hardest (mean over those strengths); the slope is "
    "the Theil–Sen slope of the hardest level's drop vs strength with its bootstrap interval."
)


CLAIMS_NOTE = (
    "CI: the record's bootstrap interval (for the difficulty claims, of slope(hardest) - slope(easiest)); "
    "p: the record's p-value; the verdict compares the statistic with the threshold."
)


def provenance_line(board: Leaderboard) -> str:
    """Run ids with budget and seed, and the model fingerprints the numbers rest on."""
    runs = "; ".join(f"{r['run_id']} (budget {r['budget']}, seed {r['seed']})" for r in board.provenance["runs"])
    fps = "; ".join(f"{m} {', '.join(v)}" for m, v in board.provenance["model_fingerprints"].items())
    return f"Runs: {runs}. Model fingerprints: {fps or _DASH}."


def _md_table(table: Table) -> list[str]:
    header, rows = table
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]


def render_markdown(board: Leaderboard) -> str:
    """The leaderboard as Markdown."""
    lines = ["# junkdna leaderboard", "", provenance_line(board), "", "## Claims", "", CLAIMS_NOTE, "",
             *_md_table(claims_table(board))]
    for model in board.models():
        lines += ["", f"## Ranking: {model}", "", RANKING_NOTE, "", *_md_table(ranking_table(board, model))]
    return "\n".join(lines) + "\n"


def _csv(header: list[str], rows: Iterable[Iterable[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    return buf.getvalue()


def render_claims_csv(board: Leaderboard) -> str:
    """The claims table as CSV, one row per claim, unrounded numbers."""
    header = [f.name for f in fields(ClaimRow)]
    return _csv(header, ([getattr(c, h) for h in header] for c in board.claims))


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


def render_json(board: Leaderboard) -> str:
    """The leaderboard as JSON: provenance, claims, and the rankings by model."""
    body = {
        "schema": RECORD_SCHEMA,
        "provenance": board.provenance,
        "claims": [asdict(c) for c in board.claims],
        "rankings": {m: [asdict(r) for r in board.rankings if r.model == m] for m in board.models()},
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
             f"<p>{html.escape(provenance_line(board))}</p><h2>Claims</h2><p>{html.escape(CLAIMS_NOTE)}</p>",
             _html_table(claims_table(board))]
    for model in board.models():
        parts += [f"<h2>Ranking: {html.escape(model)}</h2><p>{html.escape(RANKING_NOTE)}</p>",
                  _html_table(ranking_table(board, model))]
    if images:
        parts.append("<h2>Plots</h2>" + "".join(f"<img src='{html.escape(p)}' alt='{html.escape(p)}'>"
                                                for p in images))
    return "".join(parts) + "</body></html>\n"
