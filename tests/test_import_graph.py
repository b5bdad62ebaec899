"""No import cycles in ``lifecycle``: the package's layers import downwards only.

The graph is read from the source with ``ast``, counting every import a module can make: at
module level, inside functions (a deferred import is how a cycle hides), and under
``TYPE_CHECKING``. Importing ``a.b.c`` also imports the packages ``a.b`` and ``a`` first, so an
edge goes to each of those that is not already an ancestor of the importer (an ancestor is being
imported anyway; ``lifecycle/__init__.py`` is the front door that re-exports everything).

No cycle among the modules, but for the deferred imports within one subpackage listed in
``KNOWN_WITHIN`` (there when this test was written): those may only go away (then shrink the
list), and no new one may appear, within a subpackage or across.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import lifecycle

PACKAGE = Path(lifecycle.__file__).parent

# Deferred imports between modules of one subpackage, present when this test was written.
KNOWN_WITHIN = {
    frozenset(
        {
            "lifecycle._dialects._compile",
            "lifecycle._dialects._declare",
            "lifecycle._dialects._machine",
            "lifecycle._dialects._mermaid",
        }
    ),
    frozenset({"lifecycle._workflow._dag", "lifecycle._workflow._ids"}),
    frozenset(
        {"lifecycle._workflow._define", "lifecycle._workflow._history", "lifecycle._workflow._run"}
    ),
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ["lifecycle", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _ancestors(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


def _targets(name: str) -> Iterator[str]:
    """What module ``name`` names in its imports (resolved, possibly outside the package)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                if node.module:
                    base.append(node.module)
                source = ".".join(base)
            else:
                source = node.module or ""
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                yield sub if sub in MODULES else source


def _imports(name: str) -> set[str]:
    edges = set()
    for named in _targets(name):
        target = named
        while target and target not in MODULES:
            target = target.rpartition(".")[0]  # a name inside a module: the module
        if target:
            edges |= {a for a in _ancestors(target) - _ancestors(name) if a in MODULES}
    return edges


GRAPH = {name: _imports(name) for name in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[frozenset[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _part(name: str) -> str:
    """``lifecycle._engine._driver`` → ``lifecycle._engine``; a top-level module is itself."""
    return ".".join(name.split(".")[:2])


def test_the_graph_is_read() -> None:
    assert "lifecycle._leases" in GRAPH["lifecycle._runs"]
    assert "lifecycle._leases" in GRAPH["lifecycle._engine._engine"]
    assert "lifecycle._runs" in GRAPH["lifecycle._engine._driver"]
    # a deferred import counts; so does the package of the module imported
    assert "lifecycle._compile" not in GRAPH["lifecycle._dialects._declare"]
    assert "lifecycle._dialects._compile" in GRAPH["lifecycle._dialects._declare"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset("abc")]


def test_no_import_cycle() -> None:
    cycles = set(_cycles(GRAPH))
    assert all(len({_part(m) for m in c}) == 1 for c in KNOWN_WITHIN)
    assert cycles - KNOWN_WITHIN == set(), "new import cycles in lifecycle"
    gone = KNOWN_WITHIN - cycles
    assert not gone, f"these cycles are gone: remove them from KNOWN_WITHIN: {gone}"


def test_leases_import_neither_the_run_service_nor_the_engine() -> None:
    """Reconciling leases is below both (issue 11.8): the run service and the engine import it."""
    below = {"lifecycle._runs", "lifecycle._engine"}
    seen: set[str] = set()
    todo = ["lifecycle._leases"]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(GRAPH[name])
    assert not {_part(n) for n in seen} & below, sorted(seen)
