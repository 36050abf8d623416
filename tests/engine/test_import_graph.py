"""The engine's modules import each other without cycles (imports inside functions included)."""
import ast
from pathlib import Path

import hiera_video

PACKAGE_ROOT = Path(hiera_video.__file__).resolve().parent


def module_name(path: Path) -> str:
    """``hiera_video.engine.tasks.base`` for .../hiera_video/engine/tasks/base.py (packages: their name)."""
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that the file at ``path`` imports, anywhere in the file."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(target for target in targets if target in known and target != name)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of ``graph`` as a list of modules, or [] (depth-first search)."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        state[node] = "done"
        stack.pop()
        return []

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return []


def engine_graph() -> dict[str, set[str]]:
    """Import edges between the modules of hiera_video.engine (a package is its ``__init__.py``)."""
    files = sorted((PACKAGE_ROOT / "engine").rglob("*.py"))
    known = {module_name(path) for path in files}
    return {module_name(path): imported_modules(path, known) for path in files}


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


def test_the_engine_has_no_import_cycle():
    graph = engine_graph()
    assert "hiera_video.engine.tasks.base" in graph and graph["hiera_video.engine.tester"]
    # Everything under engine/ is initialized after engine/__init__.py, which imports the public names:
    # an edge back to the package itself is not a cycle among the modules.
    assert find_cycle({node: targets - {"hiera_video.engine"} for node, targets in graph.items()}) == []
