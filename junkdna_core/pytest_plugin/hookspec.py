"""Hooks junkdna calls, for plugins that extend what a run records (as pytest-benchmark's JSON hooks)."""

from __future__ import annotations

from typing import Any

import pytest


def pytest_junkdna_update_record(config: pytest.Config, record: dict[str, Any]) -> None:
    """Add fields to a run record before it is written (the controller calls it once per run).

    ``record`` is the JSON-ready run record; a plugin may add keys under
    ``record["extra"]`` (anything else is checked against the record schema and
    rejected with an error naming the key). Return value ignored.
    """
