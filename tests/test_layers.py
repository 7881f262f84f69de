"""The import structure stays layered: imports form no cycle (those inside functions included: a late
import is still a dependency), the exporter's modules import only their own tier or lower ones, the
runtime never imports the exporter, the contract both sides share imports nothing of either, and no
module imports a CLI. Imports under ``if TYPE_CHECKING:`` are for annotations and are not counted."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("exporter", "runtime")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


# The exporter's tiers, bottom up: a module may import its own tier and the ones below, never above.
# A new module must be placed here (the test names it otherwise).
TIERS = (
    ("exporter.errors", "exporter.steps", "exporter.parity"),  # leaves: errors, estimator introspection
    ("exporter.compose", "exporter.load", "exporter.registry", "exporter.convert", "exporter.passes"),
    ("exporter.registration", "exporter.schema"),  # the filled registry; the input schema
    ("exporter.nodes", "exporter.plan", "exporter.diagnose"),  # the tree and its per-node strategies
    ("exporter.build", "exporter.package", "exporter.check", "exporter.edge"),
    ("exporter.api", "exporter.support", "exporter.testing", "exporter", "exporter.__main__"),
)


def _tier(module: str) -> int | None:
    for level, names in enumerate(TIERS):
        if module in names or any(module.startswith(f"{name}.") for name in names if name != "exporter"):
            return level
    return None


def _all_imports(path: Path, modules: set[str], top_level_only: bool = False) -> set[str]:
    """Project modules imported anywhere in the file (or at module level only): ``from pkg import
    sub`` counts as ``pkg.sub`` when ``sub`` is a module, as ``pkg`` otherwise."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    skipped = {
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for n in ast.walk(block)
    }
    for node in tree.body if top_level_only else ast.walk(tree):
        if id(node) in skipped or (top_level_only and isinstance(node, ast.If)):
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
    return {name for name in found if name in modules}


def _graph(top_level_only: bool = False) -> dict[str, set[str]]:
    paths = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    names = set(paths)
    return {name: _all_imports(path, names, top_level_only) - {name} for name, path in paths.items()}


def test_imports_form_no_cycle() -> None:
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


def test_exporter_modules_import_only_their_tier_or_lower() -> None:
    graph = _graph()
    unplaced = sorted(m for m in graph if m.startswith("exporter") and _tier(m) is None)
    assert not unplaced, f"place these modules in TIERS: {unplaced}"
    upward = [
        f"{module} (tier {_tier(module)}) imports {dep} (tier {_tier(dep)})"
        for module, deps in graph.items()
        if module.startswith("exporter")
        for dep in deps
        if dep.startswith("exporter") and (_tier(dep) or 0) > (_tier(module) or 0)
    ]
    assert not upward, upward


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
