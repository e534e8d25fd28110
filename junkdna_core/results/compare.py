"""Regression checks between run records: did a claim or a method's hard-task retention get worse?

Records of a BASELINE and a CURRENT run (files or directories, each side merging
the runs of any number of groups or machines; newest record per (model,
setting, method, claim) as in the leaderboard) are matched by that key — so by
model first — and for each pair these quantities are compared:

- for asserted claims, the verdict: a claim that held and now fails or is
  undefined is always a regression; one that failed or was undefined and now
  holds, an improvement; fails <-> undefined, a verdict now decided on other
  conditions (a redefined statistic), and asserted <-> informational cannot be
  compared. Informational claims are never judged;
- for asserted claims, each condition's statistic (matched by the condition's
  name): "worse" is against its direction (for ``<`` and ``<=`` larger is worse,
  for ``>`` and ``>=`` smaller is worse). When the baseline condition's interval
  [low, high] brackets its statistic, the statistic is worse when the current one
  lies outside that interval on the worse side; otherwise (a record upgraded from
  schema 1 without an interval) when it moved by more than the tolerance;
- for every record with a drop curve (asserted or not), the retention of the
  baseline's hardest level (1 + normalized drop) at every strength both runs
  measured: worse when it fell by more than the tolerance at any of them;
- the model's fingerprint: numbers from different weights cannot be compared
  (reported, and the quantities above still shown).

The default tolerance, 0.05 absolute, is half the smallest step (0.1) of a
Spearman correlation over up to 5 sweep points, so any change of rank order in
a smoke sweep counts, while a retention must fall by 5% of the dense score.
Baseline records missing from the current run, or not comparable with it (a
changed direction, a condition the other run lacks, no common strength), are
reported; with ``strict`` they fail the comparison.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from junkdna_core.config.errors import ConfigError
from junkdna_core.results.records import Entry, newest_entries, read_runs
from junkdna_core.results.schema import ClaimRecord, Condition, CurveDetails

DEFAULT_TOLERANCE = 0.05
FLOAT_NOISE = 1e-9  # changes this small are rounding, never a regression

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
    def models(self) -> list[str]:
        """The models compared."""
        return sorted({c.model for c in self.changes})

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


def _paths(paths: Path | Sequence[Path]) -> list[Path]:
    return [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]


def load_entries(paths: Path | Sequence[Path]) -> tuple[list[Entry], tuple[str, ...]]:
    """The newest claim record per key in the run records at ``paths`` (merged), and the run ids they come from."""
    runs = read_runs(_paths(paths))
    return newest_entries(runs), tuple(r.run_id for r in runs)


def _require_claims(entries: Sequence[Entry], runs: tuple[str, ...]) -> None:
    if not entries:
        raise ConfigError(f"the baseline {', '.join(runs) or '(no runs)'} holds no claim records; compare against "
                          "a run record of `pytest benchmarks`")


def load_baseline(paths: Path | Sequence[Path]) -> tuple[list[Entry], tuple[str, ...]]:
    """:func:`load_entries` for a baseline, which must hold at least one claim record."""
    entries, runs = load_entries(paths)
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


def _own_interval(condition: Condition) -> tuple[float, float] | None:
    """The condition's [low, high] when it brackets its statistic."""
    interval = condition.interval
    if interval is None or condition.statistic is None or not interval.low <= condition.statistic <= interval.high:
        return None
    return interval.low, interval.high


Make = Callable[..., Change]


def _verdict(base: ClaimRecord, cur: ClaimRecord, make: Make) -> list[Change]:
    """A change of verdict of an asserted claim (not comparable when it is decided on other conditions now)."""
    if base.verdict == cur.verdict:
        return []
    why = f": {cur.reason}" if cur.reason else ""
    note = f"{base.verdict} -> {cur.verdict}{why}"
    if [c.name for c in base.conditions] != [c.name for c in cur.conditions]:
        return [make("verdict", "incomparable", note=f"{note}; the claim is decided on other conditions now")]
    if base.verdict == "holds":
        return [make("verdict", "regression", note=note)]
    return [make("verdict", "improvement" if cur.verdict == "holds" else "incomparable", note=note)]


