"""The package layout stays acyclic, and packages talk to each other through their public surface.

Imports are read from the source with ``ast`` (relative imports resolved, imports inside functions
counted, ``if TYPE_CHECKING:`` blocks skipped), so a lazy import is held to the same rules.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "src" / "liquidflow"

# The shared internal layer below the front ends: private, but imported by several packages.
SHARED_INTERNALS = (
    "liquidflow._spec",  # the numpy specification of the equations (docs/architecture.md)
    "liquidflow._ops",  # jobs and executors below liquidflow.torch and liquidflow.keras
    "liquidflow._native",  # the C kernels those executors load
    "liquidflow._files",  # atomic writes
    "liquidflow._build",  # compile and cache C
    "liquidflow._validate",  # input checks of every torch layer
    "liquidflow._frontend",  # option rules both front ends' sequence layers share
)


def _modules() -> dict[str, Path]:
    mods = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    """Every node under ``node`` except the bodies of ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and ast.unparse(child.test).endswith("TYPE_CHECKING"):
            yield from (n for e in child.orelse for n in [e, *_walk(e)])
            continue
        yield child
        yield from _walk(child)


def _imports(module: str) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import of a liquidflow module in ``module``."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in _walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:  # `from pkg import submodule` imports the submodule
                sub = f"{target}.{alias.name}"
                yield node.lineno, sub if sub in MODULES else target
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module in MODULES:
        for _, target in _imports(module):
            if target in MODULES and target != module:
                graph[module].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == v:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _private_scope(target: str) -> str | None:
    """Where ``target`` may be imported from: the package holding its first private (underscore)
    part, or for a private module at the top (``liquidflow._x``) that module itself; None if
    ``target`` is public."""
    parts = target.split(".")
    for i, part in enumerate(parts[1:], 1):
        if part.startswith("_") and part != "__main__":
            return ".".join(parts[: i + 1 if i == 1 else i])
    return None


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_checks_see_the_package():
    assert {"liquidflow", "liquidflow.cli", "liquidflow.torch._cells", "liquidflow.commands.demo"} <= set(MODULES)
    # a function-local relative import is resolved (commands import lazily for start-up speed)
    assert "liquidflow.commands._models" in {t for _, t in _imports("liquidflow.commands.export")}


def test_the_cycle_finder_finds_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a", "e"}, "e": {"d"}, "f": set()}
    assert sorted(_cycles(graph)) == [["a", "b", "c"], ["d", "e"]]


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def test_private_modules_are_imported_only_by_their_own_package():
    bad = set()
    for module in sorted(MODULES):
        for line, target in _imports(module):
            scope = _private_scope(target) if target.startswith("liquidflow.") else None
            if scope is None or _inside(module, scope):
                continue
            if any(_inside(target, shared) for shared in SHARED_INTERNALS):
                continue
            bad.add(f"{MODULES[module].relative_to(ROOT.parent)}:{line} imports {target}")
    assert not bad, "import the package's public names instead:\n" + "\n".join(sorted(bad))


def test_private_scopes():
    assert _private_scope("liquidflow.training._fit") == "liquidflow.training"
    assert _private_scope("liquidflow._ops.fused") == "liquidflow._ops"
    assert _private_scope("liquidflow.export") is None
    assert _private_scope("liquidflow._native.__main__") == "liquidflow._native"


@pytest.mark.parametrize("shared", SHARED_INTERNALS)
def test_the_allowed_internals_exist(shared):
    assert shared in MODULES
