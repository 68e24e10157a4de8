"""The package layout keeps its rules: no import circles (imports inside functions count), shared
machinery imports no family (the registry names them as strings), modules stay small."""

from __future__ import annotations

import ast
from pathlib import Path

import cvtasks
from cvtasks.tasks.registry import TASKS

PACKAGE = Path(cvtasks.__file__).parent
FAMILIES = {
    "classify", "detect", "segment", "pose", "depth", "explain", "track", "faces", "gaze", "inspect"
}  # fmt: skip
TOP = {"cli"}  # the CLI sits above everything and may import any package


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ("cvtasks", *path.relative_to(PACKAGE).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the cvtasks modules it imports anywhere in its body."""
    modules = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package
                    for _ in range(node.level - 1):
                        anchor = anchor.rpartition(".")[0]
                    base = f"{anchor}.{base}" if base else anchor
                targets = [f"{base}.{alias.name}" for alias in node.names] or [base]
            for target in targets:
                if target.startswith("cvtasks"):
                    found = resolve(target)
                    if found and found != name:
                        edges.add(found)
        graph[name] = edges
    return graph


def _family(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in FAMILIES else None


def test_no_import_circles() -> None:
    graph = import_graph()
    state: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                circles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(c) for c in circles)


def test_shared_machinery_imports_no_family() -> None:
    graph = import_graph()
    upward = [
        f"{source} -> {target}"
        for source, targets in graph.items()
        for target in targets
        if _family(source) is None
        and source.split(".")[1:2] != ["cli"]
        and _family(target) is not None
    ]
    assert not upward, "shared modules importing a family:\n" + "\n".join(sorted(upward))


def test_registry_names_families_lazily() -> None:
    source = (PACKAGE / "tasks" / "registry.py").read_text(encoding="utf-8")
    imported = {
        node.module
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert not {m for m in imported if _family(m)}, imported
    for spec in TASKS.values():  # every target resolves, and configs stay torch-free modules
        # export: a mode every family takes part in (each family's export.py plans its models)
        assert spec.config.split(".")[1] in FAMILIES | {"export"}, spec.config
        assert spec.config_cls.__name__ == spec.config.rpartition(":")[2]


def test_modules_stay_small() -> None:
    long = {
        str(path.relative_to(PACKAGE)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > 420
    }
    assert not long, f"modules over ~400 lines: {long}"


def test_every_family_has_tests_beside_it() -> None:
    tests = Path(__file__).parent
    missing = [f for f in sorted(FAMILIES) if not (tests / f).is_dir()]
    assert not missing, f"tests/ should mirror the package: no tests/{missing}"