def _condition(base: Condition, cur: Condition | None, tolerance: float, make: Make) -> Change:
    if cur is None:
        return make(base.name, "incomparable", note="not a condition of the current record")
    if base.direction != cur.direction:
        return make(base.name, "incomparable", note=f"direction {base.direction} -> {cur.direction}")
    if (base.statistic is None) != (cur.statistic is None):
        side = "baseline" if base.statistic is None else "current run"
        return make(base.name, "incomparable", note=f"undefined in the {side}")
    if base.statistic is None:
        return make(base.name, "unchanged", note="undefined in both runs")
    interval = _own_interval(base)
    status = _judge(base.statistic, cur.statistic, base.direction in ("<", "<="), interval, tolerance)
    threshold = "" if base.threshold == cur.threshold else f"; threshold {base.threshold:g} -> {cur.threshold:g}"
    return make(base.name, status, base.statistic, cur.statistic, allowed=_allowed(interval, tolerance),
                note=f"needs {cur.requirement()}{threshold}")


def _conditions(base: ClaimRecord, cur: ClaimRecord, tolerance: float, make: Make) -> list[Change]:
    now = {c.name: c for c in cur.conditions}
    return [_condition(c, now.get(c.name), tolerance, make) for c in base.conditions]


def _retention(base: ClaimRecord, cur: ClaimRecord, tolerance: float, make: Make) -> list[Change]:
    """The baseline's hardest level's retention at the common strengths: the worst strength decides."""
    curves = [r.details if isinstance(r.details, CurveDetails) else None for r in (base, cur)]
    if curves[0] is None and curves[1] is None:
        return []
    if curves[0] is None or curves[1] is None:
        side = "current" if curves[0] is not None else "baseline"
        return [make("retention(hardest level)", "incomparable", note=f"no drop curve in the {side} record")]
    hardest = curves[0].hardest
    name = f"retention({hardest})"
    if hardest not in curves[1].drops:
        return [make(name, "incomparable", note=f"level {hardest} not in the current record")]
    before, after = curves[0].retention(hardest), curves[1].retention(hardest)
    common = sorted(set(before) & set(after))
    if not common:
        return [make(name, "incomparable", note="no strength measured in both runs")]
    judged = {s: _judge(before[s], after[s], False, None, tolerance) for s in common}
    status: Status = next((s for s in ("regression", "improvement") if s in judged.values()), "unchanged")
    pick = [s for s in common if judged[s] == status]
    change = {s: after[s] - before[s] for s in pick}
    at = min(pick, key=change.__getitem__) if status == "regression" else max(pick, key=lambda s: abs(change[s]))
    return [make(name, status, before[at], after[at], allowed=_allowed(None, tolerance),
                 note=f"at strength {at:g}, the largest {'fall' if status == 'regression' else 'change'} of "
                      f"{len(common)} common strengths")]


def compare_pair(base: ClaimRecord, cur: ClaimRecord, tolerance: float = DEFAULT_TOLERANCE) -> list[Change]:
    """Every compared quantity of two records with the same (model, setting, method, claim)."""

    def make(quantity: str, status: Status, baseline: float | None = None, current: float | None = None,
             **kw: str) -> Change:
        return Change(base.model, base.setting, base.method, base.claim, quantity, status, baseline, current, **kw)

    changes = []
    fingerprints = (base.provenance.model_fingerprint, cur.provenance.model_fingerprint)
    if fingerprints[0] != fingerprints[1]:
        changes.append(make("model fingerprint", "incomparable",
                            note=f"{fingerprints[0]} -> {fingerprints[1]}: the numbers come from different weights"))
    if base.asserted != cur.asserted:
        states = {True: "asserted", False: "informational"}
        changes.append(make("assertion", "incomparable", note=f"{states[base.asserted]} -> {states[cur.asserted]}"))
    elif base.asserted:
        changes += [*_verdict(base, cur, make), *_conditions(base, cur, tolerance, make)]
    return changes + _retention(base, cur, tolerance, make)


def _presence(entry: Entry, status: Status, note: str) -> Change:
    r = entry.record
    return Change(r.model, r.setting, r.method, r.claim, "record", status, note=note)


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


def compare_runs(baseline: Path | Sequence[Path], current: Path | Sequence[Path], *,
                 tolerance: float = DEFAULT_TOLERANCE, strict: bool = False) -> Comparison:
    """Compare the run records at ``current`` with those at ``baseline`` (files or directories, each side merged)."""
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
    return (f"compare {verdict}: {counts} (models {', '.join(comparison.models) or '-'}; baseline "
            f"{', '.join(comparison.baseline_runs) or '-'}; current {', '.join(comparison.current_runs) or '-'}; "
            f"tolerance {comparison.tolerance:g}{strict})")


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
