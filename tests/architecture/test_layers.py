"""The house rules of ARCHITECTURE.md, read from the package's own imports (every import,
function-level ones included, since a lazy import is still a dependency):

- the pure core (values, spec loading, certificates, core/) reaches no connector, runner,
  renderer, command or CLI, directly or through another module;
- render/ reaches no connector (nor anything that executes);
- nothing of the product imports lab/, except the one place the CLI mounts ``wlbplan lab``;
- no import circles.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "wlbplan"

PURE = ("wlbplan.model", "wlbplan.spec", "wlbplan.certs", "wlbplan.core", "wlbplan.errors",
        "wlbplan.limits")
EFFECTS = ("wlbplan.connectors", "wlbplan.acme", "wlbplan.run", "wlbplan.actions",
           "wlbplan.inspect", "wlbplan.commands", "wlbplan.cli", "wlbplan.lab")
LAB_MOUNT = ("wlbplan.cli", "wlbplan.lab.cli")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imported(name: str, tree: ast.AST, is_package: bool) -> Iterator[str]:
    """Every wlbplan module ``name`` imports; ``from a import b`` counts a.b when b is one."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("wlbplan"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            if not source.startswith("wlbplan"):
                continue
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                yield sub if sub in MODULES else source


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        targets = set(imported(name, tree, path.name == "__init__.py")) & MODULES.keys()
        edges[name] = targets - {name}
    return edges


GRAPH = graph()


def reach(start: str) -> dict[str, str]:
    """Every module ``start`` reaches, each with the path that gets there (for messages)."""
    paths = {start: start}
    todo = [start]
    while todo:
        here = todo.pop()
        for nxt in GRAPH[here]:
            if nxt not in paths:
                paths[nxt] = f"{paths[here]} -> {nxt}"
                todo.append(nxt)
    return paths


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_the_graph_is_read() -> None:
    assert "wlbplan.core.plan" in GRAPH
    assert "wlbplan.model.spec" in GRAPH["wlbplan.core.plan"]
    assert GRAPH["wlbplan.connectors.base"] == {"wlbplan.model.command"}


@pytest.mark.parametrize("module", sorted(m for m in MODULES if within(m, PURE)))
def test_the_pure_core_reaches_no_effect(module: str) -> None:
    bad = {m: p for m, p in reach(module).items() if within(m, EFFECTS) or
           within(m, ("wlbplan.render",))}
    assert not bad, "\n".join(sorted(bad.values()))


@pytest.mark.parametrize("module", sorted(m for m in MODULES if within(m, ("wlbplan.render",))))
def test_renderers_reach_no_connector(module: str) -> None:
    bad = {m: p for m, p in reach(module).items() if within(m, EFFECTS)}
    assert not bad, "\n".join(sorted(bad.values()))


def test_nothing_of_the_product_imports_the_lab() -> None:
    edges = {(src, dst) for src, dsts in GRAPH.items() for dst in dsts
             if not within(src, ("wlbplan.lab",)) and within(dst, ("wlbplan.lab",))}
    assert edges == {LAB_MOUNT}


def strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm; components of more than one module are import circles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_circles() -> None:
    assert strongly_connected(GRAPH) == []


def test_the_circle_finder_finds_circles() -> None:
    assert strongly_connected({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
