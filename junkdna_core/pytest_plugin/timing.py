"""Where a run's time went, per xdist group, and the group order that keeps every worker busy to the end.

Each test's duration (setup + call + teardown) is stored after a run in pytest's
cache (``.pytest_cache``, key :data:`CACHE_KEY`), per budget. The next run's
xdist workers, all given the same stored durations by the controller, put the
groups of ``--dist loadgroup`` longest first (longest-processing-time first), so
no worker is left with a long group at the end while the other idles, and each
group's tests longest first, so a group ends on its shortest tests: the
scheduler (:mod:`~junkdna_core.pytest_plugin.scheduling`) tops a worker up on
its last pending test, which is then the moment the worker is about free. A first
run (nothing stored for its budget) uses the durations file named by the
``jd_durations`` ini option, if there is one for its budget: a pytest-split
durations file (``{node id: seconds}``), so one file serves both. A test
without a known duration counts as the median of the known ones (1 s when none
are known: then groups are ordered by their number of tests, as xdist itself does).
The order depends only on these numbers, never on clocks, so every worker
collects the same order, as xdist requires.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from junkdna_core.config.errors import ConfigError

CACHE_KEY = "junkdna/durations"
WORKERINPUT_KEY = "junkdna_durations"
UNKNOWN_SECONDS = 1.0


def durations_file(template: str, budget: str, base: Path) -> Path | None:
    """The durations file of ``budget``: the ``jd_durations`` ini value with ``{budget}`` filled in, relative to
    ``base`` (the ini file's directory); None when the value is empty."""
    if not template.strip():
        return None
    path = Path(template.strip().replace("{budget}", budget))
    return path if path.is_absolute() else base / path


def read_durations(path: Path) -> dict[str, float]:
    """The durations in a pytest-split durations file (``{node id: seconds}``; a missing file holds none).

    Raises ConfigError naming the file when it is not such a JSON object.
    """
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"durations file {path}: not readable JSON ({exc}); fix it or delete it") from None
    if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            and v >= 0 for k, v in data.items()):
        raise ConfigError(f"durations file {path}: expected a JSON object of node id -> seconds (>= 0), as "
                          "pytest-split's --store-durations writes; fix it or delete it")
    return {k: float(v) for k, v in data.items()}


def base_nodeid(nodeid: str) -> str:
    """A node id without the ``@group`` suffix xdist's loadgroup adds (xdist's own rule: an ``@`` after the last ``]``)."""
    at = nodeid.rfind("@")
    return nodeid[:at] if at > nodeid.rfind("]") else nodeid


def group_of(item: pytest.Item) -> str | None:
    """The xdist group of ``item`` as loadgroup names it: its ``xdist_group`` names, sorted, joined by ``_``."""
    names = {str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in item.iter_markers("xdist_group")}
    return "_".join(sorted(names)) if names else None


def order_by_duration(items: list[pytest.Item], durations: Mapping[str, float]) -> list[pytest.Item]:
    """``items`` with each group's items together, the groups longest first by ``durations`` (node id -> s) and
    each group's items longest first.

    A test outside any group is a unit of its own; ties keep collection order (with
    no durations known, groups go by their number of tests and items keep their order).
    """
    typical = statistics.median(durations.values()) if durations else UNKNOWN_SECONDS

    def seconds(item: pytest.Item) -> float:
        return durations.get(base_nodeid(item.nodeid), typical)

    units: dict[str, list[pytest.Item]] = {}
    for item in items:
        units.setdefault(group_of(item) or f"@{item.nodeid}", []).append(item)
    cost = {unit: sum(map(seconds, members)) for unit, members in units.items()}
    ordered = sorted(units, key=lambda unit: -cost[unit])  # stable: ties stay in collection order
    return [item for unit in ordered for item in sorted(units[unit], key=lambda i: -seconds(i))]


def merged_durations(stored: Mapping[str, Mapping[str, float]], budget: str,
                     measured: Mapping[str, float]) -> dict[str, dict[str, float]]:
    """The stored durations with this run's (``budget``'s) measured ones replacing theirs; other tests kept."""
    merged = {name: dict(tests) for name, tests in stored.items()}
    merged.setdefault(budget, {}).update({k: round(v, 3) for k, v in measured.items()})
    return merged


@dataclass
class GroupTime:
    """The tests of one group that ran: their summed duration and the workers that ran them."""

    seconds: float = 0.0
    tests: set[str] = field(default_factory=set)
    workers: set[str] = field(default_factory=set)


@dataclass
class RunTimes:
    """Durations seen by the process that reports (the controller under xdist), per test and per group."""

    tests: dict[str, float] = field(default_factory=dict)
    groups: dict[str, GroupTime] = field(default_factory=dict)
    workers: dict[str, float] = field(default_factory=dict)

    def add(self, nodeid: str, group: str, worker: str, seconds: float) -> None:
        """Count one phase (setup, call or teardown) of a grouped test."""
        test = base_nodeid(nodeid)
        self.tests[test] = self.tests.get(test, 0.0) + seconds
        entry = self.groups.setdefault(group, GroupTime())
        entry.seconds += seconds
        entry.tests.add(test)
        entry.workers.add(worker)
        self.workers[worker] = self.workers.get(worker, 0.0) + seconds


def render_times(times: RunTimes, wall: float, ordered_by: str, limit: int = 30) -> Iterable[str]:
    """Lines of the end-of-run summary: wall time, each worker's busy time, then the groups, longest first."""
    busy = ", ".join(f"{w} {s:.1f} s" for w, s in sorted(times.workers.items()))
    yield f"wall {wall:.1f} s; tests {sum(times.workers.values()):.1f} s ({busy}); groups ordered {ordered_by}"
    yield f"{'seconds':>9}  {'tests':>5}  {'worker':<8}group"
    ranked = sorted(times.groups.items(), key=lambda kv: -kv[1].seconds)
    for name, entry in ranked[:limit]:
        yield f"{entry.seconds:9.1f}  {len(entry.tests):5d}  {','.join(sorted(entry.workers)):<8}{name}"
    if len(ranked) > limit:
        rest = ranked[limit:]
        yield f"{sum(e.seconds for _, e in rest):9.1f}  {sum(len(e.tests) for _, e in rest):5d}  " \
              f"{'':<8}({len(rest)} more groups)"
