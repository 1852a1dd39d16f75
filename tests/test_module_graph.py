"""The package's shape: no import circle among lnexp's modules, no module over ~450 lines, no
function over ~80 (issue 20).

The import graph counts every `import` statement of a module wherever it stands: at the top,
inside a function (a deferred import is still a dependency, only a later one) and under
`if TYPE_CHECKING:` (a type-only import still ties the two modules' designs together). Imports
of the root package `lnexp` itself are left out: its __init__ is the public facade that may
name every module.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "lnexp"
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80
# Rewritten into a cli/ package in the same round (issue 20, its own branch).
SIZE_EXEMPT = {"cli.py"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the lnexp modules it imports (`from a.b import c` counts a.b.c when c is a
    module, else a.b)."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets.update(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules
                               else node.module for a in node.names)
        graph[name] = {t for t in targets if t in modules and t not in ("lnexp", name)}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_deferred_and_type_only_imports() -> None:
    graph = import_graph(_modules())
    # lnexp.store.figures imports the figures only inside functions; lnexp.tables.* names
    # result types only under TYPE_CHECKING.
    assert "lnexp.figures" in graph["lnexp.store.figures"]
    assert any("lnexp.results" in deps for name, deps in graph.items()
               if name.startswith("lnexp.tables"))


def test_no_import_circles_among_lnexp_modules() -> None:
    assert cycles(import_graph(_modules())) == []


def test_no_module_or_function_too_long() -> None:
    too_long = []
    for path in _modules().values():
        if path.relative_to(PACKAGE).as_posix() in SIZE_EXEMPT:
            continue
        source = path.read_text(encoding="utf-8")
        if (n := len(source.splitlines())) > MAX_MODULE_LINES:
            too_long.append(f"{path.relative_to(PACKAGE)}: {n} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                start = min([node.lineno] + [d.lineno for d in node.decorator_list])
                if (n := node.end_lineno - start + 1) > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(PACKAGE)}:{node.name}: {n} lines")
    assert too_long == []
