"""The layering, checked over every import in the code (at module level or inside a function):

    datafeeds, features_numba  <-  execution  <-  mlstrategy

Bars in and out (``datafeeds``) and the feature kernels (``features_numba``) import nothing
above them; order execution (``execution``) imports only ``datafeeds``; and no two files
import each other, directly or round a circle.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PACKAGES = ("datafeeds", "features_numba", "execution", "mlstrategy")
MAY_IMPORT = {
    "datafeeds": set(),
    "features_numba": set(),
    "execution": {"datafeeds"},
    "mlstrategy": {"datafeeds", "features_numba", "execution"},
}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            parts = path.relative_to(REPO_ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The project's modules ``name`` imports (a ``from package import module`` counts as the
    module; anything else as the package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[:len(package.split(".")) - node.level + 1],
                                 *([base] if base else [])])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                targets.add(full if full in MODULES else base)
    return {t for t in targets if t in MODULES and t != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


@pytest.mark.parametrize("package", PACKAGES)
def test_no_package_imports_a_layer_above_it(package):
    wrong = sorted(f"{name} imports {target}" for name, targets in GRAPH.items()
                   if name.split(".")[0] == package for target in targets
                   if target.split(".")[0] not in {package, *MAY_IMPORT[package]})
    assert wrong == [], wrong


def test_no_circle_between_files():
    """Tarjan's strongly connected components of the import graph: each file alone."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in GRAPH[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in GRAPH:
        if node not in index:
            visit(node)
    assert circles == [], circles


def test_the_graph_is_the_codes():
    """The check sees the imports it should (a parser that found none would pass)."""
    assert "mlstrategy.registry.production" in GRAPH["mlstrategy.registry.promotion"]
    assert "datafeeds.errors" in GRAPH["datafeeds.ohlcv"]
    assert len(MODULES) > 100
