"""Regression checks between run records: did a claim or a method's hard-task retention get worse?

Records of a BASELINE and a CURRENT run (files or directories, newest record per
(model, setting, method, claim) as in the leaderboard) are matched by that key,
and for each pair these quantities are compared:

- the verdict: a claim that held and no longer holds is always a regression;
- the claim statistic: "worse" is against the threshold direction (for ``<=``
  larger is worse, for ``>=`` smaller is worse). When the baseline record's
  interval [low, high] brackets its statistic, the statistic is worse beyond its
  CI when the current one lies outside that interval on the worse side;
  otherwise (no interval, or an interval of another quantity) when it moved by
  more than the tolerance;
- for the difficulty claims, whose interval belongs to slope(hardest) -
  slope(easiest), that slope gap against the baseline's interval (larger is worse);
- for claims with drop curves (monotonic, lowrank), the retention of the
  baseline's hardest level (1 + normalized drop, hardest = largest
  ``details["difficulty"]``) at every strength both runs measured: worse when
  it fell by more than the tolerance at any of them.

The default tolerance, 0.05 absolute, is half the smallest step (0.1) of a
Spearman correlation over up to 5 sweep points, so any change of rank order in
a smoke sweep counts, while a retention must fall by 5% of the dense score.
Baseline records missing from the current run, or not comparable with it (a
changed direction, no common strength), are reported; with ``strict`` they fail
the comparison.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from junkdna_core.config.errors import ConfigError
from junkdna_core.results.leaderboard import CURVE_CLAIMS, Entry, find_run_records, load_run_record, newest_entries

DEFAULT_TOLERANCE = 0.05
FLOAT_NOISE = 1e-9  # changes this small are rounding, never a regression
STRENGTH_DIGITS = 6  # strengths are matched after rounding, as in the leaderboard

Status = Literal["regression", "improvement", "unchanged", "missing", "incomparable", "new"]
STATUS_ORDER: tuple[Status, ...] = ("regression", "improvement", "missing", "incomparable", "new", "unchanged")
FAILING: dict[bool, tuple[Status, ...]] = {False: ("regression",), True: ("regression", "missing", "incomparable")}


@dataclass(frozen=True)
class Change:
    """One quantity of one (model, setting, method, claim), compared between the baseline and the current run."""

    model: str
    setting: str
    method: str
    claim: str
    quantity: str
    status: Status
    baseline: float | None = None
    current: float | None = None
    allowed: str = ""
    note: str = ""

    @property
    def delta(self) -> float | None:
        """current - baseline, when both are numbers."""
        if self.baseline is None or self.current is None:
            return None
        return self.current - self.baseline

    def message(self) -> str:
        """One line naming the record, the quantity, and how much it moved against what was allowed."""
        where = f"{self.model} {self.setting} {self.method} {self.claim}: {self.quantity}"
        moved = ""
        if self.delta is not None:
            moved = f" {self.baseline:.3f} -> {self.current:.3f} ({self.delta:+.3f})"
        extra = "; ".join(p for p in (self.note, f"allowed: {self.allowed}" if self.allowed else "") if p)
        return f"{self.status.upper()} {where}{moved}" + (f" [{extra}]" if extra else "")


@dataclass(frozen=True)
class Comparison:
    """Every change between two sets of records, and whether they fail the check."""

    baseline_runs: tuple[str, ...]
    current_runs: tuple[str, ...]
    tolerance: float
    strict: bool
    changes: tuple[Change, ...]

    def with_status(self, *statuses: Status) -> list[Change]:
        """The changes of the given statuses, in table order."""
        return [c for c in self.changes if c.status in statuses]

    @property
    def failed(self) -> bool:
        """True on any regression, and with ``strict`` also on missing or incomparable records."""
        return bool(self.with_status(*FAILING[self.strict]))

    @property
    def exit_code(self) -> int:
        """1 when the comparison failed, else 0."""
        return 1 if self.failed else 0


# --------------------------------------------------------------------------- input


def parse_tolerance(text: str | float) -> float:
    """A finite absolute tolerance >= 0."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ConfigError(f"the tolerance must be a number >= 0; got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"the tolerance must be a finite number >= 0; got {text!r}")
    return value




def load_entries(path: Path) -> tuple[list[Entry], tuple[str, ...]]:
    """The newest claim record per key in the run record(s) at ``path``, and the run ids they come from."""
    runs = [load_run_record(p) for p in find_run_records([Path(path)])]
    return newest_entries(runs), tuple(r.run_id for r in runs)


def _require_claims(entries: Sequence[Entry], runs: tuple[str, ...]) -> None:
    if not entries:
        raise ConfigError(f"the baseline {', '.join(runs) or '(no runs)'} holds no claim records; compare against "
                          "a run record of `pytest benchmarks`")


