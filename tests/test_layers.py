"""The package's layers import downward only, and no module imports itself through others.

Every ``import`` and ``from ... import`` of every ``zsar/**/*.py`` is read with :mod:`ast`,
including imports inside functions and under ``TYPE_CHECKING``, so a lazy import cannot hide an
upward edge or a cycle. Layers, ground floor first::

    io / paths / seed / progress -> hubness -> text -> data -> training -> models -> evaluation
    -> methods -> experiments (with the command module evaluate) -> report -> workbook

A module may import its own layer and any layer below it, never one above.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "zsar"
LAYERS = (("io", "paths", "seed", "progress"), ("hubness",), ("text",), ("data",), ("training",), ("models",), ("evaluation",),
          ("methods",), ("experiments", "evaluate"), ("report",), ("workbook",))
FLOOR = {room: floor for floor, rooms in enumerate(LAYERS) for room in rooms}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(path: Path, known: set[str]) -> list[tuple[int, str]]:
    """``(line, module)`` of every ``zsar`` module ``path`` imports (names resolved to their module)."""
    own = module_name(path)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                found.append((node.lineno, f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base))
    return list(dict.fromkeys((line, name) for line, name in found if name == "zsar" or name.startswith("zsar.")))


def room(module: str) -> str | None:
    """The layer a module belongs to: the first name under ``zsar`` (``None`` for ``zsar`` itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def import_graph() -> dict[str, list[tuple[int, str]]]:
    found = modules()
    return {name: imported_modules(path, set(found)) for name, path in found.items()}


def test_every_module_is_in_a_layer():
    unplaced = sorted({room(m) for m in modules()} - set(FLOOR) - {None})
    assert not unplaced, f"top-level modules/packages in no layer: {unplaced}; add them to LAYERS"


def test_imports_only_go_down():
    upward = []
    for module, imports in import_graph().items():
        for line, target in imports:
            src, dst = room(module), room(target)
            if src is None or dst is None:
                upward += [] if src is None else [f"{module}:{line} imports the package root {target}"]
            elif FLOOR.get(dst, -1) > FLOOR.get(src, -1):
                upward.append(f"{module}:{line} ({src}) imports {target} ({dst}), a higher layer")
    assert not upward, "\n".join(upward)


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (or a self-import), Tarjan's algorithm."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
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
            if len(component) > 1 or v in graph.get(v, ()):
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_find_cycles_on_a_known_graph():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}, "f": set()}
    assert sorted(find_cycles(graph)) == [["a", "b", "c"], ["e"]]


def test_no_import_cycles():
    graph = {m: {t for _, t in imports if t != m} for m, imports in import_graph().items()}
    cycles = find_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("source, expected", [
    ("from zsar.methods import make_method", "zsar.methods"),
    ("def f():\n    from zsar.experiments.runs import run_split", "zsar.experiments.runs"),
    ("import zsar.models.registry", "zsar.models.registry"),
    ("from ..models import registry", "zsar.models.registry"),
])
def test_imports_inside_functions_and_relative_ones_are_read(tmp_path, source, expected, monkeypatch):
    fake = tmp_path / "zsar" / "data" / "fake.py"
    fake.parent.mkdir(parents=True)
    fake.write_text(source)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "zsar")
    known = {"zsar.methods", "zsar.experiments.runs", "zsar.models", "zsar.models.registry"}
    assert [name for _, name in imported_modules(fake, known)] == [expected]
