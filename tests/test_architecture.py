"""The import graph of the library: no cycles, and each layer imports only the layers below it.

Layers, bottom up: `errors`, `output`; `data/`; `climatology`, `models/`, priors and corrections; `rollout`,
`bundle`, `training/`, `forecast`; `evaluation/`; `cli/`. The library never imports the service.
"""

from __future__ import annotations

import ast
from pathlib import Path

import fno_forecast

PACKAGE = Path(fno_forecast.__file__).parent

# module prefix -> module prefixes it must never import (modules deeper in the house)
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "fno_forecast.data": (
        "fno_forecast.models",
        "fno_forecast.training",
        "fno_forecast.evaluation",
        "fno_forecast.forecast",
        "fno_forecast.bundle",
        "fno_forecast.cli",
    ),
    "fno_forecast.models": ("fno_forecast.training", "fno_forecast.evaluation", "fno_forecast.cli"),
    "fno_forecast.training": ("fno_forecast.evaluation", "fno_forecast.cli"),
    "fno_forecast.evaluation": ("fno_forecast.training", "fno_forecast.cli"),
    "fno_forecast.recent_anomaly": ("fno_forecast.evaluation", "fno_forecast.training"),
    "fno_forecast.climatology": ("fno_forecast.evaluation", "fno_forecast.training", "fno_forecast.models"),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Every module's imports of other modules of the package, function-level imports included."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    found.add(full if full in modules else node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        graph[name] = {m for m in found if m != name and (m in modules or m.split(".")[0] == "service")}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_library_has_no_import_cycle() -> None:
    assert _cycles(_imports()) == []


def test_no_module_imports_a_layer_above_it() -> None:
    upward = [
        f"{module} -> {target}"
        for module, targets in _imports().items()
        for target in targets
        for prefix, banned in FORBIDDEN.items()
        if module == prefix or module.startswith(prefix + ".")
        if any(target == b or target.startswith(b + ".") for b in banned)
    ]
    assert upward == []


def test_the_library_never_imports_the_service() -> None:
    assert [f"{m} -> {t}" for m, ts in _imports().items() for t in ts if t.split(".")[0] == "service"] == []


def test_the_graph_walk_finds_a_planted_cycle_and_real_imports() -> None:
    """The checks above can fail: a planted cycle is found, and a known import is in the graph."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert "fno_forecast.data.grid" in _imports()["fno_forecast.data.schema"]
