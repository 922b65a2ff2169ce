"""The shape of the code, read with ``ast``: imports point one way (``train.py`` -> ``supernet``;
``search.py`` -> ``search`` -> ``supernet``) without circles, the scripts stay thin wrappers and
every function of ``supernet/`` and ``search/`` reads at one glance."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGES = ("supernet", "search", "sharenas")
SCRIPTS = ("train.py", "search.py")
MAX_SCRIPT_LINES = 25
MAX_FUNCTION_LINES = 60


def project_modules() -> dict[str, Path]:
    """Dotted module name -> file, for the packages; the scripts as ``<train.py>``."""
    modules = {f"<{s}>": REPO / s for s in SCRIPTS}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def _owner(name: str, modules: dict[str, Path]) -> str | None:
    """The project module an imported name lives in (``a.b.C`` -> ``a.b``), None if external."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules ``path`` imports anywhere in it (in functions too), relative ones resolved;
    ``from pkg import sub`` counts as importing ``pkg.sub`` when that is a module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str | None] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {_owner(a.name, modules) for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in modules else _owner(base, modules))
    return {m for m in found if m is not None and m != name}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
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
            v, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[v] = min(low[v], index[child])
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


def test_cycle_finder_finds_a_circle_and_only_circles() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set(), "c": {"b"}}) == []


def test_the_import_graph_sees_relative_and_function_imports(tmp_path: Path) -> None:
    mod = tmp_path / "m.py"
    mod.write_text("from . import sub\n\ndef f():\n    from search.ranking import leaderboard\n")
    modules = {"pkg.m": mod, "pkg.sub": mod, "search.ranking": mod}
    assert imports_of("pkg.m", mod, modules) == {"pkg.sub", "search.ranking"}


def test_no_import_circles(graph: dict[str, set[str]]) -> None:
    assert cycles(graph) == []


def test_supernet_never_imports_search(graph: dict[str, set[str]]) -> None:
    wrong = {
        name: sorted(m for m in deps if m.split(".")[0] in ("search", "sharenas", "<search.py>"))
        for name, deps in graph.items()
        if name.split(".")[0] == "supernet"
    }
    assert {k: v for k, v in wrong.items() if v} == {}


def test_search_never_imports_the_installed_face(graph: dict[str, set[str]]) -> None:
    wrong = {n: d for n, d in graph.items() if n.startswith("search") and "sharenas" in str(d)}
    assert wrong == {}


def test_scripts_import_only_their_side(graph: dict[str, set[str]]) -> None:
    assert {m.split(".")[0] for m in graph["<train.py>"]} <= {"supernet"}
    assert {m.split(".")[0] for m in graph["<search.py>"]} <= {"search"}


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_are_thin_wrappers(script: str) -> None:
    lines = (REPO / script).read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_SCRIPT_LINES, f"{script} has {len(lines)} lines"


def long_functions(path: Path, limit: int = MAX_FUNCTION_LINES, root: Path = REPO) -> list[str]:
    """``file:line name (n lines)`` for each function or method longer than ``limit`` lines."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            n = node.end_lineno - node.lineno + 1
            if n > limit:
                out.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({n} lines)")
    return out


def test_long_function_finder(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(60))
    (tmp_path / "f.py").write_text(f"def short():\n    pass\n\n\ndef long():\n{body}\n")
    found = long_functions(tmp_path / "f.py", limit=60, root=tmp_path)
    assert found == ["f.py:5 long (61 lines)"]


@pytest.mark.parametrize("package", ["supernet", "search"])
def test_functions_read_at_one_glance(package: str) -> None:
    found = [f for p in sorted((REPO / package).rglob("*.py")) for f in long_functions(p)]
    assert found == [], f"functions over {MAX_FUNCTION_LINES} lines: {found}"