def load_baseline(path: Path) -> tuple[list[Entry], tuple[str, ...]]:
    """:func:`load_entries` for a baseline, which must hold at least one claim record."""
    entries, runs = load_entries(path)
    _require_claims(entries, runs)
    return entries, runs


# --------------------------------------------------------------------------- judging


def _judge(baseline: float, current: float, larger_is_worse: bool, interval: tuple[float, float] | None,
           tolerance: float) -> Status:
    """Regression when ``current`` left the interval (or baseline +- tolerance) on the worse side."""
    low, high = interval if interval else (baseline - tolerance, baseline + tolerance)
    above, below = current > high + FLOAT_NOISE, current < low - FLOAT_NOISE
    if (above and larger_is_worse) or (below and not larger_is_worse):
        return "regression"
    return "improvement" if above or below else "unchanged"


def _allowed(interval: tuple[float, float] | None, tolerance: float) -> str:
    return f"baseline CI [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else f"tolerance {tolerance:g}"


def _statistic_interval(record: dict[str, Any]) -> tuple[float, float] | None:
    """The record's [low, high] when it is an interval of the statistic itself (it brackets it)."""
    low, high = record.get("low"), record.get("high")
    if low is None or high is None or not low <= record["statistic"] <= high:
        return None
    return float(low), float(high)


def _undefined(record: dict[str, Any]) -> bool:
    return record["statistic_name"] == "undefined"


def _verdict(base: dict[str, Any], cur: dict[str, Any], make: Callable[..., Change]) -> list[Change]:
    """A change of verdict: held -> does not hold is a regression, the reverse an improvement."""
    if bool(base["holds"]) == bool(cur["holds"]):
        return []
    status: Status = "regression" if base["holds"] else "improvement"
    why = f": {cur['reason']}" if cur.get("reason") else ""
    note = f"held, now does not hold{why}" if base["holds"] else "did not hold, now holds"
    return [make("verdict", status, note=note)]


def _statistic(base: dict[str, Any], cur: dict[str, Any], tolerance: float, make: Callable[..., Change]) -> Change:
    name = f"statistic {base['statistic_name']}"
    if base["direction"] != cur["direction"]:
        return make(name, "incomparable", note=f"direction {base['direction']} -> {cur['direction']}")
    if _undefined(base) != _undefined(cur):
        side = "baseline" if _undefined(base) else "current run"
        return make(name, "incomparable", note=f"undefined in the {side}")
    interval = _statistic_interval(base)
    status = _judge(base["statistic"], cur["statistic"], base["direction"] == "<=", interval, tolerance)
    return make(name, status, base["statistic"], cur["statistic"], allowed=_allowed(interval, tolerance),
                note=f"claim needs {base['direction']} {base['threshold']:g}")


def _slope_gap(base: dict[str, Any], cur: dict[str, Any], make: Callable[..., Change]) -> list[Change]:
    """The difficulty claims' slope(hardest) - slope(easiest) against the baseline's interval (larger is worse)."""
    gaps = [r["details"].get("hard_minus_easy") if isinstance(r["details"], dict) else None for r in (base, cur)]
    if gaps[0] is None or gaps[0]["difference"] == base["statistic"]:  # absent, or already the statistic
        return []
    name = "slope(hardest) - slope(easiest)"
    if gaps[1] is None:
        return [make(name, "incomparable", note="not in the current record")]
    interval = (gaps[0]["low"], gaps[0]["high"])
    if any(v is None for v in (*interval, gaps[0]["difference"], gaps[1]["difference"])):
        return [make(name, "incomparable", note="undefined in one of the runs")]
    status = _judge(gaps[0]["difference"], gaps[1]["difference"], True, interval, 0.0)
    return [make(name, status, gaps[0]["difference"], gaps[1]["difference"], allowed=_allowed(interval, 0.0))]


def hardest_retention(details: dict[str, Any], level: str) -> dict[float, float]:
    """Retention (1 + normalized drop) of ``level`` at each strength of a drop curve, keyed by rounded strength."""
    return {round(s, STRENGTH_DIGITS): 1.0 + d for s, d in zip(details["strengths"], details["drops"][level])}


