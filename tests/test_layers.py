"""The package's imports against the layer map in README.md ("How it works"): no module
imports from a layer above its own, and no import cycle exists. Imports inside functions
count (they are how cycles hide); imports under ``TYPE_CHECKING`` do not (they never run).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("aggregator", "classifiers")


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _owner(name: str, known: dict[str, Path]) -> str | None:
    """The project module an imported name lives in (a package's attribute -> the package)."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skipped.update(id(n) for n in ast.walk(child))
    return skipped


def imports(known: dict[str, Path]) -> dict[str, set[tuple[str, int]]]:
    """module -> {(imported project module, line)}, at any depth."""
    graph: dict[str, set[tuple[str, int]]] = {}
    for module, path in known.items():
        tree = ast.parse(path.read_text(), str(path))
        skipped = _type_checking_nodes(tree)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        out: set[tuple[str, int]] = set()
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    parts = parts[: len(parts) - (node.level - 1)]
                    base = ".".join(parts + ([node.module] if node.module else []))
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                         for a in node.names]
            else:
                continue
            for name in names:
                target = _owner(name, known)
                if target and target != module:
                    out.add((target, node.lineno))
        graph[module] = out
    return graph


def layer_map() -> dict[str, int]:
    """Module prefix -> layer number (1 is the top), from README's "How it works"."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## How it works"):]
    section = section[: section.index("\n## ", 1)]
    layers = {}
    for number, cells in re.findall(r"^\| (\d+) [^|]*\| (.*) \|$", section, re.M):
        for name in re.findall(r"`([\w.]+)`", cells):
            layers[name] = int(number)
    assert layers, "no layer table in README's 'How it works'"
    return layers


def layer_of(module: str, layers: dict[str, int]) -> int | None:
    name = module
    while name:
        if name in layers:
            return layers[name]
        name = name.rpartition(".")[0]
    return None


def cycles(graph: dict[str, set[tuple[str, int]]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w, _ in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[tuple[str, int]]]:
    return imports(modules())


def test_every_module_has_a_layer(graph: dict[str, set[tuple[str, int]]]) -> None:
    layers = layer_map()
    assert [m for m in sorted(graph) if layer_of(m, layers) is None] == []


def test_no_import_points_up(graph: dict[str, set[tuple[str, int]]]) -> None:
    layers = layer_map()
    upward = []
    for module, targets in sorted(graph.items()):
        mine = layer_of(module, layers)
        for target, line in sorted(targets):
            theirs = layer_of(target, layers)
            if mine is not None and theirs is not None and theirs < mine:
                upward.append(f"{module}:{line} (layer {mine}) imports {target} (layer {theirs})")
    assert upward == []


def test_no_import_cycle(graph: dict[str, set[tuple[str, int]]]) -> None:
    assert cycles(graph) == []


def test_the_checker_sees_function_level_imports_and_cycles() -> None:
    """The walk itself: an import inside a function is an arrow, and a loop is found."""
    known = modules()
    walked = imports(known)
    # The pipeline imports the fetcher only inside its fetch stage.
    assert any(t == "aggregator.fetch.http" for t, _ in walked["aggregator.ingest"])
    assert cycles({"a": {("b", 1)}, "b": {("c", 1)}, "c": {("a", 1)}, "d": set()}) == [["a", "b", "c"]]


def test_the_pure_decider_does_not_load_httpx() -> None:
    import subprocess
    import sys

    code = "import sys, aggregator.fetch.decide; print('httpx' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=ROOT)
    assert done.stdout.strip() == "False"
