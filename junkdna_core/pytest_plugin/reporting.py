"""The plugin objects behind the end-of-run summaries and the xdist group order.

:class:`RunReporter` lives in the process that reports (the xdist controller, or
the only process): it reads every test report, prints where the time went per
xdist group and each compression that failed (once, with the tests that needed
it), and stores the test durations for the next run. :class:`GroupOrder` lives in
each xdist worker under ``--dist loadgroup`` and orders the collected items by the
durations the controller handed to every worker alike.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from junkdna_core.config.errors import ConfigError
from junkdna_core.pytest_plugin.timing import (
    CACHE_KEY,
    WORKERINPUT_KEY,
    RunTimes,
    durations_file,
    merged_durations,
    order_by_duration,
    read_durations,
    render_times,
)


class GroupOrder:
    """A worker's plugin: reorder the collected items so loadgroup hands out the longest groups first."""

    def __init__(self, durations: dict[str, float]) -> None:
        self.durations = durations

    @classmethod
    def from_workerinput(cls, workerinput: dict[str, Any]) -> GroupOrder:
        """The order of the durations the controller sent (none: by group size)."""
        return cls(json.loads(workerinput.get(WORKERINPUT_KEY, "{}")))

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        items[:] = order_by_duration(items, self.durations)


class RunReporter:
    """The reporting process's plugin: durations and compression failures, gathered from the test reports."""

    def __init__(self, config: pytest.Config, budget: str) -> None:
        self.config = config
        self.budget = budget
        self.cache = getattr(config, "cache", None)  # None with -p no:cacheprovider: nothing stored or read
        stored = self.cache.get(CACHE_KEY, {}) if self.cache is not None else {}
        self.stored: dict[str, dict[str, float]] = stored if isinstance(stored, dict) else {}
        base = config.inipath.parent if config.inipath else config.rootpath
        self.shipped_from = durations_file(config.getini("jd_durations"), budget, base)
        try:
            self.shipped = read_durations(self.shipped_from) if self.shipped_from else {}
        except ConfigError as exc:
            raise pytest.UsageError(f"jd_durations: {exc}") from None
        self.store_shipped = bool(config.getoption("jd_store_durations", False))
        if self.store_shipped and self.shipped_from is None:
            raise pytest.UsageError("--jd-store-durations writes the file the jd_durations ini option names; set it "
                                    "(e.g. jd_durations = \"benchmarks/durations/{budget}.json\" under "
                                    "[tool.pytest.ini_options])")
        self.times = RunTimes()
        self.started = time.perf_counter()
        self.failures: dict[str, dict[str, Any]] = {}

    @property
    def durations(self) -> dict[str, float]:
        """The durations the group order uses (node id -> seconds): this budget's stored by earlier runs,
        else the ``jd_durations`` file's."""
        return self.stored.get(self.budget) or self.shipped

    @property
    def durations_source(self) -> str:
        """Where :attr:`durations` come from, as the end-of-run summary says it."""
        if self.shipped and not self.stored.get(self.budget):
            return f"the durations in {self.shipped_from}"
        return "earlier runs' durations"

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """xdist: every worker gets the same stored durations, so all collect the same order."""
        node.workerinput[WORKERINPUT_KEY] = json.dumps(self.durations)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        group = getattr(report, "jd_group", None)
        if group is not None:
            self.times.add(report.nodeid, group, getattr(report, "worker_id", None) or "main", report.duration)
        failure = getattr(report, "jd_compression", None)
        if failure is not None:
            entry = self.failures.setdefault(failure["key"], {"message": failure["message"], "tests": []})
            if not failure["earlier"]:
                entry["message"] = failure["message"]
            if report.nodeid not in entry["tests"]:
                entry["tests"].append(report.nodeid)

    def pytest_sessionfinish(self) -> None:
        if self.cache is not None and self.times.tests:
            self.cache.set(CACHE_KEY, merged_durations(self.stored, self.budget, self.times.tests))
        if self.store_shipped and self.times.tests:
            merged = merged_durations({self.budget: self.shipped}, self.budget, self.times.tests)[self.budget]
            self.shipped_from.parent.mkdir(parents=True, exist_ok=True)
            self.shipped_from.write_text(json.dumps(dict(sorted(merged.items())), indent=1) + "\n", encoding="utf-8")

    def failed_compressions(self) -> list[dict[str, Any]]:
        """The compressions that failed, as the run record holds them (``FailedCompression`` JSON)."""
        failed = []
        for key, entry in self.failures.items():
            fingerprint, method = json.loads(key)
            failed.append({"model_fingerprint": fingerprint, "method": method, "error": entry["message"],
                           "tests": list(entry["tests"])})
        return failed

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        for entry in self.failures.values():
            terminalreporter.write_sep("=", "junkdna: compression failed", red=True)
            terminalreporter.write_line(entry["message"])
            terminalreporter.write_line(f"needed by {len(entry['tests'])} tests:")
            for test in entry["tests"]:
                terminalreporter.write_line(f"    {test}")
        if self.times.groups:
            known = sum(1 for test in self.times.tests if test in self.durations)
            how = (f"longest first by {self.durations_source} ({known} of {len(self.times.tests)} tests known)"
                   if getattr(self.config.option, "dist", "no") == "loadgroup" else "by pytest (no --dist loadgroup)")
            terminalreporter.write_sep("=", "junkdna: where the time went")
            for line in render_times(self.times, time.perf_counter() - self.started, how):
                terminalreporter.write_line(line)
