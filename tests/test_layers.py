"""The import structure stays layered: module-level imports form no cycle, the runtime never imports
the exporter, the contract both sides share imports nothing of either, and no module imports a CLI.
(Imports inside functions are deliberate late bindings and are not counted.)"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("exporter", "runtime")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(path: Path, modules: set[str]) -> set[str]:
    """Project modules imported at module level: ``from pkg import sub`` counts as ``pkg.sub``
    when ``sub`` is a module, as ``pkg`` otherwise."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If):  # `if TYPE_CHECKING:` blocks are for annotations only
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
    return {name for name in found if name in modules}


def _graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    names = set(paths)
    return {name: _top_level_imports(path, names) - {name} for name, path in paths.items()}


def test_module_level_imports_form_no_cycle() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, stack: list[str]) -> bool:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycle.extend([*stack[stack.index(dep) :], dep] if dep in stack else [node, dep])
                return True
            if state.get(dep) is None and visit(dep, [*stack, dep]):
                return True
        state[node] = 2
        return False

    for start in sorted(graph):
        if state.get(start) is None and visit(start, [start]):
            break
    assert not cycle, " -> ".join(cycle)


def test_runtime_never_imports_the_exporter() -> None:
    for module, deps in _graph().items():
        if module.startswith("runtime"):
            assert not [d for d in deps if d.startswith("exporter")], module
    for path in (ROOT / "runtime").rglob("*.py"):  # not even inside functions
        assert "import exporter" not in path.read_text() and "from exporter" not in path.read_text(), path


def test_the_contract_is_a_leaf() -> None:
    assert _graph()["runtime.contract"] == set()


def test_no_module_imports_a_cli() -> None:
    for module, deps in _graph().items():
        assert not [d for d in deps if d.endswith("__main__")], module
