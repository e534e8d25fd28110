"""The pytest-benchmark kernels under benchmarks/perf/ run only when this directory (or a file in it) is named.

``pytest benchmarks`` (a claim run) never collects them: they time kernels, they
assert no claim, and pytest-benchmark would run them once more per claim run.
``pytest benchmarks/perf --benchmark-only`` runs them. Every kernel carries the
``perf`` marker.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def _named(config: pytest.Config) -> bool:
    """True when a command-line path lies inside this directory."""
    for arg in config.args:
        path = Path(str(arg).split("::", 1)[0])
        path = (Path(config.invocation_params.dir) / path).resolve() if not path.is_absolute() else path.resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path.name.startswith("test_") and collection_path.suffix == ".py" and not _named(config):
        return True
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "perf: a pytest-benchmark kernel of benchmarks/perf (run it with --benchmark-only)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.perf)
