"""The package's architecture: no import cycles, and every layer imports only the layers below it.

Imports are read with ``ast`` from the source, function-level imports included,
so an import moved into a function to hide a cycle is still seen.
"""

from __future__ import annotations

import ast
from pathlib import Path

import junkdna_core

PACKAGE = Path(junkdna_core.__file__).parent
# Bottom to top. A module may import modules of its own layer and of the layers before it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("config",),
    ("storage", "stats"),
    ("data",),
    ("models",),
    ("compress",),
    ("scoring",),
    ("study",),
    ("results",),
    ("options", "testing"),
    ("pytest_plugin",),
    ("cli",),
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The junkdna_core modules a file imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("junkdna_core")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("junkdna_core"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
    return found - {_module_name(path)}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) for name, path in modules.items()}


def _layer(module: str) -> int | None:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else None
    return next((i for i, layer in enumerate(LAYERS) if top in layer), None)


def test_no_import_cycles() -> None:
    graph = _graph()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_every_module_belongs_to_a_layer() -> None:
    unplaced = [m for m in _modules() if m != "junkdna_core" and _layer(m) is None]
    assert not unplaced, f"modules outside the layers of {__name__}.LAYERS: {unplaced}"


def test_layers_import_only_downward() -> None:
    upward = [
        f"{module} (layer {LAYERS[_layer(module)]}) imports {target} (layer {LAYERS[_layer(target)]})"
        for module, targets in sorted(_graph().items()) if _layer(module) is not None
        for target in sorted(targets) if _layer(target) is not None and _layer(target) > _layer(module)
    ]
    assert not upward, "imports against the layering:\n" + "\n".join(upward)


def test_importing_the_package_and_the_plugin_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = ("import sys, junkdna_core, junkdna_core.pytest_plugin.plugin; "
            "assert 'torch' not in sys.modules, 'torch imported'; "
            "from junkdna_core import CompressionMethod, PruningMethod, MethodParams, LayerResult, LayerStats, "
            "get_method; assert get_method('magnitude').family == 'pruning'")
    subprocess.run([sys.executable, "-c", code], check=True)
