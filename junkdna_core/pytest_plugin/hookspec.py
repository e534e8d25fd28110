"""Hooks junkdna calls, for plugins that extend what a run records (as pytest-benchmark's JSON hooks)."""

from __future__ import annotations

from typing import Any

import pytest


def pytest_junkdna_update_record(config: pytest.Config, record: dict[str, Any]) -> None:
    """Add fields to a run record before it is written (the controller calls it once per run).

    ``record`` is the JSON-ready run record (:class:`junkdna_core.results.schema.RunRecord`);
    a plugin may add JSON-able keys under ``record["extra"]``. Any other change is
    rejected: the record is written without the plugins' changes and the session
    fails with a usage error naming the key. Return value ignored.
    """