def _retention(base: dict[str, Any], cur: dict[str, Any], tolerance: float,
               make: Callable[..., Change]) -> list[Change]:
    """The baseline's hardest level's retention at the common strengths: worst strength decides."""
    curves = [isinstance(r["details"], dict) and "drops" in r["details"] for r in (base, cur)]
    if base["claim"] not in CURVE_CLAIMS or not any(curves):
        return []
    if not all(curves):
        side = "current" if curves[0] else "baseline"
        return [make("retention(hardest level)", "incomparable", note=f"no drop curve in the {side} record")]
    difficulty = base["details"]["difficulty"]
    hardest = max(difficulty, key=difficulty.get)
    name = f"retention({hardest})"
    if hardest not in cur["details"]["drops"]:
        return [make(name, "incomparable", note=f"level {hardest} not in the current record")]
    before, after = hardest_retention(base["details"], hardest), hardest_retention(cur["details"], hardest)
    common = sorted(set(before) & set(after))
    if not common:
        return [make(name, "incomparable", note="no strength measured in both runs")]
    judged = {s: _judge(before[s], after[s], False, None, tolerance) for s in common}
    status: Status = next((s for s in ("regression", "improvement") if s in judged.values()), "unchanged")
    pick = [s for s in common if judged[s] == status]
    change = {s: after[s] - before[s] for s in pick}
    at = min(pick, key=change.get) if status == "regression" else max(pick, key=lambda s: abs(change[s]))
    return [make(name, status, before[at], after[at], allowed=_allowed(None, tolerance),
                 note=f"at strength {at:g}, the largest {'fall' if status == 'regression' else 'change'} of "
                      f"{len(common)} common strengths")]


def compare_pair(base: dict[str, Any], cur: dict[str, Any], tolerance: float = DEFAULT_TOLERANCE) -> list[Change]:
    """Every compared quantity of two records with the same (model, setting, method, claim)."""

    def make(quantity: str, status: Status, baseline: float | None = None, current: float | None = None,
             **kw: str) -> Change:
        return Change(base["model"], base["setting"], base["method"], base["claim"], quantity, status,
                      baseline, current, **kw)

    return [*_verdict(base, cur, make), _statistic(base, cur, tolerance, make), *_slope_gap(base, cur, make),
            *_retention(base, cur, tolerance, make)]


def _presence(entry: Entry, status: Status, note: str) -> Change:
    r = entry.record
    return Change(r["model"], r["setting"], r["method"], r["claim"], "record", status, note=note)


def compare_entries(baseline: Sequence[Entry], current: Sequence[Entry], *, tolerance: float = DEFAULT_TOLERANCE,
                    strict: bool = False, baseline_runs: tuple[str, ...] = (),
                    current_runs: tuple[str, ...] = ()) -> Comparison:
    """Compare the current records with the baseline's, matched by (model, setting, method, claim)."""
    tolerance = parse_tolerance(tolerance)
    _require_claims(baseline, baseline_runs)
    now = {e.key: e for e in current}
    before = {e.key: e for e in baseline}
    changes: list[Change] = []
    for key, entry in sorted(before.items()):
        if key in now:
            changes += compare_pair(entry.record, now[key].record, tolerance)
        else:
            changes.append(_presence(entry, "missing", "in the baseline, not in the current run"))
    changes += [_presence(e, "new", "not in the baseline") for k, e in sorted(now.items()) if k not in before]
    changes.sort(key=lambda c: STATUS_ORDER.index(c.status))
    return Comparison(baseline_runs, current_runs, tolerance, strict, tuple(changes))


def compare_runs(baseline: Path, current: Path, *, tolerance: float = DEFAULT_TOLERANCE,
                 strict: bool = False) -> Comparison:
    """Compare the run record(s) at ``current`` with those at ``baseline`` (files or directories)."""
    tolerance = parse_tolerance(tolerance)
    base_entries, base_runs = load_baseline(baseline)
    cur_entries, cur_runs = load_entries(current)
    return compare_entries(base_entries, cur_entries, tolerance=tolerance, strict=strict,
                           baseline_runs=base_runs, current_runs=cur_runs)


# --------------------------------------------------------------------------- output


def _num(value: float | None, sign: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.3f}" if sign else f"{value:.3f}"


def summary_line(comparison: Comparison) -> str:
    """Counts per status and the verdict of the check."""
    counts = ", ".join(f"{len(comparison.with_status(s))} {s}" for s in STATUS_ORDER)
    verdict = "FAILED" if comparison.failed else "passed"
    strict = ", strict" if comparison.strict else ""
    return (f"compare {verdict}: {counts} (baseline {', '.join(comparison.baseline_runs) or '-'}; current "
            f"{', '.join(comparison.current_runs) or '-'}; tolerance {comparison.tolerance:g}{strict})")


def render_comparison(comparison: Comparison) -> str:
    """The summary, a Markdown table of every change, and one line per failing change."""
    header = ["status", "model", "setting", "method", "claim", "quantity", "baseline", "current", "change",
              "allowed", "note"]
    rows = [[c.status, c.model, c.setting, c.method, c.claim, c.quantity, _num(c.baseline), _num(c.current),
             _num(c.delta, sign=True), c.allowed, c.note] for c in comparison.changes]
    lines = [summary_line(comparison), "", "| " + " | ".join(header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    failing = comparison.with_status(*FAILING[comparison.strict])
    warnings = [c for c in comparison.with_status("missing", "incomparable") if c not in failing]
    if failing or warnings:
        lines += ["", *(c.message() for c in failing), *(f"warning: {c.message()}" for c in warnings)]
    return "\n".join(lines) + "\n"
